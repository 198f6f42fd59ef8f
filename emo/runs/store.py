"""The tracking store: how messages name it, what to check when it fails, and its sqlite schema
created once under a lock.

The tracking URI is whatever MLflow resolves (`MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from emo.core.errors import TrackingError, exception_chain, short_error

# MLflow retries a failed HTTP request 7 times with doubling back-off (minutes of silence when the
# server is gone); emo fails within seconds instead, unless the user set these themselves.
FAIL_FAST_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_DATABASES = ("postgresql", "mysql", "mssql")


def fail_fast() -> None:
    """Bound MLflow's HTTP retries (see FAIL_FAST_HTTP), leaving any the user set."""
    for key, value in FAIL_FAST_HTTP.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def sqlite_path(uri: str) -> str | None:
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


def store_name(uri: str | None = None) -> str:
    """How messages name the tracking store: a local file is not a server that may be down."""
    uri = uri or tracking_uri()
    if (db := sqlite_path(uri)) is not None:
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


def store_hint(uri: str | None = None) -> str:
    """What to check when the store cannot be used."""
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
    db = sqlite_path(uri)
    if db is None or uri in _PREPARED:
        return
    try:
        Path(db).parent.mkdir(parents=True, exist_ok=True)  # as MLflow does for a sqlite store
        with open(f"{db}.lock", "a") as lock, _exclusive(lock):
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:
        raise TrackingError(
            f"cannot open the MLflow {store_name(uri)} ({short_error(exc)}). {store_hint(uri)}"
        ) from None
    _PREPARED.add(uri)


@contextlib.contextmanager
def _exclusive(file):
    """An exclusive flock on `file` while the block runs; without flock (Windows) MLflow migrates unguarded."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fcntl.flock(file, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(file, fcntl.LOCK_UN)


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` says the tracking server could not be reached: MLflow raises an MlflowException
    from (or while handling) the HTTP client's connection error or time-out."""
    import requests

    lost = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)
    return any(isinstance(e, lost) for e in exception_chain(exc))


def is_duplicate_key(exc: BaseException) -> bool:
    """True when `exc` is a store's unique-key violation: a SQLAlchemy IntegrityError in a database store.
    A tracking server passes only its text on, so that text is the fallback."""
    from sqlalchemy.exc import IntegrityError

    if any(isinstance(e, IntegrityError) for e in exception_chain(exc)):
        return True
    return any(s in str(exc) for s in ("UNIQUE", "IntegrityError", "duplicate key"))
