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

import functools
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna

from emo.core.config import HEARTBEAT_SECONDS, Config
from emo.core.errors import ConfigError, StudyError, WaitedTooLong
from emo.core.progress import progress_bar
from emo.runs.naming import OBJECTIVE
from emo.studies.claims import wait_for
from emo.studies.local_workers import LocalWorkers
from emo.studies.matrix import Cell
from emo.studies.storage import make_storage, masked_url, storage_url
from emo.studies.worker import Surplus, Trials, parent_run, work, worker_name

log = logging.getLogger(__name__)

QUEUED_ATTR = "queued_trials"
REUSABLE = ("device", "threads", "extra", "data")  # settings that do not change a result (data: its fingerprint counts)
PER_WORKER = ("device", "threads")  # each worker's own: not part of the matrix's name or its parent's params
# a cell run's own tags: a reused cell's copy sets them itself and never takes the earlier run's
FUSE_WAIT = 24 * 3600.0  # seconds a late-fusion cell waits for its partners (they may train for hours)
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
    """What makes two runs the same experiment: every result-changing setting of the cell's model (the
    settings that apply to it, as logged: a setting another family reads, added or changed, leaves it
    alone), the data and the split."""
    settings = {"family": config.family, **{k: v for k, v in config.params().items() if k not in REUSABLE}}
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
    helpers: Callable[[str], LocalWorkers] | None = None,
    **common,
) -> ReproduceResult:
    """Run (or join) the matrix of `cells` × `seeds` with the `common` settings (data, epochs …);
    `helpers(study_name)` starts more workers of it on this machine once the study exists (`emo reproduce
    --workers`), and they are waited for."""
    from emo.data.dataset import load_dataset
    from emo.runs.lifecycle import reopen_run, tracked_run

    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1 (got {seeds}).")
    base = Config(**common).validate()
    ds = load_dataset(base.data, **base.data_options())
    cells = _runnable(cells, ds, common)
    name = study_name or default_study_name(cells, seeds, ds.fingerprint, common)
    matrix = _Matrix.open(
        cells, seeds, ds, common, name=name, storage=storage, heartbeat=heartbeat, experiment=experiment
    )
    others = helpers(matrix.study.study_name) if helpers else None
    try:
        with tracked_run(join_run_id=matrix.parent_id, tags=matrix.tags) as parent:
            matrix.log_parent(parent, storage)
            done = matrix.run(progress)
            parent.log_metrics({"cells_finished": len(done)})
        if len(done) < matrix.total:
            reopen_run(matrix.parent_id)  # other workers still hold cells
        for failure in others.wait() if others else ():
            log.warning(failure)
    except BaseException:
        if others:
            others.stop()
        raise
    if others:
        done = _finished(matrix.study.get_trials(deepcopy=False))
    return ReproduceResult(
        study=matrix.study,
        parent_run_id=matrix.parent_id,
        ran=matrix.counts["ran"],
        reused=matrix.counts["reused"],
        finished=len(done),
        total=matrix.total,
    )


def _runnable(cells: list[Cell], ds, common: dict) -> list[Cell]:
    """The `cells` that `ds` can run, every one's settings checked first: without audio tables, no
    audio or fusion cell."""
    for cell in cells:
        if not cell.fuses:
            cell.config(**common)  # every cell's settings are valid before anything runs
    orphans = [c.name for c in cells if c.fuses and not set(c.fuses) <= {p.name for p in cells}]
    if orphans:
        log.warning("%s: left out, the cells they fuse are not in this matrix.", ", ".join(orphans))
        cells = [c for c in cells if c.name not in orphans]
    if ds.audio_windows():
        return cells
    skipped = [c.name for c in cells if c.needs_audio]
    if skipped:
        log.warning("%s has no audio tables: the %d cells that read audio are left out.", ds.name, len(skipped))
    return [c for c in cells if c.name not in skipped]


@dataclass
class _Matrix:
    """This worker's part in a matrix study: the study and its parent run, the cells and the data
    they run on, and how many (cell, seed) pairs this worker trained or reused."""

    cells: list[Cell]
    seeds: int
    ds: object  # the loaded dataset, shared by every cell
    common: dict
    study: optuna.Study
    parent_id: str
    tags: dict[str, str]
    counts: Counter = field(default_factory=Counter)  # "ran", "reused"

    @classmethod
    def open(
        cls,
        cells: list[Cell],
        seeds: int,
        ds,
        common: dict,
        *,
        name: str,
        storage: str | None,
        heartbeat: int,
        experiment: str | None,
    ) -> _Matrix:
        """Create or join the matrix study `name`, its trials queued and its parent run made once."""
        from emo.runs.lifecycle import create_run, default_experiment

        tags = {"emo.matrix": name, "emo.kind": "reproduce"}
        experiment = default_experiment("emo-reproduce", experiment)
        study, parent_id = _open_study(
            make_storage(storage, heartbeat),
            name,
            cells,
            seeds,
            lambda: create_run(f"reproduce-{name}", experiment=experiment, tags=tags),
        )
        return cls(cells, seeds, ds, common, study, parent_id, tags)

    @property
    def total(self) -> int:
        return len(self.cells) * self.seeds

    def log_parent(self, parent, storage: str | None) -> None:
        """What the matrix is: its study, data, cells and common settings."""
        parent.log_params(
            {
                "study_name": self.study.study_name,
                "storage": masked_url(storage_url(storage)),
                "seeds": self.seeds,
                "cells": len(self.cells),
                "data_fingerprint": self.ds.fingerprint,
                "split_hash": self.ds.split.hash,
                **{f"common_{k}": v for k, v in self.common.items() if k not in PER_WORKER},
            }
        )
        parent.log_text("\n".join(c.name for c in self.cells), "cells.txt")

    def run(self, progress: bool) -> set[tuple[str, int]]:
        """Take queued (cell, seed) trials until every one is finished; the finished ones."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with progress_bar(
            total=self.total,
            desc=f"matrix {self.study.study_name}",
            unit="cell",
            disable=not progress,
            initial=len(_finished(self.study.get_trials(deepcopy=False))),
        ) as bar:
            work(
                self.study,
                self.objective,
                functools.partial(_after_trial, bar),
                done=lambda trials: len(_finished(trials)) >= self.total,
                left=lambda trials: any(t.state == optuna.trial.TrialState.WAITING for t in trials),
                when_none_left=_failed_cells,
                # a failing cell fails its trial and run (with the reason) and the matrix goes on
                catch=(Exception,),
            )
        return _finished(self.study.get_trials(deepcopy=False))

    def objective(self, trial: optuna.Trial) -> float:
        """The queued (cell, seed) of `trial`, reused from an earlier matrix's run of the same cell key
        if there is one, else trained as a nested run of the parent; its dev RMSE."""
        from emo.runs.reuse import earlier_run

        cell_name, seed = trial.user_attrs.get("cell"), trial.user_attrs.get("seed")
        if cell_name is None:
            raise Surplus("no queued cell left")
        by_name = {c.name: c for c in self.cells}
        trial.suggest_categorical("cell", sorted(by_name))  # the queued values, recorded as the trial's params
        trial.suggest_int("seed", 0, self.seeds - 1)
        trial.set_user_attr("worker", worker_name())
        cell = by_name[cell_name]
        config = None if cell.fuses else cell.config(**{**self.common, "seed": seed})
        key = self._fused_key(cell, seed) if cell.fuses else cell_key(config, self.ds.fingerprint, self.ds.split.hash)
        values = (cell.name, seed, key, self.study.study_name, cell.table, cell.row, cell.arch)
        tags = {**dict(zip(TAGS, values, strict=True)), "optuna.trial_number": trial.number}
        earlier = earlier_run(key, self.parent_id)
        if earlier is not None:
            return self._reuse(trial, earlier, f"{cell.name}-seed{seed}", tags)
        if cell.fuses:
            return self._fuse(trial, cell, seed, tags)
        return self._train(trial, config, cell, seed, tags)

    def _fused_key(self, cell: Cell, seed: int) -> str:
        """A late-fusion cell's key: its partners' keys (the same partners fused again is the same result)."""
        by_name = {c.name: c for c in self.cells}
        keys = [
            cell_key(by_name[p].config(**{**self.common, "seed": seed}), self.ds.fingerprint, self.ds.split.hash)
            for p in cell.fuses
        ]
        return hashlib.sha256(json.dumps({"fuses": keys}).encode()).hexdigest()[:16]

    def _fuse(self, trial: optuna.Trial, cell: Cell, seed: int, tags: dict) -> float:
        """Fuse the runs of the trial's partner cells of the same seed, once they have finished (other
        workers may still hold them), as a nested run of this parent."""
        from emo.core.metrics import target_mean
        from emo.late_fusion import late_fusion

        runs = [
            wait_for(lambda p=p: self._finished_run(p, seed), timeout=FUSE_WAIT, every=2.0, what=p) for p in cell.fuses
        ]
        result = late_fusion(
            *runs, run_name=f"{cell.name}-seed{seed}", parent_run_id=self.parent_id, tags=tags, dataset=self.ds
        )
        trial.set_user_attr("mlflow_run_id", result.run_id)
        self.counts["ran"] += 1
        return target_mean(result.dev, "dev/rmse")

    def _finished_run(self, cell_name: str, seed: int) -> str | None:
        """The run of (cell, seed) once a trial of it is complete (the original where it was reused: that
        one holds the predictions); None while it is queued or running; an error when it failed."""
        S = optuna.trial.TrialState
        trials = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.user_attrs.get("cell") == cell_name and t.user_attrs.get("seed") == seed
        ]
        for t in trials:
            if t.state == S.COMPLETE:
                return t.user_attrs.get("reused_from") or t.user_attrs["mlflow_run_id"]
        if trials and all(t.state == S.FAIL for t in trials):
            raise StudyError(f"{cell_name} seed {seed} failed: there is nothing to fuse.")
        return None

    def _reuse(self, trial: optuna.Trial, earlier, run_name: str, tags: dict) -> float:
        """Fill the trial from an earlier matrix's run: a copy of it, nested under this parent."""
        from emo.runs.reuse import copy_run

        run_id = copy_run(earlier, self.parent_id, run_name, tags, keep=TAGS)
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("reused_from", earlier.info.run_id)
        self.counts["reused"] += 1
        return float(earlier.data.metrics.get(OBJECTIVE, float("nan")))

    def _train(self, trial: optuna.Trial, config: Config, cell: Cell, seed: int, tags: dict) -> float:
        """Train the trial's (cell, seed) as a nested run of this parent, tested once at its end."""
        from emo.experiment import run_experiment

        try:
            result = run_experiment(
                config,
                run_name=f"{cell.name}-seed{seed}",
                parent_run_id=self.parent_id,
                dataset=self.ds,
                progress=False,
                tags=tags,
                on_start=lambda rid: trial.set_user_attr("mlflow_run_id", rid),
            )
        except Exception as exc:
            log.warning("cell %s seed %d failed: %s", cell.name, seed, exc)
            raise
        self.counts["ran"] += 1
        return result.objective


def _after_trial(bar, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A (cell, seed) finished: the bar moves on and the log says which."""
    if "cell" in trial.user_attrs and trial.state == optuna.trial.TrialState.COMPLETE:
        bar.update(1)
        log.info("%s seed %s: %s", trial.user_attrs["cell"], trial.user_attrs["seed"], trial.state.name)


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
