"""`emo reproduce`: the matrix's cells × seeds as one Optuna study of queued trials, one MLflow parent run.

Each (cell, seed) is a trial queued once, when the study is created; any number of workers that
share the storage take queued trials one at a time (taking one is atomic in the storage), so each
runs exactly once between them. A dead worker's trial is failed by its missing heartbeat and
queued again (tuning's storage, `emo.studies.storage.make_storage`). A cell already finished on the same
data fingerprint, split and settings, in any earlier matrix, is reused rather than retrained: its
metrics are copied into this matrix's nested run, which points at the original
(`emo.reused_from`; `emo.runs.reuse` finds and copies it). Trials select nothing: the value
recorded is the cell's dev RMSE, and each cell's test metrics are computed once, by its own run,
after training.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass

import optuna

from emo.core.config import HEARTBEAT_SECONDS, Config
from emo.core.errors import ConfigError, StudyError, WaitedTooLong
from emo.core.progress import progress_bar
from emo.studies.claims import wait_for
from emo.studies.matrix import Cell
from emo.studies.worker import Surplus, Trials, parent_run, work, worker_name

log = logging.getLogger(__name__)

QUEUED_ATTR = "queued_trials"
REUSABLE = ("device", "threads", "extra", "data")  # settings that do not change a result (data: its fingerprint counts)
PER_WORKER = ("device", "threads")  # each worker's own: not part of the matrix's name or its parent's params
# a cell run's own tags: a reused cell's copy sets them itself and never takes the earlier run's
TAGS = ("emo.cell", "emo.seed", "emo.cell_key", "emo.matrix", "emo.table", "emo.row", "emo.arch")


@dataclass
class ReproduceResult:
    study: optuna.Study
    parent_run_id: str
    ran: int  # trials this worker trained
    reused: int  # trials this worker filled from earlier runs
    finished: int  # (cell, seed) pairs of the matrix finished, by any worker
    total: int


def cell_key(config: Config, fingerprint: str, split_hash: str) -> str:
    """What makes two runs the same experiment: every result-changing setting, the data and the split."""
    settings = {k: v for k, v in config.to_dict().items() if k not in REUSABLE}
    body = json.dumps({"settings": settings, "data": fingerprint, "split": split_hash}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def default_study_name(cells: list[Cell], seeds: int, fingerprint: str, common: dict) -> str:
    common = {k: v for k, v in common.items() if k not in PER_WORKER}
    body = json.dumps(
        {"cells": [c.name for c in cells], "seeds": seeds, "data": fingerprint, "common": common},
        sort_keys=True,
        default=str,
    )
    return f"emo-reproduce-{hashlib.sha256(body.encode()).hexdigest()[:10]}"


def _open_study(storage, name: str, cells: list[Cell], seeds: int, create_parent) -> tuple[optuna.Study, str]:
    """Create the study and queue every (cell, seed) once; a worker that arrives second waits for that."""
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize")
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name)
        created = False
    if created:  # the study's creator, and so its parent run's
        parent_run(study, storage, create_parent, creator=True)
        for cell in cells:
            for seed in range(seeds):
                study.enqueue_trial({"cell": cell.name, "seed": seed}, user_attrs={"cell": cell.name, "seed": seed})
        study.set_user_attr(QUEUED_ATTR, len(cells) * seeds)
    try:
        wait_for(lambda: study.user_attrs.get(QUEUED_ATTR), timeout=120, every=1.0)
    except WaitedTooLong:
        raise StudyError(
            f"the matrix study {name!r} exists but its trials were never queued (its first worker "
            f"died while creating it). Delete the study or pass another --study-name."
        ) from None
    queued = {(t.user_attrs.get("cell"), t.user_attrs.get("seed")) for t in study.get_trials(deepcopy=False)}
    wanted = {(c.name, s) for c in cells for s in range(seeds)}
    if not wanted <= queued:
        raise ConfigError(
            f"the matrix study {name!r} holds other cells or seeds than asked for; pass another "
            f"--study-name for another matrix."
        )
    return study, parent_run(study, storage, create_parent)[0]  # published before the trials were queued


def _finished(trials: Trials) -> set[tuple[str, int]]:
    """The (cell, seed) pairs of the complete ones among `trials`."""
    return {
        (t.user_attrs["cell"], t.user_attrs["seed"])
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and "cell" in t.user_attrs
    }


def reproduce(
    cells: list[Cell],
    *,
    seeds: int = 1,
    storage: str | None = None,
    study_name: str | None = None,
    experiment: str | None = None,
    heartbeat: int = HEARTBEAT_SECONDS,
    progress: bool = True,
    **common,
) -> ReproduceResult:
    """Run (or join) the matrix of `cells` × `seeds` with the `common` settings (data, epochs …)."""
    from emo.data.dataset import load_dataset
    from emo.experiment import run_experiment
    from emo.runs.reuse import copy_run, earlier_run
    from emo.runs.tracking import create_run, default_experiment, reopen_run, tracked_run
    from emo.studies.storage import make_storage, masked_url, storage_url

    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1 (got {seeds}).")
    base = Config(**common).validate()
    ds = load_dataset(base.data, **base.data_options())
    for cell in cells:
        cell.config(**common)  # every cell's settings are valid before anything runs
    if not ds.audio_windows():
        skipped = [c.name for c in cells if c.family in ("audio", "fusion")]
        if skipped:
            log.warning("%s has no audio tables: the %d audio and fusion cells are left out.", ds.name, len(skipped))
        cells = [c for c in cells if c.name not in skipped]
    name = study_name or default_study_name(cells, seeds, ds.fingerprint, common)
    tags = {"emo.matrix": name, "emo.kind": "reproduce"}
    experiment = default_experiment("emo-reproduce", experiment)
    study, parent_id = _open_study(
        make_storage(storage, heartbeat),
        name,
        cells,
        seeds,
        lambda: create_run(f"reproduce-{name}", experiment=experiment, tags=tags),
    )
    by_name = {c.name: c for c in cells}
    names = sorted(by_name)
    counts = Counter()

    with tracked_run(join_run_id=parent_id, tags=tags) as parent:
        parent.log_params(
            {
                "study_name": name,
                "storage": masked_url(storage_url(storage)),
                "seeds": seeds,
                "cells": len(cells),
                "data_fingerprint": ds.fingerprint,
                "split_hash": ds.split.hash,
                **{f"common_{k}": v for k, v in common.items() if k not in PER_WORKER},
            }
        )
        parent.log_text("\n".join(c.name for c in cells), "cells.txt")

        def objective(trial: optuna.Trial) -> float:
            cell_name, seed = trial.user_attrs.get("cell"), trial.user_attrs.get("seed")
            if cell_name is None:
                raise Surplus("no queued cell left")
            trial.suggest_categorical("cell", names)  # the queued values, recorded as the trial's params
            trial.suggest_int("seed", 0, seeds - 1)
            trial.set_user_attr("worker", worker_name())
            cell = by_name[cell_name]
            config = cell.config(**{**common, "seed": seed})
            key = cell_key(config, ds.fingerprint, ds.split.hash)
            run_tags = {
                "emo.cell": cell.name,
                "emo.seed": seed,
                "emo.cell_key": key,
                "emo.matrix": name,
                "emo.table": cell.table,
                "emo.row": cell.row,
                "emo.arch": cell.arch,
                "optuna.trial_number": trial.number,
            }
            earlier = earlier_run(key, parent_id)
            if earlier is not None:
                run_id = copy_run(earlier, parent_id, f"{cell.name}-seed{seed}", run_tags, keep=TAGS)
                trial.set_user_attr("mlflow_run_id", run_id)
                trial.set_user_attr("reused_from", earlier.info.run_id)
                counts["reused"] += 1
                return float(earlier.data.metrics.get("best_dev/rmse_mean", float("nan")))
            run_id: list[str] = []
            try:
                result = run_experiment(
                    config,
                    run_name=f"{cell.name}-seed{seed}",
                    parent_run_id=parent_id,
                    dataset=ds,
                    progress=False,
                    tags=run_tags,
                    on_start=lambda rid: (run_id.append(rid), trial.set_user_attr("mlflow_run_id", rid)),
                )
            except Exception as exc:
                log.warning("cell %s seed %d failed: %s", cell.name, seed, exc)
                raise
            counts["ran"] += 1
            return result.objective

        total = len(cells) * seeds
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with progress_bar(
            total=total,
            desc=f"matrix {name}",
            unit="cell",
            disable=not progress,
            initial=len(_finished(study.get_trials(deepcopy=False))),
        ) as bar:

            def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                if "cell" in trial.user_attrs and trial.state == optuna.trial.TrialState.COMPLETE:
                    bar.update(1)
                    log.info("%s seed %s: %s", trial.user_attrs["cell"], trial.user_attrs["seed"], trial.state.name)

            work(
                study,
                objective,
                after_trial,
                done=lambda trials: len(_finished(trials)) >= total,
                left=lambda trials: any(t.state == optuna.trial.TrialState.WAITING for t in trials),
                when_none_left=_failed_cells,
                # a failing cell fails its trial and run (with the reason) and the matrix goes on
                catch=(Exception,),
            )
        done = _finished(study.get_trials(deepcopy=False))
        parent.log_metrics({"cells_finished": len(done)})
    if len(done) < total:
        reopen_run(parent_id)  # other workers still hold cells
    return ReproduceResult(
        study=study,
        parent_run_id=parent_id,
        ran=counts["ran"],
        reused=counts["reused"],
        finished=len(done),
        total=total,
    )


def _failed_cells(trials: Trials) -> None:
    """No cell is queued: while some run in other workers, wait for them; when none does, the cells
    that failed are all that is left, and they are not retried."""
    S = optuna.trial.TrialState
    if not any(t.state == S.RUNNING for t in trials):
        failed = sorted({t.user_attrs.get("cell") for t in trials if t.state == S.FAIL and "cell" in t.user_attrs})
        raise StudyError(
            f"matrix cells failed and are not retried: {', '.join(failed)}. See their runs' "
            f"failure_reason in MLflow, fix the cause, and run again with another --study-name."
        )
