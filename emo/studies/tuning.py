"""Optuna tuning studies over any family, one MLflow parent run per study and one nested run per trial.

The objective is the best-on-dev metric of `run_experiment` (mean dev RMSE over valence and
arousal, or mean dev CCC); each epoch's dev value is reported for pruning. Trials never see the
test set: the winner's test metrics are computed once, after the study. Several processes
started with the same `--storage` and `--study-name` share one study; a dead worker's trial is
failed by its missing heartbeat and retried by a surviving one.

The search spaces are `emo.studies.spaces`'s; the storage, its URL and its outages
`emo.studies.storage`'s; the parent run and the worker loop, shared with `reproduce`,
`emo.studies.worker`'s.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from collections import Counter
from dataclasses import dataclass

import optuna

from emo.core.config import HEARTBEAT_SECONDS, SPLITS, Config
from emo.core.errors import ConfigError, StorageUnavailableError
from emo.core.metrics import target_mean
from emo.core.progress import progress_bar
from emo.studies.spaces import METRICS, SPACES, TUNABLE, search_space  # noqa: F401 (SPACES, TUNABLE: public here too)
from emo.studies.storage import make_storage, masked_url, reopen_if_storage_lost, storage_errors, storage_url
from emo.studies.worker import Surplus, Trials, claim_key, parent_run, work, worker_name

log = logging.getLogger(__name__)

WINNER_ATTR = "winner"
_, _DEV, _TEST = SPLITS  # trials score on dev; the test split is the winner's alone, seen once


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


def _states(trials: Trials) -> Counter:
    """How many of `trials` are in each state."""
    return Counter(t.state for t in trials)


def _done(trials: Trials, wanted: int | None) -> bool:
    """Whether the study holds the `wanted` complete or pruned trials (without a number, never)."""
    counts = _states(trials)
    return wanted is not None and sum(counts[s] for s in FINISHED) >= wanted


def _left(trials: Trials, wanted: int | None) -> bool:
    """Whether a trial is left to start: one queued (a dead worker's retry), or fewer than `wanted`
    finished or running."""
    counts = _states(trials)
    running, waiting = counts[optuna.trial.TrialState.RUNNING], counts[optuna.trial.TrialState.WAITING]
    return wanted is None or waiting > 0 or sum(counts[s] for s in FINISHED) + running < wanted


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
    heartbeat: int = HEARTBEAT_SECONDS,
    fixed=(),
    register: bool = False,
) -> TuneResult:
    """Run (or join) a study of `base` with parameters drawn from the family's space (less the
    `fixed` settings: those of a matrix cell).

    Stops when the study holds `trials` complete or pruned trials (whichever worker ran them) or
    after `timeout` seconds. Once the study is complete, exactly one worker tests the winner and,
    with `register` (Fusion 4 studies), registers it; the others return what it found.
    """
    from emo.runs.lifecycle import reopen_run, tracked_run

    base.validate()
    if metric not in METRICS:
        raise ConfigError(f"unknown objective metric {metric!r}; choose rmse or ccc.")
    if trials is None and timeout is None:
        raise ConfigError("give --trials, --timeout or both, or the study never stops.")
    space = search_space(base.family, space, fixed)
    study_name = study_name or f"emo-{base.family}" + (f"{base.method}" if base.family == "fusion" else "")
    worker = _Worker.open(
        base,
        space,
        study_name,
        storage_url(storage),
        heartbeat=heartbeat,
        metric=metric,
        pruner=pruner,
        sampler_seed=sampler_seed,
        experiment=experiment,
        trials=trials,
        register=register,
    )
    # a lost storage ends this worker with its one-line error, the parent run noting it, then open
    # again: the study goes on once the database is back
    with (
        reopen_if_storage_lost(worker.parent_id),
        tracked_run(join_run_id=worker.parent_id, tags=worker.tags) as parent,
        storage_errors(),
    ):
        worker.log_parent(parent)
        worker.run(parent, progress=progress, timeout=timeout)
        result, complete = worker.conclude(parent)
    if not complete:
        reopen_run(worker.parent_id)  # this worker left early (--timeout): the study, and its parent run, go on
    return result


@dataclass
class _Worker:
    """This worker's part in a tuning study: the study and its parent run, what it searches and how
    it scores, and the trials it runs."""

    base: Config
    space: dict[str, dict]
    study: optuna.Study
    storage: optuna.storages.BaseStorage  # the RDB storage, whose database holds the once-only claims
    url: str  # the storage's URL as given
    metric: str
    pruner: str
    trials: int | None
    register: bool
    parent_id: str
    created: bool  # whether this worker created the parent run
    tags: dict[str, str]

    @classmethod
    def open(
        cls,
        base: Config,
        space: dict,
        name: str,
        url: str,
        *,
        heartbeat: int,
        experiment: str | None,
        metric: str,
        pruner: str,
        sampler_seed: int | None,
        trials: int | None,
        register: bool,
    ) -> _Worker:
        """Create or join the study `name` in the storage at `url`, and its one parent run."""
        from emo.runs.lifecycle import create_run, default_experiment

        rdb = make_storage(url, heartbeat)
        study = optuna.create_study(
            storage=rdb,
            study_name=name,
            load_if_exists=True,
            direction=METRICS[metric],
            pruner=make_pruner(pruner),
            sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        )
        tags = {"emo.family": base.family, "emo.study": name}
        experiment = default_experiment(f"emo-{base.family}", experiment)
        parent_id, created = parent_run(
            study, rdb, lambda: create_run(f"tune-{name}", experiment=experiment, tags=tags)
        )
        return cls(base, space, study, rdb, url, metric, pruner, trials, register, parent_id, created, tags)

    def log_parent(self, parent) -> None:
        """Where the study lives (every worker) and how it searches (the parent run's creator)."""
        # password hidden; a tag as well, because under `mlflow run` the `storage` parameter is
        # already taken by its -P value (`auto` when EMO_STORAGE holds the URL)
        parent.set_tags({"emo.storage": masked_url(self.url)})
        if not self.created:
            return
        parent.log_params(
            {
                "study_name": self.study.study_name,
                "storage": masked_url(self.url),
                "sampler": type(self.study.sampler).__name__,
                "pruner": self.pruner,
                "metric": self.metric,
                "direction": METRICS[self.metric],
                "search_space": json.dumps(self.space),
                **{f"base_{k}": v for k, v in self.base.params().items() if k not in self.space},
            }
        )

    def run(self, parent, *, progress: bool, timeout: float | None) -> None:
        """Run trials until the study holds its number, or for `timeout` seconds."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # the bar closes before any error message, not after it at exit
        with progress_bar(
            total=self.trials,
            desc=f"study {self.study.study_name}",
            unit="trial",
            disable=not progress,
            initial=min(len(_counted(self.study)), self.trials or 0),
        ) as bar:
            work(
                self.study,
                self.objective,
                functools.partial(_after_trial, bar, parent, self.metric),
                done=functools.partial(_done, wanted=self.trials),
                left=functools.partial(_left, wanted=self.trials),
                timeout=timeout,
            )

    def objective(self, trial: optuna.Trial) -> float:
        """One trial: settings drawn from the space, trained as a nested run of the parent (each
        epoch's dev value reported for pruning); its best dev value."""
        from emo.experiment import run_experiment
        from emo.runs.lifecycle import update_run

        self._refuse_surplus(trial)
        trial.set_user_attr("worker", worker_name())
        config = self.base.replace(**suggest(trial, self.space))
        run_id: list[str] = []
        try:
            result = run_experiment(
                config,
                run_name=f"trial-{trial.number}",
                parent_run_id=self.parent_id,
                evaluate_test=False,
                on_epoch=functools.partial(self._on_epoch, trial),
                progress=False,
                tags={"optuna.study_name": self.study.study_name, "optuna.trial_number": trial.number},
                on_start=lambda rid: (run_id.append(rid), trial.set_user_attr("mlflow_run_id", rid)),
            )
        except (Exception, KeyboardInterrupt) as exc:
            _ended_early(trial, run_id, exc)
            raise
        update_run(run_id[0], tags={"emo.trial_state": "COMPLETE"})
        trial.set_user_attr("model_uri", result.model_uri)
        return _value(result.dev, self.metric)

    def _refuse_surplus(self, trial: optuna.Trial) -> None:
        """A trial beyond the study's number (other workers' trials came first) stops this worker."""
        if self.trials is None:
            return
        ahead = sorted(t.number for t in _counted(self.study))
        if trial.number not in ahead[: self.trials]:
            self.study.stop()
            raise Surplus(f"the study already has {self.trials} trials")

    def _on_epoch(self, trial: optuna.Trial, state) -> None:
        value = _value(state.history[-1], self.metric)
        trial.report(value, state.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {state.epoch} (dev {self.metric} {value:.4f})")

    def conclude(self, parent) -> tuple[TuneResult, bool]:
        """What the study found, and whether it is complete. Once it is, the winner is tested (and
        registered) by one worker; a worker leaving early (--timeout) decides nothing."""
        complete = self.trials is None or _done(self.study.get_trials(deepcopy=False), self.trials)
        best = _best(self.study)
        winner = {}
        if complete and best is not None:
            winner = _finish(
                self.study, self.storage, best, self.base, parent, metric=self.metric, register=self.register
            )
            best = self.study.trials[winner["trial"]] if "trial" in winner else best
        _log_study_figures(self.study, parent)
        parent.log_text(summary(self.study), "study_summary.txt")
        result = TuneResult(
            study=self.study,
            parent_run_id=self.parent_id,
            best_trial=best,
            test=winner.get("test", {}),
            registration=winner.get("registration"),
        )
        return result, complete


def _ended_early(trial: optuna.Trial, run_id: list[str], exc: BaseException) -> None:
    """Tag a trial's run (if it started) with how the trial ended: pruned (the run KILLED),
    interrupted (Ctrl-C or SIGTERM: the run ends KILLED on its own) or failed."""
    from emo.runs.lifecycle import update_run

    pruned = isinstance(exc, optuna.TrialPruned)
    state = "PRUNED" if pruned else "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    if run_id:
        update_run(run_id[0], tags={"emo.trial_state": state}, status="KILLED" if pruned else None)
    if state == "FAILED" and not isinstance(exc, StorageUnavailableError):  # that one ends the worker
        log.warning("trial %d failed: %s", trial.number, exc)


def _after_trial(bar, parent, metric: str, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A trial ended: the bar moves on, the log says how, the parent run logs the best value so far."""
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


def _value(record: dict, metric: str) -> float:
    """Mean dev RMSE or CCC over valence and arousal, from an epoch record or final dev metrics."""
    return target_mean(record, f"{_DEV}/{metric}")


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
        claim_key(study, "winner"),
        work,
        lambda: study.user_attrs.get(WINNER_ATTR),
        what="the worker testing the winner",
    )


def _evaluate_winner(best: optuna.trial.FrozenTrial, base: Config, parent) -> dict[str, float]:
    """The winner's test metrics: the first and only time a model of the study sees the test set."""
    from emo.predict import predict_split
    from emo.runs.lifecycle import update_run
    from emo.runs.naming import test_metrics
    from emo.runs.queries import load_model

    uri = best.user_attrs.get("model_uri")
    if not uri:
        return {}
    _, test = predict_split(
        load_model(uri),
        base.data,
        split=_TEST,
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
