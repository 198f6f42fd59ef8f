"""Optuna tuning studies over any family, one MLflow parent run per study and one nested run per trial.

The objective is the best-on-dev metric of `run_experiment` (mean dev RMSE over valence and
arousal, or mean dev CCC); each epoch's dev value is reported for pruning. Trials never see the
test set: the winner's test metrics are computed once, after the study. Several processes
started with the same `--storage` and `--study-name` share one study; a dead worker's trial is
failed by its missing heartbeat and retried by a surviving one.

The storage URL may come from the environment (EMO_STORAGE) instead of `--storage`: a password on a
command line is shown by `ps`, and `mlflow run -P storage=…` logs and prints it. A database outage of
up to EMO_STORAGE_RETRY_SECONDS (default 120) is waited out; a longer one ends the worker with one
line, and the study goes on when the worker is started again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages._heartbeat import BaseHeartbeat

from emo.core.config import AUDIO_WINDOWS, Config
from emo.core.errors import ConfigError, StorageUnavailableError
from emo.core.metrics import target_mean
from emo.core.progress import progress_bar

log = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"
WINNER_ATTR = "winner"

# one search space per family: name -> {"choices": [...]} or {"low", "high"[, "log", "step"]}
SPACES: dict[str, dict[str, dict]] = {
    "fusion": {
        "d_model": {"choices": [32, 64, 128]},
        "heads": {"choices": [2, 4]},
        "ff": {"choices": [64, 128, 256]},
        "repeats": {"low": 1, "high": 3},
        "dropout": {"low": 0.0, "high": 0.3},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "window": {"choices": list(AUDIO_WINDOWS)},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
    "video": {
        "hidden": {"choices": [32, 64, 128, 256]},
        "layers": {"low": 1, "high": 2},
        "dropout": {"low": 0.0, "high": 0.5},
        "pooling": {"choices": ["avg", "max", "conv1d"]},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "window": {"choices": list(AUDIO_WINDOWS)},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
    "audio": {
        "hidden": {"choices": [32, 64, 128, 256]},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "window": {"choices": list(AUDIO_WINDOWS)},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
    "ffnn": {
        "hidden": {"choices": [32, 64, 128, 256]},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
}
METRICS = {"rmse": "minimize", "ccc": "maximize"}


def search_space(family: str, override: str | Path | dict | None = None, fixed=()) -> dict[str, dict]:
    """The family's space without the `fixed` settings (a matrix cell's own), updated with `override`
    (a dict, or a JSON file of the same shape)."""
    if family not in SPACES:
        raise ConfigError(f"no search space for family {family!r}; tunable: {', '.join(SPACES)}.")
    space = {k: dict(v) for k, v in SPACES[family].items() if k not in fixed}
    if override is None:
        return space
    if not isinstance(override, dict):
        try:
            override = json.loads(Path(override).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{override}: cannot read the search space ({exc}); write JSON like "
                f'{{"lr": {{"low": 1e-4, "high": 1e-2, "log": true}}, "depth": {{"choices": [1, 2]}}}}.'
            ) from None
    fields = set(Config.__dataclass_fields__)
    for name, spec in override.items():
        if name not in fields:
            raise ConfigError(f"search space: {name!r} is not a setting of emo (see `emo train --help`).")
        if spec is None:
            space.pop(name, None)  # {"window": null} fixes the base value again
        elif not _valid_spec(spec):
            raise ConfigError(
                f'search space: {name!r} needs {{"choices": [non-empty list]}} or '
                f'{{"low": number, "high": number (>= low)[, "log": true]}}; got {spec!r}.'
            )
        else:
            space[name] = spec
    return space


def _valid_spec(spec) -> bool:
    if not isinstance(spec, dict):
        return False
    if "choices" in spec:
        return isinstance(spec["choices"], list) and len(spec["choices"]) > 0
    numbers = all(isinstance(spec.get(k), int | float) and not isinstance(spec.get(k), bool) for k in ("low", "high"))
    return numbers and spec["low"] <= spec["high"] and not (spec.get("log") and spec["low"] <= 0)


def suggest(trial: optuna.Trial, space: dict[str, dict]) -> dict:
    """Draw one value per parameter of `space`."""
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif (
            all(isinstance(spec[k], int) for k in ("low", "high"))
            and spec.get("log") is not True
            and isinstance(spec.get("step", 1), int)
        ):
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1))
        else:
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return params


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """`median` (default), `none`, or `percentile:P` (prune below the best P%; small P is aggressive)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name.startswith("percentile:"):
        try:
            pct = float(name.split(":", 1)[1])
        except ValueError:
            pct = -1
        if 0 < pct < 100:
            return optuna.pruners.PercentilePruner(pct, n_startup_trials=1, n_warmup_steps=0)
    raise ConfigError(f"unknown pruner {name!r}; choose median, none or percentile:P (0 < P < 100).")


STORAGE_ENV = "EMO_STORAGE"  # the storage URL, so that its password stays off command lines
RETRY_ENV = "EMO_STORAGE_RETRY_SECONDS"
RETRY_SECONDS = 120.0


def storage_url(url: str | None) -> str:
    """The storage to use: `url`, else $EMO_STORAGE, else `sqlite:///optuna.db`."""
    return url or os.environ.get(STORAGE_ENV) or "sqlite:///optuna.db"


def make_storage(url: str | None, heartbeat: int = 10) -> optuna.storages.BaseStorage:
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
            f"the storage URL {_safe(url)} holds a password and came on the command line of "
            f"`mlflow run`, which has already logged it as run {os.environ['MLFLOW_RUN_ID']}'s "
            f"`storage` parameter and printed it: change that password, delete the run "
            f"(`mlflow runs delete --run-id {os.environ['MLFLOW_RUN_ID']}`, then `mlflow gc`), and "
            f"pass the URL in the {STORAGE_ENV} environment variable instead of -P storage."
        )
    patience = _retry_seconds()
    url = sqlalchemy_url(url)  # postgresql:// with emo's driver named
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable enough
    outage = Outage(_safe(url), patience)
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
            if "Duplicate" in type(exc).__name__ or "UniqueViolation" in str(exc) or "already exists" in str(exc):
                if attempt < 2:
                    time.sleep(1.0 + attempt)
                    continue
            raise ConfigError(
                f"cannot open the Optuna storage {_safe(url)} ({type(exc).__name__}: "
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


# refusals that no wait mends: a wrong database, user, password or path, said as connection errors
_PERMANENT = re.compile(r"does not exist|authentication failed|no password supplied|unable to open database file")


def _transient(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it came from, says the database connection was lost or refused
    (not that a statement was wrong): worth trying again once the database is back."""
    import sqlalchemy.exc as sa_exc

    try:
        import psycopg

        dbapi = (psycopg.OperationalError, psycopg.InterfaceError)
    except ImportError:  # pragma: no cover - emo installs psycopg
        dbapi = ()
    if _PERMANENT.search(str(exc)):
        return False
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.PendingRollbackError, *dbapi)):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


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
def _reopen_if_storage_lost(run_id: str):
    """Mark the study's parent run RUNNING again after a lost storage ended this worker's part."""
    from emo.runs.tracking import reopen_run

    try:
        yield
    except StorageUnavailableError:
        with contextlib.suppress(Exception):
            reopen_run(run_id)
        raise


@contextlib.contextmanager
def _storage_errors():
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
        from emo.runs.tracking import update_run

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


def _safe(url: str) -> str:
    """The storage URL without its password, for logs and params."""
    from emo.dburl import masked

    return masked(url)


class _Surplus(Exception):
    """Raised in a trial started after the study already had its requested number."""


@dataclass
class TuneResult:
    study: optuna.Study
    parent_run_id: str | None
    best_trial: optuna.trial.FrozenTrial | None
    test: dict[str, float]
    registration: str | None = None  # what registering the winner did (one worker per study does it)


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that hold or will hold a result: finished or running."""
    return study.get_trials(deepcopy=False, states=(*FINISHED, optuna.trial.TrialState.RUNNING))


def _states(study: optuna.Study) -> Counter:
    """How many trials of the study are in each state (one read of the storage)."""
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def tune(
    base: Config,
    *,
    trials: int | None = 20,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    space: dict | str | None = None,
    metric: str = "rmse",
    pruner: str = "median",
    sampler_seed: int | None = None,
    experiment: str | None = None,
    progress: bool = True,
    heartbeat: int = 10,
    fixed=(),
    register: bool = False,
) -> TuneResult:
    """Run (or join) a study of `base` with parameters drawn from the family's space (less the
    `fixed` settings: those of a matrix cell).

    Stops when the study holds `trials` complete or pruned trials (whichever worker ran them) or
    after `timeout` seconds. Once the study is complete, exactly one worker tests the winner and,
    with `register` (Fusion 4 studies), registers it; the others return what it found.
    """
    from emo.experiment import run_experiment
    from emo.runs.tracking import create_run, default_experiment, reopen_run, tracked_run, update_run

    base.validate()
    if metric not in METRICS:
        raise ConfigError(f"unknown objective metric {metric!r}; choose rmse or ccc.")
    if trials is None and timeout is None:
        raise ConfigError("give --trials, --timeout or both, or the study never stops.")
    space = search_space(base.family, space, fixed)
    study_name = study_name or f"emo-{base.family}" + (f"{base.method}" if base.family == "fusion" else "")
    storage = storage_url(storage)
    rdb = make_storage(storage, heartbeat)
    study = optuna.create_study(
        storage=rdb,
        study_name=study_name,
        load_if_exists=True,
        direction=METRICS[metric],
        pruner=make_pruner(pruner),
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
    )
    tags = {"emo.family": base.family, "emo.study": study_name}
    experiment = default_experiment(f"emo-{base.family}", experiment)
    parent_id, created = _parent_run(
        study, rdb, lambda: create_run(f"tune-{study_name}", experiment=experiment, tags=tags)
    )
    # a lost storage ends this worker with its one-line error, the parent run noting it, then open
    # again: the study goes on once the database is back
    with _reopen_if_storage_lost(parent_id), tracked_run(join_run_id=parent_id, tags=tags) as parent, _storage_errors():
        # where the study lives, password hidden; a tag as well, because under `mlflow run` the
        # `storage` parameter is already taken by its -P value (`auto` when EMO_STORAGE holds the URL)
        parent.set_tags({"emo.storage": _safe(storage)})
        if created:
            parent.log_params(
                {
                    "study_name": study_name,
                    "storage": _safe(storage),
                    "sampler": type(study.sampler).__name__,
                    "pruner": pruner,
                    "metric": metric,
                    "direction": METRICS[metric],
                    "search_space": json.dumps(space),
                    **{f"base_{k}": v for k, v in base.params().items() if k not in space},
                }
            )

        def objective(trial: optuna.Trial) -> float:
            if trials is not None:
                ahead = sorted(t.number for t in _counted(study))
                if trial.number not in ahead[:trials]:
                    study.stop()
                    raise _Surplus(f"the study already has {trials} trials")
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            params = suggest(trial, space)
            config = base.replace(**params)
            run_id: list[str] = []

            def on_epoch(state) -> None:
                record = state.history[-1]
                value = _value(record, metric)
                trial.report(value, state.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {state.epoch} (dev {metric} {value:.4f})")

            tags = {"optuna.study_name": study_name, "optuna.trial_number": trial.number}
            try:
                result = run_experiment(
                    config,
                    run_name=f"trial-{trial.number}",
                    parent_run_id=parent_id,
                    evaluate_test=False,
                    on_epoch=on_epoch,
                    progress=False,
                    tags=tags,
                    on_start=lambda rid: (run_id.append(rid), trial.set_user_attr("mlflow_run_id", rid)),
                )
            except optuna.TrialPruned:
                if run_id:
                    update_run(run_id[0], tags={"emo.trial_state": "PRUNED"}, status="KILLED")
                raise
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run ends KILLED, and says which trial state
                if run_id:
                    update_run(run_id[0], tags={"emo.trial_state": "KILLED"})
                raise
            except Exception as exc:
                if run_id:
                    update_run(run_id[0], tags={"emo.trial_state": "FAILED"})
                if not isinstance(exc, StorageUnavailableError):  # that one ends the worker with its message
                    log.warning("trial %d failed: %s", trial.number, exc)
                raise
            update_run(run_id[0], tags={"emo.trial_state": "COMPLETE"})
            trial.set_user_attr("model_uri", result.model_uri)
            return _value(result.dev, metric)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # the bar closes before any error message, not after it at exit
        with progress_bar(
            total=trials,
            desc=f"study {study_name}",
            unit="trial",
            disable=not progress,
            initial=min(len(_counted(study)), trials or 0),
        ) as bar:

            def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                bar.update(1)
                log.info(
                    "trial %d %s%s",
                    trial.number,
                    trial.state.name,
                    f" {metric} {trial.value:.4f}" if trial.value is not None else "",
                )
                best = _best(study)
                if best is not None:
                    parent.log_metrics({"best_value": best.value}, step=trial.number)

            _work(study, objective, after_trial, trials=trials, timeout=timeout)
        counts = _states(study)
        complete = trials is None or sum(counts[s] for s in FINISHED) >= trials
        best = _best(study)
        winner = {}
        if complete and best is not None:  # a worker leaving early (--timeout) decides nothing
            winner = _finish(study, rdb, best, base, parent, metric=metric, register=register)
            best = study.trials[winner["trial"]] if "trial" in winner else best
        _log_study_figures(study, parent)
        parent.log_text(summary(study), "study_summary.txt")
    if not complete:
        reopen_run(parent_id)  # this worker left early (--timeout): the study, and its parent run, go on
    return TuneResult(
        study=study,
        parent_run_id=parent_id,
        best_trial=best,
        test=winner.get("test", {}),
        registration=winner.get("registration"),
    )


def _work(
    study: optuna.Study, objective: Callable, after_trial: Callable, *, trials: int | None, timeout: float | None
) -> None:
    """Run trials one at a time until the study holds `trials` complete or pruned ones.

    While the only trials missing are running in other workers, wait rather than start a surplus
    one; if such a worker dies, its heartbeat goes stale, the trial is failed and re-queued, and
    this worker runs the retry. So no trial is lost and none runs twice.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        counts = _states(study)
        done = sum(counts[s] for s in FINISHED)
        if trials is not None and done >= trials:
            return
        running, waiting = counts[optuna.trial.TrialState.RUNNING], counts[optuna.trial.TrialState.WAITING]
        if trials is not None and done + running >= trials and not waiting:
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial -> FAIL, and a retry is queued
            time.sleep(2.0)
            continue
        left = None if deadline is None else max(deadline - time.monotonic(), 0.1)
        study.optimize(objective, n_trials=1, timeout=left, callbacks=[after_trial], catch=(_Surplus,))


def _key(study: optuna.Study, what: str) -> str:
    return f"{study._study_id}:{study.study_name}:{what}"


def _parent_run(study: optuna.Study, storage, create: Callable[[], str]) -> tuple[str, bool]:
    """The study's one MLflow parent run: the worker whose claim lands in the storage creates it, the
    others wait until it is published. Returns (run id, whether this worker created it)."""
    from emo.studies.claims import once

    if PARENT_ATTR in study.user_attrs:
        return study.user_attrs[PARENT_ATTR], False
    created = []

    def work() -> str:
        created.append(create())
        study.set_user_attr(PARENT_ATTR, created[0])
        return created[0]

    run_id = once(
        storage,
        _key(study, "parent"),
        work,
        lambda: study.user_attrs.get(PARENT_ATTR),
        timeout=120,
        what="the study's parent run",
    )
    return run_id, bool(created)


def _value(record: dict, metric: str) -> float:
    """Mean dev RMSE or CCC over valence and arousal, from an epoch record or final dev metrics."""
    return target_mean(record, f"dev/{metric}")


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def _finish(
    study: optuna.Study, storage, best: optuna.trial.FrozenTrial, base: Config, parent, *, metric: str, register: bool
) -> dict:
    """Test the complete study's winner once and register it once: the worker whose claim lands does
    both and publishes the result in the study; every other worker reads it."""
    from emo.studies.claims import once

    def work() -> dict:
        result = {"trial": best.number, "test": _evaluate_winner(best, base, parent)}
        if register and base.family == "fusion" and base.method == 4 and best.user_attrs.get("mlflow_run_id"):
            from emo.runs import champion

            run = champion.fusion4_run(best.user_attrs["mlflow_run_id"])
            result["registration"] = str(champion.register(run, metric=metric))
        study.set_user_attr(WINNER_ATTR, result)
        return result

    return once(
        storage,
        _key(study, "winner"),
        work,
        lambda: study.user_attrs.get(WINNER_ATTR),
        what="the worker testing the winner",
    )


def _evaluate_winner(best: optuna.trial.FrozenTrial, base: Config, parent) -> dict[str, float]:
    """The winner's test metrics: the first and only time a model of the study sees the test set."""
    from emo.experiment import test_metrics
    from emo.predict import load_model, predict_split
    from emo.runs.tracking import update_run

    uri = best.user_attrs.get("model_uri")
    if not uri:
        return {}
    _, test = predict_split(
        load_model(uri),
        base.data,
        split="test",
        # the label delay is the model's own, read from the model
        **{k: v for k, v in base.data_options().items() if k != "label_delay"},
    )
    test = test_metrics(test)
    update_run(best.user_attrs["mlflow_run_id"], metrics=test, tags={"emo.study_winner": True})
    parent.log_metrics({f"winner_{k}": v for k, v in test.items()})
    parent.set_tags({"emo.winner_run_id": best.user_attrs["mlflow_run_id"], "emo.winner_trial": best.number})
    return test


def _log_study_figures(study: optuna.Study, parent) -> None:
    from emo.report import plots

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's matplotlib plots are marked experimental
        from optuna.visualization import matplotlib as ovm

        for name, fn in (
            ("optimization_history", ovm.plot_optimization_history),
            ("parallel_coordinate", ovm.plot_parallel_coordinate),
        ):
            try:
                ax = fn(study)
            except Exception as exc:  # a plot must never fail a study
                log.warning("could not draw the %s plot: %s", name, exc)
                continue
            fig = (ax[0] if hasattr(ax, "__len__") else ax).figure
            parent.log_figure(fig, f"plots/{name}.png")
            plots.close(fig)


def summary(study: optuna.Study) -> str:
    """One line per trial: number, state, value, seconds, parameters."""
    lines = [f"study {study.study_name}: {len(study.trials)} trials"]
    for t in study.trials:
        secs = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else float("nan")
        )
        value = f"{t.value:.4f}" if t.value is not None else "-"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        lines.append(f"  #{t.number:<3d} {t.state.name:8s} {value:>8s} {secs:6.1f}s  {params}")
    best = _best(study)
    if best is not None:
        lines.append(f"best: trial {best.number}, value {best.value:.4f}, run {best.user_attrs.get('mlflow_run_id')}")
    return "\n".join(lines)
