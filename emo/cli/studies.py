"""`emo tune` and `emo reproduce`: the commands that run or join a shared Optuna study."""

from __future__ import annotations

import click

from emo.cli.options import AutoOr, config_from, config_options, experiment_option, heartbeat_option
from emo.core.config import HELP
from emo.studies.matrix import TABLES
from emo.studies.spaces import METRICS, TUNABLE


@click.command("tune")
@click.option(
    "--family",
    type=click.Choice(TUNABLE),
    default="fusion",
    show_default=True,
    help="Model family to tune.",
)
@config_options(*TUNABLE)
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
    type=click.Choice(list(METRICS)),
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
@experiment_option
@click.option(
    "--register/--no-register",
    default=True,
    show_default=True,
    help="Register the winner as emo-fusion4 (Fusion 4 studies only).",
)
@heartbeat_option
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


@click.command("reproduce")
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
    help=f"Comma-separated tables to run: {', '.join(TABLES)} (or all).",
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
@experiment_option
@heartbeat_option
@click.option(
    "--threads",
    type=AutoOr(int),
    default=None,
    help=f"{HELP['threads']} Each worker of a shared matrix chooses its own.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Workers on this machine (each cell on its own core): this one and N-1 child processes joining its "
    "study, each on cores / N torch threads unless --threads is given; their output goes to "
    "emo-workers/STUDY/worker-K.log.",
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
    workers,
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
    helpers = None
    if workers > 1:
        from pathlib import Path

        from emo.studies.local_workers import LocalWorkers, share_of_cores

        threads = threads or share_of_cores(workers)
        # what makes the matrix the same one: a storage given on the command line is already on one (a
        # password goes in EMO_STORAGE, which the workers inherit)
        args = ["--data", data, "--seeds", str(seeds), "--only", only, "--windows", windows, "--arch", archs]
        args += ["--epochs", str(epochs), "--label-delay", str(label_delay), "--heartbeat", str(heartbeat)]
        args += ["--storage", storage] if storage else []
        args += ["--experiment", experiment] if experiment else []
        helpers = lambda name: LocalWorkers(args, name, workers - 1, threads, Path("emo-workers") / name)  # noqa: E731
    result = reproduce(
        cells,
        seeds=seeds,
        storage=storage,
        study_name=study_name,
        experiment=experiment,
        heartbeat=heartbeat,
        helpers=helpers,
        data=data,
        epochs=epochs,
        label_delay=label_delay,
        **({"threads": threads} if threads else {}),
    )
    click.echo(
        f"matrix {result.study.study_name}: {result.finished}/{result.total} cell runs finished "
        f"({result.ran} trained by this {'process' if workers > 1 else 'worker'}, {result.reused} reused from "
        f"earlier runs); parent run "
        f"{result.parent_run_id}.\nTables: emo report {result.parent_run_id} --out report"
    )
