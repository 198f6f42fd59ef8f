"""The registry's champion: the best Fusion 4 model by dev metric, registered as `emo-fusion4`.

A new version takes the `champion` alias only if it beats the current champion on the same dev
data: the same dataset fingerprint and split (compared by the logged dev metric), or, when the
data differ, the champion re-evaluated on the candidate's dev split. Otherwise it is registered
without the alias and the reason is reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from emo.errors import ConfigError

log = logging.getLogger(__name__)

MODEL_NAME = "emo-fusion4"
ALIAS = "champion"
METRIC = "best_dev/rmse_mean"  # lower is better


@dataclass
class Registration:
    name: str
    version: str
    run_id: str
    dev_metric: float
    champion: bool
    reason: str

    def __str__(self) -> str:
        verdict = f"is now {self.name}@{ALIAS}" if self.champion else f"did not take the {ALIAS} alias"
        return f"registered {self.name} version {self.version} (run {self.run_id}, dev RMSE {self.dev_metric:.4f}): " \
               f"{verdict}: {self.reason}"


def best_fusion4_run(*, run_ids: list[str] | None = None, experiment: str | None = None):
    """The finished Fusion 4 run with the lowest dev metric among `run_ids`, or in `experiment`."""
    import mlflow

    client = mlflow.MlflowClient()
    if run_ids:
        runs = [client.get_run(r) for r in run_ids]
    else:
        if experiment:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise ConfigError(f"no MLflow experiment named {experiment!r} at {mlflow.get_tracking_uri()}.")
            ids = [exp.experiment_id]
        else:
            ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids, filter_string="tags.`emo.model` = 'fusion4' and attributes.status = 'FINISHED'",
                                  max_results=5000)
    runs = [r for r in runs if r.data.tags.get("emo.model") == "fusion4" and METRIC in r.data.metrics
            and r.data.tags.get("emo.model_uri") and r.info.status == "FINISHED"]
    if not runs:
        raise ConfigError("no finished Fusion 4 run with a logged model and dev metrics to register: train one with "
                          "`mlflow run . -e fusion -P variant=v2` or tune with `emo tune`.")
    return min(runs, key=lambda r: r.data.metrics[METRIC])


def _champion_dev_on(candidate, champion_version) -> tuple[float | None, str]:
    """The champion's dev metric on the candidate's dev data, and how it was obtained."""
    tags = champion_version.tags
    p = candidate.data.params
    if tags.get("data_fingerprint") == p.get("data_fingerprint") and tags.get("split_hash") == p.get("split_hash"):
        return float(tags[METRIC]), "same dataset and split: logged dev metrics compared"
    from emo.predict import load_model, predict_split

    try:
        model = load_model(f"models:/{champion_version.name}/{champion_version.version}")
        options = {"fps": p.get("fps"), "label_scale": p.get("label_scale"), "id_pattern": p.get("id_pattern"),
                   "audio_id_pattern": p.get("audio_id_pattern")}
        _, dev = predict_split(model, p["data_folder"], split="dev",
                               **{k: v for k, v in options.items() if v is not None})
    except Exception as exc:
        return None, f"the champion could not be evaluated on this run's dev data ({exc})"
    return (dev["dev/rmse_valence"] + dev["dev/rmse_arousal"]) / 2, \
        "different dataset or split: champion re-evaluated on the candidate's dev split"


def register(run, *, name: str = MODEL_NAME) -> Registration:
    """Register `run`'s model as a new version of `name`; move the champion alias if it is better."""
    import mlflow

    client = mlflow.MlflowClient()
    m, p = run.data.metrics, run.data.params
    dev = m[METRIC]
    tags = {METRIC: dev, "data_fingerprint": p.get("data_fingerprint"), "split_hash": p.get("split_hash"),
            "data_name": p.get("data_name"), "data_synthetic": p.get("data_synthetic"), "source_run": run.info.run_id,
            **{k: v for k, v in m.items() if k.startswith(("best_dev/", "test/"))}}
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
    except Exception:
        current = None
    version = mlflow.register_model(run.data.tags["emo.model_uri"], name,
                                    tags={k: str(v) for k, v in tags.items() if v is not None})
    if current is None:
        champion, reason = True, "there was no champion yet"
    else:
        theirs, how = _champion_dev_on(run, current)
        if theirs is None:
            champion, reason = False, how
        elif dev < theirs:
            champion, reason = True, f"dev RMSE {dev:.4f} beats champion version {current.version}'s {theirs:.4f} ({how})"
        else:
            champion, reason = False, (f"dev RMSE {dev:.4f} does not beat champion version {current.version}'s "
                                       f"{theirs:.4f} ({how})")
    if champion:
        client.set_registered_model_alias(name, ALIAS, version.version)
    client.set_model_version_tag(name, version.version, "emo.champion_decision", reason)
    result = Registration(name, str(version.version), run.info.run_id, dev, champion, reason)
    log.debug("%s", result)
    return result
