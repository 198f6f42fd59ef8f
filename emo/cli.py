"""The `emo` command line: thin click commands over the library's functions."""

from __future__ import annotations

import logging
import signal
import sys

import click

from emo import __version__
from emo.errors import EmoError


def data_options(f):
    """Options every command that reads a dataset folder shares."""
    f = click.option("--fps", type=float, default=None, help="Frame rate, when meta.json has none.")(f)
    f = click.option("--label-scale", type=float, default=None,
                     help="Labels lie in [-S, S] (SEWA 1, AFEW-VA 10); default: meta.json, else 1.")(f)
    f = click.option("--id-pattern", default=None,
                     help="Regex with a named group 'id' deriving the video id from the video table's 'path'.")(f)
    f = click.option("--audio-id-pattern", default=None,
                     help="Regex with a named group 'id' deriving the video id from an audio table's 'filename'.")(f)
    f = click.option("--split-seed", type=int, default=0, show_default=True,
                     help="Seed of the video split, used only when the dataset has no split yet.")(f)
    return f


def dataset_from(data, fps, label_scale, id_pattern, audio_id_pattern, split_seed):
    from emo.data.dataset import load_dataset

    return load_dataset(data, fps=fps, label_scale=label_scale, id_pattern=id_pattern,
                        audio_id_pattern=audio_id_pattern, split_seed=split_seed)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class EmoGroup(click.Group):
    """Turns an EmoError anywhere below into a one-paragraph message and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EmoError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except Exception as exc:
            if not type(exc).__module__.startswith(("mlflow", "optuna")):
                raise
            # the store or server refused something: its own message says what, no traceback needed
            text = str(exc).strip().splitlines()
            click.echo(f"error: {type(exc).__module__.split('.')[0]} said: {text[0] if text else type(exc).__name__}",
                       err=True)
            ctx.exit(2)


@click.group(cls=EmoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emo")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """emo: audio-visual valence/arousal emotion recognition experiments.

    \b
    emo data synth   write a synthetic SEWA- or AFEW-VA-like dataset folder
    emo data import  import a corpus as distributed (avec, afew-va, affwild2, muse, recola, csv)
    emo extract      eGeMAPS audio functionals and face features from recordings, offline
    emo data check   validate a dataset folder and summarise it
    emo data split   make (or show) the dataset's train/dev/test split by video
    emo train FAMILY train one model family (baseline, ffnn, video, audio, fusion), tracked in MLflow
    emo tune         run or join an Optuna study (default: Fusion 4 v2), one MLflow run per trial
    emo register     register the best Fusion 4 run as emo-fusion4 (champion if it beats the current one)
    emo predict      predict a dataset split with a logged or registered model
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    # `docker stop` and schedulers send SIGTERM: end like Ctrl-C, so open runs are closed as KILLED
    signal.signal(signal.SIGTERM, _terminate)


@main.group()
def data() -> None:
    """Dataset folders: generate, import, validate, split."""


@data.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--kind", type=click.Choice(["sewa", "afew"]), default="sewa", show_default=True,
              help="SEWA-like (video + 4 audio tables, labels in [-1, 1]) or AFEW-VA-like (video only, [-10, 10]).")
@click.option("--scale", type=click.Choice(["test", "demo", "sewa"]), default="test", show_default=True,
              help="Size preset: 'test' is small; 'demo' is the embedded default corpus; 'sewa' is SEWA's real "
                   "size (for benchmarks).")
@click.option("--videos", type=click.IntRange(min=3), default=None, help="Number of videos (overrides the preset).")
@click.option("--duration", type=click.FloatRange(min=1.0), default=None, help="Seconds per video.")
@click.option("--dim", type=click.IntRange(min=1), default=None, help="Video embedding width.")
@click.option("--audio-dim", type=click.IntRange(min=1), default=None, help="Audio feature count.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default=None, help="Table file format.")
@click.option("--seed", type=int, default=0, show_default=True)
def synth_cmd(out, kind, scale, videos, duration, dim, audio_dim, fmt, seed):
    """Write a synthetic dataset folder OUT in the real layout (meta.json says synthetic: true)."""
    from dataclasses import replace

    from emo.data.synth import SCALES, SynthConfig, synthesize

    config = replace(SynthConfig(kind=kind, seed=seed), **SCALES.get(scale, {}))
    overrides = {"videos": videos, "duration_s": duration, "dim": dim, "audio_dim": audio_dim, "fmt": fmt}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    folder = synthesize(out, config)
    click.echo(f"wrote synthetic {kind} dataset ({config.videos} videos × {config.duration_s:g} s) to {folder}")


@data.command("check")
@click.argument("data")
@data_options
@click.option("--window", type=float, multiple=True, help="Also count windows of this many seconds (repeatable).")
@click.option("--per-video/--no-per-video", default=None,
              help="List every video's coverage (labelled, unlabelled frames, gaps, label range). "
                   "[default: when there are at most 20]")
def check_cmd(data, window, per_video, **opts):
    """Validate dataset folder DATA and print a summary (videos, frames, fps, dims, labels, coverage, split)."""
    from emo.data.summary import summarize

    ds = dataset_from(data, **opts)
    click.echo(summarize(ds, windows_s=window, per_video=per_video))


@data.command("split")
@click.argument("data")
@data_options
def split_cmd(data, **opts):
    """Make the train/dev/test split by video (split.json) if missing, and print it."""
    ds = dataset_from(data, **opts)
    s = ds.split
    click.echo(f"split of {ds.folder} ({s.source}, seed {s.seed}, hash {s.hash}):")
    for name in ("train", "dev", "test"):
        ids = s.of(name)
        click.echo(f"  {name:5s} {len(ids):4d} videos  {', '.join(ids[:6])}{' …' if len(ids) > 6 else ''}")


def config_options(f):
    """One --option per Config field, typed from the dataclass; unset options keep Config's defaults."""
    import dataclasses
    import typing

    from emo.config import HELP, Config

    hints = typing.get_type_hints(Config)
    for field in reversed(dataclasses.fields(Config)):
        if field.name in ("family", "extra"):
            continue
        hint = hints[field.name]
        base = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
        kind = {int: int, float: float, str: str}.get(base, str)
        default = field.default if field.default is not dataclasses.MISSING else None
        shown = "auto" if default is None else ",".join(default) if isinstance(default, tuple) else default
        f = click.option(f"--{field.name.replace('_', '-')}", field.name, type=kind, default=None,
                         help=f"{HELP.get(field.name, '')} [default: {shown}]")(f)
    return f


def config_from(family: str, options: dict):
    from emo.config import Config

    values = {k: v for k, v in options.items() if v is not None}
    if "algorithms" in values:
        values["algorithms"] = tuple(a.strip() for a in values["algorithms"].split(",") if a.strip())
    return Config(family=family, **values).validate()


@main.command("train")
@click.argument("family", type=click.Choice(["baseline", "ffnn", "video", "audio", "fusion"]))
@config_options
@click.option("--experiment", default=None, help="MLflow experiment name (ignored under `mlflow run`).")
@click.option("--run-name", default=None, help="MLflow run name.")
@click.option("--resume", default=None, metavar="RUN_ID", help="Continue the run RUN_ID from its last checkpoint.")
@click.option("--no-track", is_flag=True, help="Do not log to MLflow (print the metrics only).")
def train_cmd(family, experiment, run_name, resume, no_track, **options):
    """Train one model FAMILY on a dataset and track it in MLflow.

    \b
    Families: baseline (Bayesian Ridge, SVR, Decision Tree per frame), ffnn (per frame),
    video (GRU over windows), audio (ffnn on an audio table), fusion (methods 1-4).
    The tracking store is MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here.
    """
    from emo.experiment import resume_config, run_experiment
    from emo.report import describe

    if resume:
        given = {k: v for k, v in config_from(family, options).to_dict().items()
                 if options.get(k) is not None}
        config = resume_config(resume, given).validate()
    else:
        config = config_from(family, options)
    result = run_experiment(config, track=not no_track, run_name=run_name, experiment=experiment, resume=resume)
    click.echo(describe(result))


@main.command("tune")
@click.option("--family", type=click.Choice(["fusion", "video", "audio", "ffnn"]), default="fusion",
              show_default=True, help="Model family to tune.")
@config_options
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Complete or pruned trials the study should hold (all workers together). [default: 20 "
                   "unless --timeout is given]")
@click.option("--timeout", type=click.FloatRange(min=1), default=None, help="Stop this worker after N seconds.")
@click.option("--storage", default=None, help="Optuna storage URL; a PostgreSQL URL shares the study between "
                                              "workers. [default: sqlite:///optuna.db]")
@click.option("--study-name", default=None, help="Study to create or join. [default: emo-FAMILY]")
@click.option("--space", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file overriding the family's search space.")
@click.option("--metric", type=click.Choice(["rmse", "ccc"]), default="rmse", show_default=True,
              help="Objective: mean dev RMSE (minimised) or mean dev CCC (maximised) over valence and arousal.")
@click.option("--pruner", default="median", show_default=True, help="median, none or percentile:P.")
@click.option("--sampler-seed", type=int, default=None, help="Seed of the TPE sampler (one worker: reproducible).")
@click.option("--experiment", default=None, help="MLflow experiment name (ignored under `mlflow run`).")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Register the winner as emo-fusion4 (Fusion 4 studies only).")
@click.option("--heartbeat", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seconds between a worker's heartbeats; a worker silent for 3 is taken for dead.")
def tune_cmd(family, trials, timeout, storage, study_name, space, metric, pruner, sampler_seed, experiment,
             register, heartbeat, **options):
    """Tune a family's hyperparameters with Optuna; every trial is a nested MLflow run.

    The same command started several times with one --storage and --study-name makes several
    workers of one study. The test set is never seen by the study: the winner's test metrics are
    computed once at the end.
    """
    from emo import champion
    from emo.tuning import summary, tune

    base = config_from(family, options)
    result = tune(base, trials=trials if trials or timeout else 20, timeout=timeout, storage=storage,
                  study_name=study_name, space=space, metric=metric, pruner=pruner, sampler_seed=sampler_seed,
                  experiment=experiment, heartbeat=heartbeat)
    click.echo(summary(result.study))
    if result.test:
        click.echo(f"winner's test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in result.test.items()
                                                           if "rmse" in k or "ccc" in k))
    if register and result.best_trial is not None and base.family == "fusion" and base.method == 4:
        run = champion.best_fusion4_run(run_ids=[result.best_trial.user_attrs["mlflow_run_id"]])
        click.echo(str(champion.register(run)))


@main.command("register")
@click.option("--run-id", "run_ids", multiple=True, help="Candidate run(s); default: every Fusion 4 run.")
@click.option("--experiment", default=None, help="Only runs of this MLflow experiment.")
@click.option("--name", default="emo-fusion4", show_default=True, help="Registered model name.")
def register_cmd(run_ids, experiment, name):
    """Register the best Fusion 4 run (by dev RMSE); it becomes @champion only if it beats the current one."""
    from emo import champion

    run = champion.best_fusion4_run(run_ids=list(run_ids) or None, experiment=experiment)
    click.echo(str(champion.register(run, name=name)))


@main.command("predict")
@click.option("--model", "model_uri", default="models:/emo-fusion4@champion", show_default=True,
              help="Model URI: models:/NAME@ALIAS, models:/NAME/VERSION, models:/m-… or runs:/RUN/model.")
@click.option("--data", required=True, help="Dataset folder (or `synthetic`).")
@click.option("--split", type=click.Choice(["train", "dev", "test", "all"]), default="test", show_default=True,
              help="A split of the dataset, or 'all' for every recording, labelled or not (e.g. the unlabelled/ "
                   "folder of an import).")
@click.option("--out", type=click.Path(dir_okay=False), default="predictions.csv", show_default=True,
              help="Where to write per-window predictions (.csv or .parquet).")
@data_options
def predict_cmd(model_uri, data, split, out, **opts):
    """Predict valence and arousal for every sample of a dataset split; print metrics against the labels
    (where there are labels)."""
    from emo.predict import load_model, predict_split, write_predictions
    from emo.report import metrics_table

    model = load_model(model_uri)
    table, metrics = predict_split(model, data, split=split, **opts)
    path = write_predictions(table, out)
    click.echo(f"wrote {len(table)} predictions to {path}")
    if metrics:
        click.echo(metrics_table({split: metrics}, f"{split}_"))
    else:
        click.echo("no sample has labels: predictions only, no metrics")


def _register_subcommands() -> None:
    from emo.cli_extract import extract
    from emo.cli_import import import_group

    data.add_command(import_group)
    main.add_command(extract)


_register_subcommands()

if __name__ == "__main__":
    main()
