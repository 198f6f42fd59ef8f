"""Experiment tracking: MLflow runs, or a null tracker that keeps everything in memory.

The rest of emo talks to a `Tracker`; this module (with `emo.runs.pyfunc` for the logged model) is
the only place that imports mlflow. The tracking URI is whatever MLflow resolves
(`MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db`). Under `mlflow run` the run it created
(`MLFLOW_RUN_ID`) is reused rather than a second one started.

Checkpoints are read as data only (`torch.load(weights_only=True)`): whoever can write to the
tracking server could otherwise run code on every machine that resumes one of its runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import time
import warnings
from pathlib import Path

import torch

from emo.core.errors import CheckpointError, EmoError, TrackingError

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/checkpoint.pt"
# MLflow retries a failed HTTP request 7 times with doubling back-off (minutes of silence when the
# server is gone); emo fails within seconds instead, unless the user set these themselves.
FAIL_FAST_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class NullTracker:
    """Keeps params, metrics and artifacts in memory: for tests and library use without a server."""

    run_id: str | None = None
    experiment_id: str | None = None

    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.metrics: dict[str, list[tuple[int | None, float]]] = {}
        self.artifacts: dict[str, object] = {}
        self.tags: dict[str, str] = {}

    def log_params(self, params: dict) -> None:
        self.params.update({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        for k, v in metrics.items():
            self.metrics.setdefault(k, []).append((step, float(v)))

    def set_tags(self, tags: dict) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_checkpoint(self, body: dict, path: str = CHECKPOINT) -> None:
        self.artifacts[path] = body

    def log_figure(self, fig, path: str) -> None:
        self.artifacts[path] = fig

    def log_text(self, text: str, path: str) -> None:
        self.artifacts[path] = text

    def log_table(self, table, path: str) -> None:
        self.artifacts[path] = table

    def log_dataset(self, ds) -> None:
        self.artifacts["dataset"] = ds.fingerprint

    def log_model(
        self, artifacts: dict, signature, input_example, name: str = "model", description: str = ""
    ) -> str | None:
        self.artifacts[name] = artifacts
        return None


class MlflowTracker(NullTracker):
    """Logs to the active MLflow run."""

    def __init__(self, run) -> None:
        super().__init__()
        import mlflow

        self._mlflow = mlflow
        self.run_id, self.experiment_id = run.info.run_id, run.info.experiment_id
        self._existing = dict(run.data.params)

    def log_params(self, params: dict) -> None:
        # `mlflow run` has logged its -P values already; logging one again with another spelling
        # ("0.001" after "1e-3") is an error, so only new keys are logged.
        fresh = {k: str(v)[:6000] for k, v in params.items() if k not in self._existing}
        if fresh:
            self._mlflow.log_params(fresh)
            self._existing.update(fresh)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def set_tags(self, tags: dict) -> None:
        self._mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_checkpoint(self, body: dict, path: str = CHECKPOINT) -> None:
        # kept locally too, so a run whose server went away can still be resumed
        local = local_checkpoint(self.run_id, path)
        local.parent.mkdir(parents=True, exist_ok=True)
        # written aside and renamed: a process killed mid-write leaves the previous epoch's checkpoint whole
        tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
        try:
            torch.save(body, tmp)
            os.replace(tmp, local)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._mlflow.log_artifact(str(local), str(Path(path).parent))

    def log_figure(self, fig, path: str) -> None:
        self._mlflow.log_figure(fig, path)

    def log_text(self, text: str, path: str) -> None:
        self._mlflow.log_text(text, path)

    def log_table(self, table, path: str) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            table.to_parquet(local, index=False)
            self._mlflow.log_artifact(str(local), str(Path(path).parent))

    def log_dataset(self, ds) -> None:
        """The dataset folder as the run's input, its fingerprint as digest: the UI shows which data a run used."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "can be interpreted in multiple ways": both are the local folder
            source = resolve_dataset_source(str(ds.folder.resolve()))
        dataset = MetaDataset(source, name=ds.name, digest=ds.fingerprint[:36])
        tags = {"synthetic": str(ds.synthetic).lower(), "split_hash": ds.split.hash}
        for attempt in range(3):
            try:
                self._mlflow.log_input(dataset, context="training", tags=tags)
                return
            except Exception as exc:
                # runs started together log the same dataset at once: MLflow looks it up, finds none, and
                # each inserts it; all inserts but the first break the store's unique key. A retry finds the
                # first one's row and only links this run to it.
                if attempt == 2 or not any(s in str(exc) for s in ("UNIQUE", "IntegrityError", "duplicate key")):
                    raise
                time.sleep(0.2 * (attempt + 1))

    def log_model(
        self, artifacts: dict, signature, input_example, name: str = "model", description: str = ""
    ) -> str | None:
        """Log a pyfunc model named `name` (what the UI's model lists show); `description` is its
        Description there."""
        import emo
        from emo.runs import pyfunc_model

        package = Path(emo.__file__).parent
        info = self._mlflow.pyfunc.log_model(
            name=name,
            python_model=pyfunc_model.__file__,
            artifacts=artifacts,
            signature=signature,
            input_example=input_example,
            pip_requirements=_requirements(),
            tags={"mlflow.note.content": description} if description else None,
            code_paths=[str(package)],
        )  # the model carries the emo code it was trained with
        return info.model_uri


def _requirements() -> list[str]:
    """What a fresh environment needs to load an emo model (stated, not inferred: inference is slow).

    torch comes from PyTorch's CPU index, as in the Dockerfile and conda.yaml: a bare `torch==X` from
    PyPI is the multi-GB CUDA build on Linux. With that index `torch==X` resolves to X+cpu on Linux
    (the local label sorts higher) and to plain X on macOS. The README's team setup says how to get a
    CUDA build instead.
    """
    from importlib.metadata import PackageNotFoundError, version

    reqs = ["--extra-index-url https://download.pytorch.org/whl/cpu"]  # MLflow copies it into requirements.txt
    for name in ("mlflow", "torch", "numpy", "pandas", "scikit-learn"):
        try:
            reqs.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            reqs.append(name)
    return reqs


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
    import mlflow

    for key, value in FAIL_FAST_HTTP.items():
        os.environ.setdefault(key, value)
    prepare_store()
    tags = {k: str(v) for k, v in (tags or {}).items()}  # a REST store takes strings only
    env_run = os.environ.get("MLFLOW_RUN_ID")
    try:
        if join_run_id:
            os.environ.pop("MLFLOW_RUN_ID", None)  # else later runs of this process would resume it
            run = mlflow.start_run(run_id=join_run_id)
        elif env_run and not nested and parent_run_id is None:
            run = mlflow.start_run(run_id=env_run)
        elif resume_run_id and not nested:
            run = mlflow.start_run(run_id=resume_run_id)
        else:
            if not nested and parent_run_id is None:
                _use_experiment(experiment)
            # with MLFLOW_RUN_ID set (under `mlflow run`) start_run would resume that run, not start a child
            os.environ.pop("MLFLOW_RUN_ID", None)
            try:
                run = mlflow.start_run(
                    run_name=run_name,
                    nested=nested,
                    parent_run_id=parent_run_id,
                    tags=tags,
                    experiment_id=_parent_experiment(parent_run_id) if nested else None,
                )
            finally:
                if env_run:
                    os.environ["MLFLOW_RUN_ID"] = env_run
        if not nested and parent_run_id is None:
            _ensure_view(run.info.experiment_id)
        if run.info.run_id in (env_run, resume_run_id):
            rename = run_name and env_run and _generated_name(run.info.run_name)  # not one `mlflow run --run-name` gave
            mlflow.set_tags({**(tags or {}), **({"mlflow.runName": run_name} if rename else {})})
    except Exception as exc:
        uri = mlflow.get_tracking_uri()
        raise TrackingError(
            f"cannot start an MLflow run in the {store_name(uri)} ({short_error(exc)}). {_store_hint(uri)}"
        ) from None
    # a resumed run that finishes must not keep the reason it once failed
    stale_reason = resume_run_id is not None and run.info.run_id == resume_run_id and "failure_reason" in run.data.tags
    tracker = MlflowTracker(run)
    try:
        yield tracker
    except BaseException as exc:
        if not isinstance(exc, EmoError | KeyboardInterrupt) and _is_connection_error(exc):
            # the server is gone: telling it the run failed would only wait for more time-outs
            with contextlib.suppress(Exception):
                mlflow.end_run("FAILED")
            local = local_checkpoint(tracker.run_id)
            kept = f"the last checkpoint is kept at {local}" if local.exists() else "no checkpoint was written yet"
            raise TrackingError(
                f"lost the MLflow {store_name(mlflow.get_tracking_uri())} during run "
                f"{tracker.run_id} ({short_error(exc)}); {kept}. When the server is back, continue "
                f"with --resume {tracker.run_id}."
            ) from None
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):
            mlflow.set_tag("failure_reason", short_error(exc))
        try:
            mlflow.end_run(status)
        except Exception:
            # a signal that landed inside a store call can leave the fluent run half-closed: end it
            # through a client of its own, so that it is not left RUNNING
            with contextlib.suppress(Exception):
                mlflow.MlflowClient().set_terminated(tracker.run_id, status)
        raise
    else:
        if stale_reason:
            with contextlib.suppress(Exception):
                mlflow.MlflowClient().delete_tag(tracker.run_id, "failure_reason")
        mlflow.end_run("FINISHED")


def _generated_name(name: str | None) -> bool:
    """Whether `name` is one MLflow made up for an unnamed run ("bold-cat-123")."""
    return not name or re.fullmatch(r"[a-z]+-[a-z]+-\d+", name) is not None


def _sqlite_path(uri: str) -> str | None:
    """The database file of a `sqlite:` tracking URI (absolute), else None (a server, a folder, memory)."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def _local_folder(uri: str) -> str | None:
    """The folder of a file tracking store (`file:` URI or a bare path), else None."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return os.path.abspath(parsed.path)
    if not parsed.scheme or len(parsed.scheme) == 1:  # a bare path (or a Windows drive letter)
        return os.path.abspath(uri)
    return None


_DATABASES = ("postgresql", "mysql", "mssql")


def store_name(uri: str) -> str:
    """How messages name the tracking store: a local file is not a server that may be down."""
    if (db := _sqlite_path(uri)) is not None:
        return f"sqlite store at {db}"
    if uri.startswith("sqlite:"):
        return "in-memory sqlite store"
    if uri.startswith(_DATABASES):
        from sqlalchemy.engine import make_url

        with contextlib.suppress(Exception):
            uri = make_url(uri).render_as_string(hide_password=True)
        return f"database store at {uri}"
    if not uri.startswith("databricks") and (folder := _local_folder(uri)) is not None:
        return f"local store at {folder}"
    return f"tracking server at {uri}"


def _store_hint(uri: str) -> str:
    name = store_name(uri)
    if name.startswith(("sqlite", "in-memory")):
        return (
            "Check that the file is an MLflow database this user can read and write (move a damaged one aside "
            "to start a new store) and that MLFLOW_TRACKING_URI is right."
        )
    if name.startswith("database"):
        return "Check that the database is up and that MLFLOW_TRACKING_URI is right."
    if name.startswith("local"):
        return "Check that the folder is writable and that MLFLOW_TRACKING_URI is right."
    return "Check that the tracking server is up and MLFLOW_TRACKING_URI is right."


_PREPARED: set[str] = set()


def prepare_store() -> None:
    """Create or upgrade a sqlite store's schema once, under an exclusive lock on `<db>.lock`.

    MLflow migrates a sqlite database on first use; processes started together in a new folder
    would run the migrations at the same time and leave a half-migrated database ("table
    _alembic_tmp_... already exists"). The first to take the lock migrates; the others wait, then
    find the schema current. Servers and other stores migrate themselves (or `mlflow db upgrade`).
    """
    import mlflow

    uri = mlflow.get_tracking_uri()
    db = _sqlite_path(uri)
    if db is None or uri in _PREPARED:
        return
    try:
        import fcntl
    except ImportError:  # no flock (Windows): MLflow migrates unguarded, as before
        fcntl = None
    try:
        Path(db).parent.mkdir(parents=True, exist_ok=True)  # as MLflow does for a sqlite store
        with open(f"{db}.lock", "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                mlflow.MlflowClient(uri).search_experiments(max_results=1)
            finally:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)
    except Exception as exc:
        raise TrackingError(
            f"cannot open the MLflow {store_name(uri)} ({short_error(exc)}). {_store_hint(uri)}"
        ) from None
    _PREPARED.add(uri)


def _is_connection_error(exc: BaseException) -> bool:
    """True when `exc` says the tracking server could not be reached (MLflow wraps requests' errors)."""
    text = f"{type(exc).__name__} {exc}"
    return any(
        s in text
        for s in (
            "ConnectionError",
            "Connection refused",
            "Max retries exceeded",
            "Failed to establish a new connection",
            "Read timed out",
        )
    )


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

    env_run = os.environ.get("MLFLOW_RUN_ID")
    if env_run:
        return env_run
    prepare_store()
    _use_experiment(experiment)
    run = mlflow.start_run(run_name=run_name, tags=tags)
    mlflow.end_run()
    _ensure_view(run.info.experiment_id)
    return run.info.run_id


def _ensure_view(experiment_id: str) -> None:
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
    if os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return None
    return fallback


def _use_experiment(name: str | None) -> None:
    """Make `name` (or $MLFLOW_EXPERIMENT_NAME) the active experiment, creating it if needed; workers
    started together may race to create it, and the loser simply uses the winner's."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name or os.environ.get("MLFLOW_RUN_ID"):
        return  # under `mlflow run` the experiment is already decided
    for attempt in range(3):
        try:
            mlflow.set_experiment(name)
            return
        except MlflowException as exc:
            if "ALREADY_EXISTS" not in str(exc) or attempt == 2:
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


def local_checkpoint(run_id: str, path: str = CHECKPOINT) -> Path:
    """Where a run's checkpoint is kept on this machine: $EMO_CHECKPOINT_DIR (default ./checkpoints)/RUN_ID/."""
    return Path(os.environ.get("EMO_CHECKPOINT_DIR", "checkpoints")) / run_id / Path(path).name


class _Unreadable(Exception):
    """A checkpoint file that is cut short or damaged (not one that was refused)."""


def _read_checkpoint(file, run_id: str, where: str) -> dict:
    """A checkpoint as data only: tensors, numbers, strings, lists and dicts; anything else is refused
    (a pickle can run any code while it is read, and a tracking server may hold anyone's file).
    `where` names the copy in messages."""
    try:
        # on the CPU: a run trained on a GPU may be resumed on a machine without one (--device)
        body = torch.load(file, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        import re

        found = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed| Please use|$)", str(exc), re.M)
        reason = found.group(1).strip() if found else short_error(exc)
        raise CheckpointError(
            f"run {run_id}'s checkpoint {where} is not a plain emo checkpoint: it holds objects "
            f"other than tensors and plain values ({reason[:300]}), and reading those can run "
            f"code, so it was not read. emo writes only plain data there: someone who can write "
            f"to it replaced the file. Do not resume this run; start a new one."
        ) from None
    except Exception as exc:  # a zip cut short, an empty file, a read error
        raise _Unreadable(short_error(exc)) from None
    if not isinstance(body, dict) or not {"model", "state"} <= set(body):
        held = f"the keys {', '.join(map(str, list(body)[:8]))}" if isinstance(body, dict) else type(body).__name__
        raise CheckpointError(
            f"run {run_id}'s checkpoint {where} is not a plain emo checkpoint: it holds {held}, "
            f"not the model and training state emo writes."
        )
    return body


def load_checkpoint(run_id: str, path: str = CHECKPOINT) -> dict:
    """The checkpoint a run logged, for `--resume RUN_ID`: the local copy when there is one and it is whole,
    else the tracking store's. Either is read as data only (see `_read_checkpoint`)."""
    import mlflow

    local = local_checkpoint(run_id, path)
    damaged = None
    if local.exists():
        try:
            return _read_checkpoint(local, run_id, str(local))
        except _Unreadable as exc:
            damaged = f"the local copy {local} is unreadable ({exc})"
            log.warning(
                "%s, probably cut short when a training was stopped; using the checkpoint of run %s on the "
                "MLflow %s instead.",
                damaged,
                run_id,
                store_name(mlflow.get_tracking_uri()),
            )
    prepare_store()
    try:
        downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    except Exception as exc:
        also = f"{damaged}, and " if damaged else ""
        raise TrackingError(
            f"{also}run {run_id} has no checkpoint {path} to resume from ({short_error(exc)}). Check "
            f"the run id (mlflow ui shows it) and that MLFLOW_TRACKING_URI points at the same "
            f"store."
        ) from None
    where = f"{path} in the MLflow {store_name(mlflow.get_tracking_uri())}"
    try:
        return _read_checkpoint(downloaded, run_id, where)
    except _Unreadable as exc:
        also = f"{damaged}, and " if damaged else ""
        raise TrackingError(
            f"{also}run {run_id}'s checkpoint {where} is unreadable{' too' if damaged else ''} "
            f"({exc}); the run cannot be resumed: start a new one."
        ) from None


def run_table(run_id: str, path: str):
    """A parquet table a run logged (such as its test predictions), as a DataFrame (data, not code)."""
    import mlflow
    import pandas as pd

    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    except Exception as exc:
        raise TrackingError(
            f"run {run_id} has no {path} ({short_error(exc)}); it was logged by an older emo, or the "
            f"artifact store is not reachable."
        ) from None
    return pd.read_parquet(local)


def log_artifacts(run_id: str, folder, artifact_path: str) -> None:
    """Log a local folder's files to a run that is not this process's active one."""
    import mlflow

    mlflow.MlflowClient().log_artifacts(run_id, str(folder), artifact_path)


def run_text(run_id: str, path: str) -> str | None:
    """A text file a run logged (such as a matrix's cells.txt); None where the run has none."""
    import mlflow

    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")
    except Exception:  # absent (an older run) or unreadable: the caller says what that leaves unknown
        return None
