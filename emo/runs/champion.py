"""The registry's champion: the best Fusion 4 model by dev metric, registered as `emo-fusion4`.

A new version takes the `champion` alias only if it beats the current champion like for like: on
the same dev windows and targets, by the study's metric. When the two runs share data, split,
window, label rule, stride and label delay, their logged dev metrics are compared; otherwise both
are scored on the candidate's dev targets (the champion re-evaluated on the candidate's dev data,
windows matched by recording and end time). The decision and both numbers are stored on the version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from emo import TARGETS
from emo.core.errors import ConfigError
from emo.core.metrics import target_mean
from emo.runs.naming import OBJECTIVE

log = logging.getLogger(__name__)

MODEL_NAME = "emo-fusion4"
ALIAS = "champion"
METRIC = OBJECTIVE  # the runs' logged objective (lower is better)
# what decides which dev windows and targets a run was scored on
SAME_DEV = ("data_fingerprint", "split_hash", "window", "label", "stride", "label_delay")


@dataclass
class Registration:
    name: str
    version: str
    run_id: str
    dev_metric: float
    metric: str
    champion: bool
    reason: str

    def __str__(self) -> str:
        verdict = f"is now {self.name}@{ALIAS}" if self.champion else f"did not take the {ALIAS} alias"
        return (
            f"registered {self.name} version {self.version} (run {self.run_id}, dev {self.metric.upper()} "
            f"{self.dev_metric:.4f}): {verdict}: {self.reason}"
        )


def _fusion4(run) -> bool:
    return (
        run.data.tags.get("emo.model") == "fusion4"
        and METRIC in run.data.metrics
        and bool(run.data.tags.get("emo.model_uri"))
        and run.info.status == "FINISHED"
    )


def fusion4_run(run_id: str):
    """The run `run_id`, if it is a finished Fusion 4 run with a logged model and dev metrics."""
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    if not _fusion4(run):
        raise ConfigError(f"run {run_id} is not a finished Fusion 4 run with a logged model and dev metrics.")
    return run


def best_fusion4_run(*, run_ids: list[str] | None = None, experiment: str | None = None, all_experiments: bool = False):
    """The finished Fusion 4 run with the lowest dev RMSE among `run_ids`, else in `experiment` (default:
    MLflow's active one when MLFLOW_EXPERIMENT_NAME/ID says so, else emo-fusion, where Fusion 4 runs and
    studies go by default; `all_experiments` searches every one)."""
    import mlflow

    client = mlflow.MlflowClient()
    if run_ids:
        runs = [client.get_run(r) for r in run_ids]
    else:
        from emo.runs.lifecycle import default_experiment

        experiment = default_experiment("emo-fusion", experiment)  # None: MLflow's active one
        if all_experiments:
            ids = [e.experiment_id for e in client.search_experiments()]
        elif experiment:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise ConfigError(f"no MLflow experiment named {experiment!r} at {mlflow.get_tracking_uri()}.")
            ids = [exp.experiment_id]
        else:
            from mlflow.tracking.fluent import _get_experiment_id

            ids = [_get_experiment_id()]
        runs = client.search_runs(
            ids, filter_string="tags.`emo.model` = 'fusion4' and attributes.status = 'FINISHED'", max_results=5000
        )
    runs = [r for r in runs if _fusion4(r)]
    if not runs:
        raise ConfigError(
            "no finished Fusion 4 run with a logged model and dev metrics to register: train one with "
            "`mlflow run . -e fusion -P variant=v2` or tune with `emo tune` (or pass --experiment, or "
            "--all-experiments)."
        )
    return min(runs, key=lambda r: r.data.metrics[METRIC])


def score(metrics: dict, metric: str, prefix: str = "best_dev/") -> float:
    """Mean over valence and arousal of `metric` (rmse: lower is better; ccc: higher is better)."""
    return target_mean(metrics, f"{prefix}{metric}")


def _better(a: float, b: float, metric: str) -> bool:
    return a < b if metric == "rmse" else a > b


def _scores_on_candidate_dev(candidate, champion_version, metric: str) -> tuple[float, float, int]:
    """Both models scored on the candidate's dev targets, on the windows both predicted."""
    from emo.core.metrics import evaluate
    from emo.predict import predict_split
    from emo.runs.queries import load_model, run_table

    ours = run_table(candidate.info.run_id, "predictions/dev.parquet")
    p = candidate.data.params
    options = {k: p.get(k) for k in ("fps", "label_scale", "id_pattern", "audio_id_pattern")}
    model = load_model(f"models:/{champion_version.name}/{champion_version.version}")
    theirs, _ = predict_split(
        model,
        p["data_folder"],
        split="dev",
        stride=1,  # a window ending at every frame
        **{k: v for k, v in options.items() if v not in (None, "auto")},
    )
    keys = ["video_id", "end"]
    theirs = theirs.assign(end=theirs["end"].round(6))
    both = ours.assign(end=ours["end"].round(6)).merge(theirs, on=keys, suffixes=("", "_champion"))
    if both.empty:
        raise ConfigError("the champion predicts none of the candidate's dev windows")
    truth = both[[f"true_{t}" for t in TARGETS]].to_numpy()
    mine = evaluate(truth, both[list(TARGETS)].to_numpy(), "dev/")
    other = evaluate(truth, both[[f"{t}_champion" for t in TARGETS]].to_numpy(), "dev/")
    return score(mine, metric, "dev/"), score(other, metric, "dev/"), len(both)


def current_champion(client, name: str):
    """The version that holds `name`'s champion alias; None when the model or the alias does not exist.
    Any other failure (a refused or broken request) is an error: taking it for "no champion" would let
    any candidate, however bad, take the alias."""
    from mlflow.exceptions import MlflowException

    from emo.core.errors import TrackingError, short_error

    try:
        try:
            model = client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        version = model.aliases.get(ALIAS)
        return None if version is None else client.get_model_version(name, str(version))
    except Exception as exc:
        import mlflow

        raise TrackingError(
            f"could not read the current {name}@{ALIAS} at {mlflow.get_tracking_uri()} "
            f"({short_error(exc)}): nothing was registered and the {ALIAS} alias is unchanged. "
            f"Check the server and your permissions, then run `emo register` again."
        ) from None


def register(run, *, name: str = MODEL_NAME, metric: str = "rmse") -> Registration:
    """Register `run`'s model as a new version of `name`; move the champion alias if it is better,
    like for like, by `metric` (rmse or ccc)."""
    import mlflow

    client = mlflow.MlflowClient()
    m, p = run.data.metrics, run.data.params
    dev = score(m, metric)
    tags = {
        METRIC: m[METRIC],
        "source_run": run.info.run_id,
        "data_name": p.get("data_name"),
        "data_synthetic": p.get("data_synthetic"),
        **{k: p.get(k) for k in SAME_DEV},
        **{k: v for k, v in m.items() if k.startswith(("best_dev/", "test/"))},
    }
    current = current_champion(client, name)  # read before anything is written
    version = mlflow.register_model(
        run.data.tags["emo.model_uri"], name, tags={k: str(v) for k, v in tags.items() if v is not None}
    )
    decision = {"emo.metric": metric, "emo.candidate_dev": f"{dev:.6f}"}
    if current is None:
        champion, reason = True, "there was no champion yet"
    else:
        same = all(current.tags.get(k) == str(p.get(k)) for k in SAME_DEV)
        try:
            if same:
                mine, theirs = (
                    dev,
                    score({k: float(v) for k, v in current.tags.items() if k.startswith("best_dev/")}, metric),
                )
                how = "same data, split, windows and targets: logged dev metrics compared"
            else:
                mine, theirs, n = _scores_on_candidate_dev(run, current, metric)
                how = f"both scored on the candidate's dev targets ({n} windows both predict)"
        except Exception as exc:
            champion, reason = False, f"the champion could not be compared like for like ({exc})"
        else:
            decision.update(
                {
                    "emo.candidate_dev": f"{mine:.6f}",
                    "emo.champion_dev": f"{theirs:.6f}",
                    "emo.champion_version": str(current.version),
                }
            )
            champion = _better(mine, theirs, metric)
            verb = "beats" if champion else "does not beat"
            reason = f"dev {metric.upper()} {mine:.4f} {verb} champion version {current.version}'s {theirs:.4f} ({how})"
    if champion:
        client.set_registered_model_alias(name, ALIAS, version.version)
    for key, value in {**decision, "emo.champion_decision": reason}.items():
        client.set_model_version_tag(name, version.version, key, value)
    result = Registration(name, str(version.version), run.info.run_id, dev, metric, champion, reason)
    log.debug("%s", result)
    return result
