"""The Optuna storage that every study of emo shares: its URL (EMO_STORAGE, so that a password stays off
command lines: `ps` shows them, and `mlflow run -P storage=…` logs and prints it), heartbeats that
fail a dead worker's trial and queue it again, and a database outage of up to
EMO_STORAGE_RETRY_SECONDS (default 120) waited out by every storage call (`Outage`); a longer one ends
the worker with one line, and the study goes on when the worker is started again. The once-only claims
(`emo.studies.claims`) wait through the same `Outage`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import time
import warnings

import optuna
from optuna.storages._heartbeat import BaseHeartbeat

from emo.core.config import HEARTBEAT_SECONDS
from emo.core.errors import ConfigError, StorageUnavailableError, exception_chain

log = logging.getLogger(__name__)


STORAGE_ENV = "EMO_STORAGE"  # the storage URL, so that its password stays off command lines
RETRY_ENV = "EMO_STORAGE_RETRY_SECONDS"
RETRY_SECONDS = 120.0


def storage_url(url: str | None) -> str:
    """The storage to use: `url`, else $EMO_STORAGE, else `sqlite:///optuna.db`."""
    return url or os.environ.get(STORAGE_ENV) or "sqlite:///optuna.db"


def make_storage(url: str | None, heartbeat: int = HEARTBEAT_SECONDS) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats every `heartbeat` s: a worker silent for 3 beats is dead, its
    trial fails and is retried (twice at most). Every storage call outlives a database outage of up
    to $EMO_STORAGE_RETRY_SECONDS (default 120 s): see `_RetryingStorage`."""
    from emo.dburl import has_password, sqlalchemy_url

    url = storage_url(url)
    if os.environ.get("MLFLOW_RUN_ID") and has_password(url) and url != os.environ.get(STORAGE_ENV):
        # `mlflow run -P storage=…` logs the value as a run parameter and prints the command line
        # before emo runs; parameters cannot be changed afterwards, so the run must not go on as
        # if nothing happened
        raise ConfigError(
            f"the storage URL {masked_url(url)} holds a password and came on the command line of "
            f"`mlflow run`, which has already logged it as run {os.environ['MLFLOW_RUN_ID']}'s "
            f"`storage` parameter and printed it: change that password, delete the run "
            f"(`mlflow runs delete --run-id {os.environ['MLFLOW_RUN_ID']}`, then `mlflow gc`), and "
            f"pass the URL in the {STORAGE_ENV} environment variable instead of -P storage."
        )
    patience = _retry_seconds()
    url = sqlalchemy_url(url)  # postgresql:// with emo's driver named
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable enough
    outage = Outage(masked_url(url), patience)
    for attempt in range(3):
        try:
            # a worker started during an outage waits for the database like one that meets it later
            rdb = outage.call(
                optuna.storages.RDBStorage,
                url,
                heartbeat_interval=heartbeat,
                grace_period=3 * heartbeat,
                heartbeat_stale_trial_callback=_on_stale_trial,
                engine_kwargs={"pool_pre_ping": True},
            )
            # a session that saw the connection die cannot be reused
            return _RetryingStorage(rdb, Outage(outage.shown_url, patience, on_retry=rdb.remove_session))
        except StorageUnavailableError:
            raise
        except Exception as exc:
            # workers started together on an empty database race to create Optuna's tables; the
            # loser sees a duplicate-key error and finds the tables there a moment later
            if _lost_creation_race(exc) and attempt < 2:
                time.sleep(1.0 + attempt)
                continue
            raise ConfigError(
                f"cannot open the Optuna storage {masked_url(url)} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Check the URL, that the database "
                f"exists and that its driver is installed."
            ) from None


def _retry_seconds() -> float:
    text = os.environ.get(RETRY_ENV, "").strip()
    if not text:
        return RETRY_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(
            f"{RETRY_ENV}={text!r}: give the seconds a worker waits for an unreachable storage "
            f"(a number >= 0; default {RETRY_SECONDS:g})."
        )
    return value


# PostgreSQL's error codes (SQLSTATE) of refusals that no wait mends: no such database
# (invalid_catalog_name), no such role (invalid_authorization_specification), a wrong password
# (invalid_password)
_REFUSED = frozenset({"3D000", "28000", "28P01"})
# The same refusals in words. libpq reports a failed connection without the server's code (psycopg
# raises OperationalError with sqlstate None, psycopg2 with pgcode None), so a refused connection,
# the usual way to meet them, is known by its message alone.
_REFUSED_WORDS = re.compile(r"does not exist|authentication failed|no password supplied")
# PostgreSQL's codes for what a worker that lost the race to create Optuna's tables meets: the
# winner's table, type, schema or column, or its catalog row (unique_violation)
_CREATED_ALREADY = frozenset({"42P07", "42710", "42P06", "42701", "23505"})


def _sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's code of a driver error (psycopg's `sqlstate`, psycopg2's `pgcode`), where it has one."""
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def _sqlite_code(exc: BaseException) -> int | None:
    """SQLite's primary result code of an sqlite3 error (its extended code less the detail)."""
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
    return None if code is None else code & 0xFF


def _postgres_error(exc: BaseException) -> bool:
    return hasattr(exc, "sqlstate") or hasattr(exc, "pgcode")


def _refused(exc: BaseException) -> bool:
    """Whether a driver's error says the database refuses this worker for good: a wrong database,
    user, password or path, said as a connection error."""
    if isinstance(exc, sqlite3.Error):
        return _sqlite_code(exc) == sqlite3.SQLITE_CANTOPEN  # "unable to open database file"
    if not _postgres_error(exc):
        return False
    if _sqlstate(exc) is not None:
        return _sqlstate(exc) in _REFUSED
    if getattr(getattr(exc, "pgconn", None), "needs_password", False):  # psycopg: "no password supplied"
        return True
    return bool(_REFUSED_WORDS.search(str(exc)))  # libpq's failed connection: words only (see _REFUSED_WORDS)


def _lost_creation_race(exc: BaseException) -> bool:
    """Whether `exc` says another worker created Optuna's tables first (they are there now)."""
    for error in exception_chain(exc):
        if _sqlstate(error) is not None:
            if _sqlstate(error) in _CREATED_ALREADY:
                return True
        elif isinstance(error, sqlite3.Error) or _postgres_error(error):
            # SQLite says "table … already exists" under its catch-all code (SQLITE_ERROR): words only
            if "already exists" in str(error):
                return True
    return False


def _transient(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it came from, says the database connection was lost or refused
    (not that a statement was wrong, nor a refusal no wait mends): worth trying again once the
    database is back."""
    import sqlalchemy.exc as sa_exc

    try:
        import psycopg

        dbapi = (psycopg.OperationalError, psycopg.InterfaceError)
    except ImportError:  # pragma: no cover - emo installs psycopg
        dbapi = ()
    chain = list(exception_chain(exc))
    if any(_refused(error) for error in chain):
        return False
    lost = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.PendingRollbackError, *dbapi)
    return any(
        isinstance(error, lost) or (isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated)
        for error in chain
    )


class Outage:
    """Waits out a lost database connection: a call that fails with a transient error is tried again
    with exponential backoff (0.1 s doubling to 2 s) until the database answers or the outage has
    lasted `patience` seconds; then StorageUnavailableError, one line for the CLI. The clock is per
    outage, not per call, so a worker gives up `patience` seconds after the database went away however
    many calls are waiting. Every database call of a worker goes through one: Optuna's storage calls,
    the first connection, and the once-only claims (emo.studies.claims)."""

    def __init__(self, shown_url: str, patience: float, on_retry=None) -> None:
        self.shown_url, self.patience, self._on_retry = shown_url, patience, on_retry
        self._lock = threading.Lock()
        self._down_since: float | None = None

    def call(self, fn, *args, **kwargs):
        """`fn(*args, **kwargs)`, tried again while the database is unreachable."""
        delay = 0.1
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if not _transient(exc):
                    raise
                if self._on_retry is not None:
                    with contextlib.suppress(Exception):
                        self._on_retry()
                now = time.monotonic()
                with self._lock:
                    if self._down_since is None:
                        self._down_since = now
                        log.warning(
                            "lost the Optuna storage %s (%s); trying again for up to %g s",
                            self.shown_url,
                            _first_line(exc),
                            self.patience,
                        )
                    waited = now - self._down_since
                if waited >= self.patience:
                    raise StorageUnavailableError(
                        f"the Optuna storage {self.shown_url} has been unreachable for {waited:.0f} s "
                        f"({_first_line(exc)}); this worker stops. The study is kept in the database: start "
                        f"the same command again once it is back (its running trial is failed and re-run). "
                        f"{RETRY_ENV} (now {self.patience:g}) sets how long a worker waits."
                    ) from None
                time.sleep(min(delay, self.patience - waited))
                delay = min(2 * delay, 2.0)
                continue
            if self._down_since is not None:
                with self._lock:
                    if self._down_since is not None:
                        log.info("the Optuna storage is back after %.1f s", time.monotonic() - self._down_since)
                        self._down_since = None
            return result


class _RetryingStorage(optuna.storages.BaseStorage, BaseHeartbeat):
    """Optuna's RDB storage (behind its usual cache), every call of which waits out a database outage.

    Without it a few seconds of database restart kill a worker mid-trial: the call fails, Optuna's
    clean-up reads the storage again, fails too, and ends in an UnboundLocalError, leaving the trial
    RUNNING. Here every call goes through one `Outage`. The heartbeat thread never raises: a missed
    beat is retried, and once the worker gives up its trial goes stale and a surviving (or restarted)
    worker fails and re-runs it.

    The engine (`.engine`, used for claims), `.retry` (the same waiting, for claims) and other
    attributes are the RDB storage's own.
    """

    def __init__(self, rdb: optuna.storages.RDBStorage, outage: Outage) -> None:
        self._rdb, self._inner, self._outage = rdb, optuna.storages._CachedStorage(rdb), outage
        self.retry = outage.call

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_rdb", "_inner"):
            raise AttributeError(name)
        return getattr(self._rdb, name)

    def _call(self, name: str, *args, **kwargs):
        return self._outage.call(getattr(self._inner, name), *args, **kwargs)

    def record_heartbeat(self, trial_id: int) -> None:
        # runs in Optuna's heartbeat thread, where an exception would only print a traceback and end
        # the beats; the main thread meets the same outage and reports it
        with contextlib.suppress(StorageUnavailableError):
            self._call("record_heartbeat", trial_id)


def _forward(name: str):
    def method(self, *args, **kwargs):
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


for _name in {
    n
    for base in (optuna.storages.BaseStorage, BaseHeartbeat)
    for n, v in vars(base).items()
    if callable(v) and not n.startswith("__")
} - set(vars(_RetryingStorage)):
    setattr(_RetryingStorage, _name, _forward(_name))
_RetryingStorage.__abstractmethods__ = frozenset()


def _first_line(exc: BaseException) -> str:
    """What the database driver said, first line (psycopg's message rather than Optuna's wrapper)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    root = getattr(exc, "orig", None) or exc
    text = str(root).strip().splitlines()
    return f"{type(root).__name__}: {text[0]}" if text else type(root).__name__


def _storage_failure(exc: BaseException) -> StorageUnavailableError | None:
    """The StorageUnavailableError behind `exc`: Optuna's clean-up after a failed storage call fails
    again (an UnboundLocalError in optuna's _run_trial), hiding the first error in its context."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StorageUnavailableError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def reopen_if_storage_lost(run_id: str):
    """Mark the study's parent run RUNNING again after a lost storage ended this worker's part."""
    from emo.runs.lifecycle import reopen_run

    try:
        yield
    except StorageUnavailableError:
        with contextlib.suppress(Exception):
            reopen_run(run_id)
        raise


@contextlib.contextmanager
def storage_errors():
    """Let a lost storage end the worker with its one-line message, not with what it caused after."""
    try:
        yield
    except Exception as exc:
        lost = _storage_failure(exc)
        if lost is None or lost is exc:
            raise
        raise lost from None


def _on_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A worker died mid-trial: close its MLflow run as failed, then queue the trial again."""
    run_id = trial.user_attrs.get("mlflow_run_id")
    if run_id:
        from emo.runs.lifecycle import update_run

        try:
            update_run(
                run_id,
                tags={
                    "emo.trial_state": "FAILED",
                    "failure_reason": f"worker {trial.user_attrs.get('worker')} stopped sending "
                    f"heartbeats; the trial is retried",
                },
                status="FAILED",
            )
        except Exception as exc:  # the study's consistency comes first
            log.warning("could not mark run %s of dead trial %d as failed: %s", run_id, trial.number, exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)(study, trial)


def masked_url(url: str) -> str:
    """The storage URL without its password, for logs and params."""
    from emo.dburl import masked

    return masked(url)
