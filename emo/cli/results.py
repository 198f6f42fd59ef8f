"""`emo report`, `emo register` and `emo predict`: what is done with tracked runs and logged models."""

from __future__ import annotations

import click

from emo.cli.options import AutoOr, data_options
from emo.core.config import SPLITS
from emo.studies.spaces import METRICS


@click.command("report")
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
@click.option(
    "--data",
    default=None,
    help="The runs' dataset folder, whose meta.json groups (e.g. culture) give the results per group. "
    "[default: the data folder the runs logged, where it is on this machine]",
)
def report_cmd(target, out, resamples, data):
    """Rebuild the thesis's tables from a matrix's runs: TARGET is the parent run id `emo reproduce`
    printed, or an experiment name or id (all its matrix runs). The files are also logged to the
    parent run (under report/). It prints how many of the matrix's expected cell runs finished and
    names the missing ones."""
    from emo.report.groups import report_groups
    from emo.report.page import write
    from emo.report.tables import build, collect, matrix_runs
    from emo.runs.queries import log_artifacts, run_table

    matrix = matrix_runs(target)
    frame = collect(matrix.runs, where=matrix.where)
    report = build(
        frame,
        matrix=matrix,
        resamples=resamples,
        # a run's test predictions, or a sequence run's on a windowed cell's test windows ("test_4s_last")
        predictions=lambda run_id, name="test": run_table(run_id, f"predictions/{name}.parquet"),
        groups=report_groups(frame, data),
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


@click.command("register")
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
    type=click.Choice(list(METRICS)),
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


@click.command("predict")
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
