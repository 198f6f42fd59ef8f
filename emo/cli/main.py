"""The `emo` command line: thin click commands over the library's functions."""

from __future__ import annotations

import logging
import os
import signal
import sys

# OpenMP threads waiting for work spin on their core by default. On a machine shared with other work
# (or other emo workers) they steal it: a 2-thread training step ran 2.4x slower than a 1-thread one
# beside one busy process, and at the 1-thread speed with PASSIVE (bench/training.py --busy 1). Sleeping
# waiters cost 16-27% on an idle machine; OMP_WAIT_POLICY=ACTIVE there takes it back. Read once, when
# torch loads OpenMP: set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click

from emo import __version__
from emo.core.config import HEARTBEAT_SECONDS, HELP, SPLITS
from emo.core.errors import EmoError


def data_options(f):
    """Options every command that reads a dataset folder shares."""
    f = click.option("--fps", type=float, default=None, help="Frame rate, when meta.json has none.")(f)
    f = click.option(
        "--label-scale",
        type=float,
        default=None,
        help="Labels lie in [-S, S] (SEWA 1, AFEW-VA 10); default: meta.json, else 1.",
    )(f)
    f = click.option(
        "--id-pattern",
        default=None,
        help="Regex with a named group 'id' deriving the video id from the video table's 'path'.",
    )(f)
    f = click.option(
        "--audio-id-pattern",
        default=None,
        help="Regex with a named group 'id' deriving the video id from an audio table's 'filename'.",
    )(f)
    f = click.option(
        "--split-seed",
        type=int,
        default=0,
        show_default=True,
        help="Seed of the video split, used only when the dataset has no split yet.",
    )(f)
    return f


class Stopped(KeyboardInterrupt):
    """A stop signal, raised like Ctrl-C's KeyboardInterrupt (open runs end as KILLED) and carrying the
    signal, so that the exit code can say which one stopped emo."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _terminate(signum, frame):
    raise Stopped(signum)


class EmoGroup(click.Group):
    """Turns an EmoError anywhere below into a one-paragraph message and exit code 2, and SIGINT or
    SIGTERM into exit code 130 or 143."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            # 128 + the signal, as a shell reports a process the signal ended: schedulers and `mlflow run`
            # tell "stopped" from "failed" by it (click would exit 1 with "Aborted!")
            signum = getattr(exc, "signum", signal.SIGINT)
            click.echo(f"interrupted by {signal.Signals(signum).name}", err=True)
            ctx.exit(128 + signum)
        except EmoError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except Exception as exc:
            if not type(exc).__module__.startswith(("mlflow", "optuna")):
                raise
            # the store or server refused something: its own message says what, no traceback needed
            text = str(exc).strip().splitlines()
            click.echo(
                f"error: {type(exc).__module__.split('.')[0]} said: {text[0] if text else type(exc).__name__}", err=True
            )
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
    emo reproduce    run the thesis's experiment matrix (cells × seeds), shareable between workers
    emo report       rebuild the thesis's tables (Markdown, CSV, an HTML page) from a matrix's runs
    emo mlproject    regenerate the MLproject file from emo's settings
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # `docker stop` and schedulers send SIGTERM: end like Ctrl-C, so open runs are closed as KILLED
    signal.signal(signal.SIGTERM, _terminate)


@main.group()
def data() -> None:
    """Dataset folders: generate, import, validate, split."""


@data.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--kind",
    type=click.Choice(["sewa", "afew"]),
    default="sewa",
    show_default=True,
    help="SEWA-like (video + 4 audio tables, labels in [-1, 1]) or AFEW-VA-like (video only, [-10, 10]).",
)
@click.option(
    "--scale",
    type=click.Choice(["test", "demo", "sewa"]),
    default="test",
    show_default=True,
    help="Size preset: 'test' is small; 'demo' is the embedded default corpus; 'sewa' is SEWA's real "
    "size (for benchmarks).",
)
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
@click.option(
    "--per-video/--no-per-video",
    default=None,
    help="List every video's coverage (labelled, unlabelled frames, gaps, label range). "
    "[default: when there are at most 20]",
)
def check_cmd(data, window, per_video, **opts):
    """Validate dataset folder DATA and print a summary (videos, frames, fps, dims, labels, coverage, split)."""
    from emo.data.dataset import load_dataset
    from emo.data.summary import summarize

    ds = load_dataset(data, **opts)  # the --options of `data_options` are load_dataset's keywords
    click.echo(summarize(ds, windows_s=window, per_video=per_video))


@data.command("split")
@click.argument("data")
@data_options
def split_cmd(data, **opts):
    """Make the train/dev/test split by video (split.json) if missing, and print it."""
    from emo.data.dataset import load_dataset

    ds = load_dataset(data, **opts)
    s = ds.split
    click.echo(f"split of {ds.folder} ({s.source}, seed {s.seed}, hash {s.hash}):")
    for name in SPLITS:
        ids = s.of(name)
        click.echo(f"  {name:5s} {len(ids):4d} videos  {', '.join(ids[:6])}{' …' if len(ids) > 6 else ''}")


class AutoOr(click.ParamType):
    """A number, string or choice that also takes "auto": the default decided by the data or the model."""

    def __init__(self, kind: type, choices: tuple[str, ...] | None = None) -> None:
        self.kind, self.choices = kind, choices
        self.name = kind.__name__ if choices is None else "choice"

    def get_metavar(self, param, ctx=None) -> str | None:
        return f"[{'|'.join(self.choices)}]" if self.choices else None

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        if self.choices is not None and str(value) not in self.choices:
            self.fail(f"{value!r} is not one of {', '.join(self.choices)}", param, ctx)
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a valid {self.name} (or 'auto')", param, ctx)


def _shown_default(name: str, families: tuple[str, ...]) -> str:
    """A setting's default as --help shows it: one value, or one per model that takes it."""
    from emo.core.config import FAMILIES, METHODS, MODEL_KEYS, Config

    configs = [
        (f"fusion {m}", Config(family=f, method=m)) if f == "fusion" else (f, Config(family=f))
        for f in families
        if f in FAMILIES
        for m in (METHODS if f == "fusion" else (None,))
    ]
    if name not in MODEL_KEYS:  # not a model's: the family's own default (Fusion 4 for fusion)
        configs = [(f, Config(family=f)) for f in families if f in FAMILIES]
    values: dict[str, list[str]] = {}
    for label, config in configs:
        params = config.params()
        if name in params:
            values.setdefault(params[name], []).append(label)
    if len(values) == 1 and sum(map(len, values.values())) == len(configs):
        return next(iter(values))
    return "; ".join(f"{value} ({', '.join(labels)})" for value, labels in values.items())


def config_options(*families: str):
    """One --option per setting of `families` (default: every family), typed from `Config`, closed lists
    as choices; unset options keep Config's defaults."""
    import dataclasses
    import typing

    from emo.core.config import CHOICES, FAMILIES, HELP, Config, family_settings

    families = families or tuple(FAMILIES)
    names = {n for family in families for n in family_settings(family)}
    hints = typing.get_type_hints(Config)

    def decorate(f):
        for field in reversed(dataclasses.fields(Config)):
            if field.name not in names:
                continue
            hint = hints[field.name]
            base = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
            kind = AutoOr({int: int, float: float}.get(base, str), CHOICES.get(field.name))
            f = click.option(
                f"--{field.name.replace('_', '-')}",
                field.name,
                type=kind,
                default=None,
                help=f"{HELP.get(field.name, '')} [default: {_shown_default(field.name, families)}]",
            )(f)
        return f

    return decorate


def config_from(family: str, options: dict):
    from emo.core.config import Config

    values = {k: v for k, v in options.items() if v is not None}
    if "algorithms" in values:
        values["algorithms"] = tuple(a.strip() for a in values["algorithms"].split(",") if a.strip())
    return Config(family=family, **values).validate()


FAMILY_HELP = {
    "baseline": "Bayesian Ridge, SVR and a Decision Tree on single frames (scikit-learn), one nested run each.",
    "ffnn": "A feed-forward net on single frames' face embeddings.",
    "video": "A GRU over windows of face embeddings, pooled over time (avg, max or conv1d).",
    "audio": "A feed-forward net on one audio table's functionals (audio_1s ... audio_4s).",
    "fusion": "Audio-visual fusion of a window's face embeddings and audio rows: methods 1-4 (4: transformer "
    "cross-attention, variants v1-v3).",
}


@main.group("train")
def train_group() -> None:
    """Train one model family on a dataset and track it in MLflow.

    The tracking store is MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here; runs go to the experiment
    emo-FAMILY unless --experiment (or MLFLOW_EXPERIMENT_NAME) says otherwise.
    `emo train FAMILY --help` lists the family's settings.
    """


def _train_command(family: str) -> click.Command:
    @click.pass_context
    def train_cmd(ctx, experiment, run_name, resume, no_track, **options):
        if isinstance(options.get("method"), tuple):  # see the --method option below
            methods = set(options["method"])
            if len(methods) > 1:
                raise click.UsageError(
                    "--method was given twice with different values: under `mlflow run`, "
                    "`-e fusion` trains Fusion 4; use `-e fusion1`, `-e fusion2` or `-e fusion3` "
                    "for the other methods.",
                    ctx,
                )
            options["method"] = methods.pop() if methods else None
        config = config_from(family, options)  # refused here, before torch is loaded, when invalid
        from emo.experiment import run_experiment
        from emo.report.summary import describe
        from emo.runs.resume import resume_config

        if resume:
            given = {k: v for k, v in config.to_dict().items() if options.get(k) is not None}
            config = resume_config(resume, given).validate()
        result = run_experiment(config, track=not no_track, run_name=run_name, experiment=experiment, resume=resume)
        click.echo(describe(result))

    f = click.option("--no-track", is_flag=True, help="Do not log to MLflow (print the metrics only).")(train_cmd)
    f = click.option(
        "--resume", default=None, metavar="RUN_ID", help="Continue the run RUN_ID from its last checkpoint."
    )(f)
    f = click.option("--run-name", default=None, help="MLflow run name. [default: model, settings and seed]")(f)
    f = click.option(
        "--experiment", default=None, help=f"MLflow experiment (ignored under `mlflow run`). [default: emo-{family}]"
    )(f)
    command = click.command(family, help=FAMILY_HELP[family], short_help=FAMILY_HELP[family])(config_options(family)(f))
    if family == "fusion":
        # the MLproject's per-method entry points pass --method N; a second -P method=M is refused, not obeyed
        method = next(p for p in command.params if p.name == "method")
        method.multiple, method.default = True, None
    return command


def _add_train_commands() -> None:
    from emo.core.config import FAMILIES

    for family in FAMILIES:
        train_group.add_command(_train_command(family))


_add_train_commands()


# options every study command (tune, reproduce) takes
_experiment_option = click.option(
    "--experiment", type=AutoOr(str), default=None, help="MLflow experiment name (ignored under `mlflow run`)."
)
_heartbeat_option = click.option(
    "--heartbeat",
    type=click.IntRange(min=1),
    default=HEARTBEAT_SECONDS,
    show_default=True,
    help="Seconds between a worker's heartbeats; a worker silent for 3 is taken for dead.",
)


@main.command("tune")
@click.option(
    "--family",
    type=click.Choice(["fusion", "video", "audio", "ffnn"]),
    default="fusion",
    show_default=True,
    help="Model family to tune.",
)
@config_options("fusion", "video", "audio", "ffnn")
@click.option(
    "--trials",
    type=AutoOr(int),
    default=None,
    help="Complete or pruned trials the study should hold (all workers together). [default: 20 "
    "unless --timeout is given]",
)
@click.option(
    "--timeout", type=AutoOr(float), default=None, help="Stop this worker after N seconds. [default: no limit]"
)
@click.option(
    "--storage",
    type=AutoOr(str),
    default=None,
    help="Optuna storage URL; a PostgreSQL URL shares the study between workers. A URL holding a "
    "password goes in EMO_STORAGE, never on a command line. [default: $EMO_STORAGE, else "
    "sqlite:///optuna.db]",
)
@click.option("--study-name", type=AutoOr(str), default=None, help="Study to create or join. [default: emo-FAMILY]")
@click.option("--space", type=AutoOr(str), default=None, help="JSON file overriding the family's search space.")
@click.option(
    "--metric",
    type=click.Choice(["rmse", "ccc"]),
    default="rmse",
    show_default=True,
    help="Objective: mean dev RMSE (minimised) or mean dev CCC (maximised) over valence and arousal.",
)
@click.option("--pruner", default="median", show_default=True, help="median, none or percentile:P.")
@click.option(
    "--sampler-seed",
    type=AutoOr(int),
    default=None,
    help="Seed of the TPE sampler (one worker: reproducible). [default: random]",
)
@_experiment_option
@click.option(
    "--register/--no-register",
    default=True,
    show_default=True,
    help="Register the winner as emo-fusion4 (Fusion 4 studies only).",
)
@_heartbeat_option
@click.option(
    "--cell",
    type=AutoOr(str),
    default=None,
    help="Tune one named experiment of the matrix (`emo reproduce --list`): its settings stay fixed, "
    "the rest of its family's space is searched.",
)
def tune_cmd(
    family,
    trials,
    timeout,
    storage,
    study_name,
    space,
    metric,
    pruner,
    sampler_seed,
    experiment,
    register,
    heartbeat,
    cell,
    **options,
):
    """Tune a family's hyperparameters with Optuna; every trial is a nested MLflow run.

    The same command started several times with one --storage and --study-name makes several
    workers of one study. The test set is never seen by the study: the winner's test metrics are
    computed once at the end.
    """
    from emo.studies.tuning import summary, tune

    if trials is not None and trials < 1:
        raise click.BadParameter(f"--trials must be at least 1 (got {trials}).")
    fixed = {}
    if cell:
        from emo.studies.matrix import find

        named = find(cell)
        family, fixed = named.family, named.settings
        study_name = study_name or f"emo-{named.name.replace('/', '-')}"
    base = config_from(family, {**options, **fixed})
    result = tune(
        base,
        trials=trials if trials or timeout else 20,
        timeout=timeout,
        storage=storage,
        study_name=study_name,
        space=space,
        metric=metric,
        pruner=pruner,
        sampler_seed=sampler_seed,
        experiment=experiment,
        heartbeat=heartbeat,
        fixed=tuple(fixed),
        register=register,
    )
    click.echo(summary(result.study))
    if result.test:
        click.echo(
            "winner's test metrics: "
            + ", ".join(f"{k} {v:.4f}" for k, v in result.test.items() if "rmse" in k or "ccc" in k)
        )
    if result.registration:
        click.echo(result.registration)


@main.command("reproduce")
@click.option("--data", default="synthetic", show_default=True, help=HELP["data"])
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Seeds per cell (0 … N-1): the report gives mean ± std over them.",
)
@click.option(
    "--only",
    default="all",
    show_default=True,
    help="Comma-separated tables to run: baseline, ffnn, video, audio, fusion (or all).",
)
@click.option("--windows", default="all", show_default=True, help="Comma-separated windows in seconds (1-4), or all.")
@click.option(
    "--arch",
    "archs",
    default="all",
    show_default=True,
    help="emo, thesis, or all: the models as the thesis wrote them, emo's, or both side by side.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True, help="Maximum epochs per cell.")
@click.option("--label-delay", type=float, default=0.0, show_default=True, help="Annotator lag in seconds.")
@click.option(
    "--storage",
    type=AutoOr(str),
    default=None,
    help="Optuna storage URL shared by the workers; one holding a password goes in EMO_STORAGE, never on "
    "a command line. [default: $EMO_STORAGE, else sqlite:///optuna.db]",
)
@click.option(
    "--study-name",
    type=AutoOr(str),
    default=None,
    help="The matrix's study. [default: emo-reproduce-HASH of the cells, seeds, data and settings]",
)
@_experiment_option
@_heartbeat_option
@click.option(
    "--threads",
    type=AutoOr(int),
    default=None,
    help=f"{HELP['threads']} Each worker of a shared matrix chooses its own.",
)
@click.option("--list", "list_only", is_flag=True, help="List the cells and exit.")
def reproduce_cmd(
    data,
    seeds,
    only,
    windows,
    archs,
    epochs,
    label_delay,
    storage,
    study_name,
    experiment,
    heartbeat,
    threads,
    list_only,
):
    """Run the thesis's experiment matrix: every cell × seed a nested MLflow run of one parent run.

    Start the same command on several machines with one PostgreSQL --storage to share the
    matrix; a cell already run on the same data and settings is reused, not retrained.
    Then `emo report PARENT_RUN_ID` rebuilds the thesis's tables.
    """
    from emo.studies.matrix import select
    from emo.studies.reproduce import reproduce

    every = lambda v: None if v == "all" else v  # noqa: E731
    cells = select(every(only), every(windows), every(archs))
    if list_only:
        for cell in cells:
            click.echo(f"{cell.name:36s} {cell.family:9s} {cell.settings}")
        return
    result = reproduce(
        cells,
        seeds=seeds,
        storage=storage,
        study_name=study_name,
        experiment=experiment,
        heartbeat=heartbeat,
        data=data,
        epochs=epochs,
        label_delay=label_delay,
        **({"threads": threads} if threads else {}),
    )
    click.echo(
        f"matrix {result.study.study_name}: {result.finished}/{result.total} cell runs finished "
        f"({result.ran} trained by this worker, {result.reused} reused from earlier runs); parent run "
        f"{result.parent_run_id}.\nTables: emo report {result.parent_run_id} --out report"
    )


@main.command("report")
@click.argument("target", metavar="RUN_OR_EXPERIMENT")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="report",
    show_default=True,
    help="Folder for report.html, report.md, tables/*.csv and plots/*.png.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=100),
    default=2000,
    show_default=True,
    help="Bootstrap resamples of the like-for-like comparison.",
)
def report_cmd(target, out, resamples):
    """Rebuild the thesis's tables from a matrix's runs: TARGET is the parent run id `emo reproduce`
    printed, or an experiment name or id (all its matrix runs). The files are also logged to the
    parent run (under report/). It prints how many of the matrix's expected cell runs finished and
    names the missing ones."""
    from emo.report.page import write
    from emo.report.tables import build, collect, matrix_runs
    from emo.runs.queries import log_artifacts, run_table

    matrix = matrix_runs(target)
    report = build(
        collect(matrix.runs, where=matrix.where),
        matrix=matrix,
        resamples=resamples,
        predictions=lambda run_id: run_table(run_id, "predictions/test.parquet"),
    )
    data = "synthetic data" if report.synthetic else (report.corpus or "the dataset").upper()
    paths = write(report, out, f"emo: the thesis's experiments on {data}")
    if matrix.parent:
        log_artifacts(matrix.parent, out, "report")
    for name, table in report.tables.items():
        click.echo(f"{name}: {len(table)} row(s)")
    click.echo(f"cell runs: {report.counted}")
    click.echo(
        f"wrote {paths['report.html']} ({paths['report.html'].stat().st_size / 1e3:.0f} kB), report.md and "
        f"tables/*.csv" + (f"; logged to run {matrix.parent} under report/" if matrix.parent else "")
    )


@main.command("register")
@click.option("--run-id", "run_ids", multiple=True, help="Candidate run(s); default: the experiment's Fusion 4 runs.")
@click.option(
    "--experiment",
    type=AutoOr(str),
    default=None,
    help="Only runs of this MLflow experiment. [default: MLFLOW_EXPERIMENT_NAME, else emo-fusion]",
)
@click.option("--all-experiments", is_flag=True, help="Candidates from every experiment.")
@click.option(
    "--metric",
    type=click.Choice(["rmse", "ccc"]),
    default="rmse",
    show_default=True,
    help="How the candidate and the champion are compared (on the same dev windows and targets).",
)
@click.option("--name", default="emo-fusion4", show_default=True, help="Registered model name.")
def register_cmd(run_ids, experiment, all_experiments, metric, name):
    """Register the best Fusion 4 run (by dev RMSE); it becomes @champion only if it beats the current one
    like for like."""
    from emo.runs import champion

    run = champion.best_fusion4_run(
        run_ids=list(run_ids) or None, experiment=experiment, all_experiments=all_experiments
    )
    click.echo(str(champion.register(run, name=name, metric=metric)))


@main.command("predict")
@click.option(
    "--model",
    "model_uri",
    default="models:/emo-fusion4@champion",
    show_default=True,
    help="Model URI: models:/NAME@ALIAS, models:/NAME/VERSION, models:/m-… or runs:/RUN/model.",
)
@click.option("--data", required=True, help="Dataset folder (or `synthetic`).")
@click.option(
    "--split",
    type=click.Choice([*SPLITS, "all"]),
    default="test",
    show_default=True,
    help="A split of the dataset, or 'all' for every recording, labelled or not (e.g. the unlabelled/ "
    "folder of an import).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="predictions.csv",
    show_default=True,
    help="Where to write per-window predictions (.csv or .parquet).",
)
@data_options
def predict_cmd(model_uri, data, split, out, **opts):
    """Predict valence and arousal for every sample of a dataset split; print metrics against the labels
    (where there are labels)."""
    from emo.predict import predict_split, write_predictions
    from emo.report.summary import metrics_table
    from emo.runs.queries import load_model

    model = load_model(model_uri)
    table, metrics = predict_split(model, data, split=split, **opts)
    path = write_predictions(table, out)
    click.echo(f"wrote {len(table)} predictions to {path}")
    if metrics:
        click.echo(metrics_table({split: metrics}, f"{split}/"))
    else:
        click.echo("no sample has labels: predictions only, no metrics")


@main.command("mlproject")
@click.option("--check", is_flag=True, help="Only check that MLproject is up to date (exit 1 when it is not).")
@click.option("--path", type=click.Path(dir_okay=False), default="MLproject", show_default=True)
def mlproject_cmd(check, path):
    """Write the MLproject file from emo's settings (every default declared once, in emo)."""
    from pathlib import Path

    from emo.cli.mlproject import render

    text, target = render(main), Path(path)
    if check:
        same = target.exists() and target.read_text() == text
        click.echo(f"{target} is {'up to date' if same else 'out of date: run `emo mlproject`'}")
        raise SystemExit(0 if same else 1)
    target.write_text(text)
    click.echo(f"wrote {target}")


def _register_subcommands() -> None:
    from emo.cli.data_import import import_group
    from emo.cli.extract import extract

    data.add_command(import_group)
    main.add_command(extract)


_register_subcommands()
