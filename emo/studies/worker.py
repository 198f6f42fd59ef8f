"""One worker of a study that several processes share through one Optuna storage: what `tune` and
`reproduce` both do around their own trials.

The study has one MLflow parent run, elected once among the workers and published in the study
(`parent_run`). A worker takes trials one at a time until the study is done (`work`); while the
only trials left are held by other workers it waits rather than start a surplus one, and fails
those whose worker stopped sending heartbeats, so that their retry is queued and taken here. No
trial is lost, none runs twice. A trial that finds nothing left to do raises `Surplus`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence

import optuna

from emo.studies.claims import once

PARENT_ATTR = "mlflow_parent_run_id"  # the study's user attr holding its parent run
WAIT_SECONDS = 2.0  # between looks at a study whose last trials other workers hold

Trials = Sequence[optuna.trial.FrozenTrial]


class Surplus(Exception):
    """Raised in a trial that no work was left for: the study already holds its number of trials, or
    another worker took the last queued one first."""


def worker_name() -> str:
    """This worker, as a trial's `worker` user attr names it: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_key(study: optuna.Study, what: str) -> str:
    """The claim (`emo.studies.claims`) of a once-only step of `study`."""
    return f"{study._study_id}:{study.study_name}:{what}"


def parent_run(study: optuna.Study, storage, create: Callable[[], str], *, creator: bool = False) -> tuple[str, bool]:
    """The study's one MLflow parent run, published in its user attr PARENT_ATTR. `create()` makes it
    in the one worker elected: the one that created the study (`creator`: the storage let only it do
    so), else the one whose claim lands in the storage; the others wait until it is published.
    Returns (run id, whether this worker created it)."""
    if PARENT_ATTR in study.user_attrs:
        return study.user_attrs[PARENT_ATTR], False
    created = []

    def publish() -> str:
        created.append(create())
        study.set_user_attr(PARENT_ATTR, created[0])
        return created[0]

    if creator:
        return publish(), True
    run_id = once(
        storage,
        claim_key(study, "parent"),
        publish,
        lambda: study.user_attrs.get(PARENT_ATTR),
        timeout=120,
        what="the study's parent run",
    )
    return run_id, bool(created)


def work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    after_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
    *,
    done: Callable[[Trials], bool],
    left: Callable[[Trials], bool],
    when_none_left: Callable[[Trials], None] | None = None,
    catch: tuple[type[Exception], ...] = (Surplus,),
    timeout: float | None = None,
) -> None:
    """Run `objective` one trial at a time (`after_trial` after each) until `done(trials)`, or for
    `timeout` seconds.

    `left(trials)` says whether a trial is left for this worker to take (queued, or still to be
    drawn). When none is, the rest are running in other workers: `when_none_left(trials)` may end
    the worker by raising; else it fails the trials of dead workers (their retries are queued)
    and looks again in a moment. Errors of the types in `catch` fail their trial, not the worker.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        trials = study.get_trials(deepcopy=False)
        if done(trials):
            return
        if not left(trials):
            if when_none_left is not None:
                when_none_left(trials)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial -> FAIL, and a retry is queued
            time.sleep(WAIT_SECONDS)
            continue
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.1)
        study.optimize(objective, n_trials=1, timeout=remaining, callbacks=[after_trial], catch=catch)
