"""`emo train FAMILY`: one command per model family, its options from `Config`."""

from __future__ import annotations

import click

from emo.cli.options import config_from, config_options
from emo.core.config import LATE_PARTNERS

FAMILY_HELP = {
    "baseline": "Bayesian Ridge, SVR and a Decision Tree on single frames (scikit-learn), one nested run each.",
    "ffnn": "A feed-forward net on single frames' face embeddings.",
    "video": "A GRU over windows of face embeddings, pooled over time (avg, max or conv1d).",
    "audio": "A feed-forward net on one audio table's functionals (audio_1s ... audio_4s).",
    "fusion": "Audio-visual fusion of a window's face embeddings and audio rows: methods 1-4 (4: transformer "
    "cross-attention, variants v1-v3).",
    "seq": "The AVEC/MuSe sequence baseline: a GRU over long segments predicting every frame, on video, audio or "
    "both (CCC loss).",
}


@click.group("train")
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


LATE_HELP = (
    "Late fusion of a logged video run and an audio run (seq on video and on audio, or a video and an audio run "
    "of one window): a weight per target fitted on dev only."
)


@click.command("late", help=LATE_HELP, short_help=LATE_HELP)
@click.option(
    "--video-run", default=None, metavar="RUN_ID", help="A finished `emo train seq --modality video` or video run."
)
@click.option(
    "--audio-run", default=None, metavar="RUN_ID", help="A finished `emo train seq --modality audio` or audio run."
)
@click.option(
    "--from-experiment",
    default=None,
    metavar="NAME",
    help="Instead of the two runs: the best video and audio runs (by dev RMSE) of this experiment.",
)
@click.option(
    "--partners",
    type=click.Choice(list(LATE_PARTNERS)),
    default="seq",
    show_default=True,
    help="With --from-experiment: seq runs, or a video and an audio run of the same window.",
)
@click.option("--experiment", default=None, help="MLflow experiment. [default: emo-late]")
@click.option("--run-name", default=None, help="MLflow run name. [default: late seq|Ws video+audio seedN]")
def late_cmd(video_run, audio_run, from_experiment, partners, experiment, run_name):
    from emo.late_fusion import best_partners, late_fusion
    from emo.report.summary import metrics_table

    if bool(from_experiment) == bool(video_run and audio_run) or (video_run is None) != (audio_run is None):
        raise click.UsageError("give --video-run and --audio-run, or --from-experiment.")
    if from_experiment:
        video_run, audio_run = best_partners(from_experiment, partners)
        click.echo(f"fusing video run {video_run}, audio run {audio_run} (the best of {from_experiment!r} on dev)")

    result = late_fusion(video_run, audio_run, experiment=experiment, run_name=run_name)
    click.echo("video weight: " + ", ".join(f"{t} {w:.3f}" for t, w in result.weights.items()) + " (fitted on dev)")
    click.echo(metrics_table({"dev": result.dev}, "dev/"))
    click.echo(metrics_table({"test": result.test}, "test/"))
    click.echo(f"MLflow run {result.run_id}, model {result.model_uri}.")


def _add_train_commands() -> None:
    from emo.core.config import FAMILIES

    for family in FAMILIES:
        train_group.add_command(_train_command(family))
    train_group.add_command(late_cmd)


_add_train_commands()
