"""A run's life: started (or resumed, or joined) in its experiment, ended FINISHED, or FAILED with the
reason, and the runs this process starts for others (a study's parent) or updates after they ended.

Under `mlflow run` the run it created (`MLFLOW_RUN_ID`) is reused rather than a second one started;
`RunEnvironment` is the one place that reads (and, for MLflow's sake, hides) that variable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass

from emo.core.errors import EmoError, TrackingError, short_error
from emo.core.signals import shielded
from emo.runs.checkpoints import drop_local, local_checkpoint
from emo.runs.store import fail_fast, is_connection_error, prepare_store, store_hint, store_name
from emo.runs.tracker import MlflowTracker

log = logging.getLogger(__name__)

RUN_ID_ENV = "MLFLOW_RUN_ID"


@dataclass(frozen=True)
class RunEnvironment:
    """What MLflow's environment decides for this process: the run `mlflow run` launched it in, and the
    experiment the user chose (MLFLOW_EXPERIMENT_NAME or _ID)."""

    launched_run: str | None
    experiment_name: str | None
    experiment_id: str | None

    @classmethod
    def read(cls) -> RunEnvironment:
        get = lambda key: os.environ.get(key) or None  # noqa: E731
        return cls(get(RUN_ID_ENV), get("MLFLOW_EXPERIMENT_NAME"), get("MLFLOW_EXPERIMENT_ID"))

    @property
    def experiment_chosen(self) -> bool:
        return bool(self.experiment_name or self.experiment_id)

    @contextlib.contextmanager
    def launched_run_hidden(self):
        """MLflow's start_run resumes $MLFLOW_RUN_ID rather than start a new run: hide it meanwhile."""
        os.environ.pop(RUN_ID_ENV, None)
        try:
            yield
        finally:
            if self.launched_run:
                os.environ[RUN_ID_ENV] = self.launched_run

    @staticmethod
    def forget_launched_run() -> None:
        """A process that joined another's run must not resume the launched one in its later runs."""
        os.environ.pop(RUN_ID_ENV, None)


def launched_run() -> str | None:
    """The run `mlflow run` launched this process in, if any."""
    return RunEnvironment.read().launched_run


@contextlib.contextmanager
def tracked_run(
    *,
    run_name: str | None = None,
    experiment: str | None = None,
    resume_run_id: str | None = None,
    tags: dict | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    join_run_id: str | None = None,
):
    """Start (or resume) an MLflow run and yield its `MlflowTracker`.

    The run is reused when `mlflow run` started it (MLFLOW_RUN_ID), resumed when
    `resume_run_id` is given, else created in `experiment` (default: MLflow's). `join_run_id`
    re-opens another process's run (a shared study's parent) even under `mlflow run`. If the body
    fails, the run is marked FAILED with the reason in the `failure_reason` tag.
    """
    fail_fast()
    prepare_store()
    tags = {k: str(v) for k, v in (tags or {}).items()}  # a REST store takes strings only
    env = RunEnvironment.read()
    run = None
    try:
        with shielded:
            run = _start(env, run_name, experiment, resume_run_id, tags, nested, parent_run_id, join_run_id)
    except KeyboardInterrupt as exc:  # a stop that came while the run was being started
        if run is not None:
            _end_failed(run.info.run_id, exc)
        raise
    except Exception as exc:
        raise TrackingError(
            f"cannot start an MLflow run in the {store_name()} ({short_error(exc)}). {store_hint()}"
        ) from None
    # a resumed run that finishes must not keep the reason it once failed
    stale_reason = resume_run_id is not None and run.info.run_id == resume_run_id and "failure_reason" in run.data.tags
    tracker = MlflowTracker(run)
    try:
        yield tracker
    except BaseException as exc:
        _end_failed(tracker.run_id, exc)
        raise
    else:
        with shielded:
            _end_finished(tracker.run_id, stale_reason)


def _start(env: RunEnvironment, run_name, experiment, resume_run_id, tags, nested, parent_run_id, join_run_id):
    """The MLflow run `tracked_run` yields, active in this process."""
    import mlflow

    top = not nested and parent_run_id is None
    if join_run_id:
        env.forget_launched_run()
        run = mlflow.start_run(run_id=join_run_id)
    elif env.launched_run and top:
        run = mlflow.start_run(run_id=env.launched_run)
    elif resume_run_id and not nested:
        run = mlflow.start_run(run_id=resume_run_id)
    else:
        if top:
            use_experiment(experiment, env)
        with env.launched_run_hidden():  # else start_run would resume that run, not start a child
            run = mlflow.start_run(
                run_name=run_name,
                nested=nested,
                parent_run_id=parent_run_id,
                tags=tags,
                experiment_id=_parent_experiment(parent_run_id) if nested else None,
            )
    if top:
        ensure_view(run.info.experiment_id)
    if run.info.run_id in (env.launched_run, resume_run_id):
        # a name MLflow made up is replaced; one `mlflow run --run-name` gave is kept
        rename = run_name and env.launched_run and _generated_name(run.info.run_name)
        mlflow.set_tags({**tags, **({"mlflow.runName": run_name} if rename else {})})
    return run


def _end_failed(run_id: str, exc: BaseException) -> None:
    """End the active run KILLED (Ctrl-C) or FAILED with the reason; a lost server raises a TrackingError
    saying how to resume, rather than waiting for more time-outs."""
    import mlflow

    if not isinstance(exc, EmoError | KeyboardInterrupt) and is_connection_error(exc):
        with contextlib.suppress(Exception):
            mlflow.end_run("FAILED")
        local = local_checkpoint(run_id)
        kept = f"the last checkpoint is kept at {local}" if local.exists() else "no checkpoint was written yet"
        raise TrackingError(
            f"lost the MLflow {store_name()} during run {run_id} ({short_error(exc)}); {kept}. When the "
            f"server is back, continue with --resume {run_id}."
        ) from None
    status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    if isinstance(exc, KeyboardInterrupt):
        # a signal raised inside a store call leaves its unfinished transaction (and sqlite's lock) with
        # the frames of the traceback; dropping them returns the connection, rolled back, to its pool
        import gc

        exc.__traceback__ = None
        gc.collect()
    with contextlib.suppress(Exception):
        mlflow.set_tag("failure_reason", short_error(exc))
    with contextlib.suppress(Exception):
        mlflow.end_run(status)
    # a signal that landed inside a store call can leave the fluent run half-closed (end_run then fails,
    # or ends nothing): end it through a client of its own, so that it is never left RUNNING
    with contextlib.suppress(Exception):
        client = mlflow.MlflowClient()
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status)


def _end_finished(run_id: str, stale_reason: bool) -> None:
    import mlflow

    if stale_reason:
        with contextlib.suppress(Exception):
            mlflow.MlflowClient().delete_tag(run_id, "failure_reason")
    mlflow.end_run("FINISHED")
    drop_local(run_id)  # a run that failed or was stopped keeps its copy, to be resumed without the server


def _generated_name(name: str | None) -> bool:
    """Whether `name` is one MLflow made up for an unnamed run ("bold-cat-123")."""
    return not name or re.fullmatch(r"[a-z]+-[a-z]+-\d+", name) is not None


def _parent_experiment(parent_run_id: str | None) -> str | None:
    """The experiment of a nested run's parent: a child goes where its parent is, whichever experiment
    this process last selected (a worker that joined a study selected none, and MLflow would fall back
    to its Default experiment)."""
    import mlflow

    parent = parent_run_id or (mlflow.active_run().info.run_id if mlflow.active_run() else None)
    return mlflow.MlflowClient().get_run(parent).info.experiment_id if parent else None


def create_run(run_name: str, *, experiment: str | None = None, tags: dict | None = None) -> str:
    """A new run (or the one `mlflow run` made) that this process does not keep active; returns its id."""
    import mlflow

    env = RunEnvironment.read()
    if env.launched_run:
        return env.launched_run
    prepare_store()
    use_experiment(experiment, env)
    run = mlflow.start_run(run_name=run_name, tags=tags)
    mlflow.end_run()
    ensure_view(run.info.experiment_id)
    return run.info.run_id


def ensure_view(experiment_id: str) -> None:
    """emo's saved view of the experiment's runs (emo.runs.ui); a store that refuses it costs only the view."""
    import mlflow

    from emo.runs import ui

    try:
        ui.ensure_view(mlflow.MlflowClient(), experiment_id)
    except Exception as exc:  # e.g. an account that may log runs but not tag the experiment
        log.debug("no saved view for experiment %s: %s", experiment_id, short_error(exc))


def default_experiment(fallback: str, experiment: str | None = None) -> str | None:
    """The MLflow experiment of a run: `experiment`, else MLflow's environment (None: leave it to
    MLflow), else `fallback` (emo-FAMILY, emo-reproduce): one per family, so that the UI's run list
    compares like with like."""
    if experiment:
        return experiment
    if RunEnvironment.read().experiment_chosen:
        return None
    return fallback


def use_experiment(name: str | None, env: RunEnvironment) -> None:
    """Make `name` (or $MLFLOW_EXPERIMENT_NAME) the active experiment, creating it if needed; workers
    started together may race to create it, and the loser simply uses the winner's."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name = name or env.experiment_name
    if not name or env.launched_run:
        return  # under `mlflow run` the experiment is already decided
    for attempt in range(3):
        try:
            mlflow.set_experiment(name)
            return
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS" or attempt == 2:
                raise
            time.sleep(0.5)


def update_run(
    run_id: str,
    *,
    metrics: dict | None = None,
    tags: dict | None = None,
    status: str | None = None,
    step: int | None = None,
) -> None:
    """Log to a run that is not this process's active one (a trial's run after it ended)."""
    import mlflow

    client = mlflow.MlflowClient()
    for k, v in (metrics or {}).items():
        client.log_metric(run_id, k, float(v), step=step)
    for k, v in (tags or {}).items():
        client.set_tag(run_id, k, str(v))
    if status:
        client.set_terminated(run_id, status)


def reopen_run(run_id: str) -> None:
    """Mark a run RUNNING again (a shared study's parent, while other workers still add trials)."""
    import mlflow

    mlflow.MlflowClient().update_run(run_id, status="RUNNING")
