"""What a person sees of emo's runs in the MLflow UI: a saved view of each experiment and links to it.

MLflow's runs list shows no metric or parameter column until someone picks them (90 to choose
from), and the choice lives in one browser. An experiment tag `mlflow.sharedViewState.<id>` is a
saved view that anyone can open from the list's *Views* menu or by a link: emo writes one, "emo",
with the metrics that matter first (dev and test RMSE and CCC per target) and sorted by the mean dev
RMSE that model selection minimises. Links carry `workflowType=machine_learning`, else MLflow 3
opens its GenAI pages.
"""

from __future__ import annotations

import json
import time

from emo import TARGETS
from emo.runs.naming import OBJECTIVE

VIEW = "emo"
TAG = f"mlflow.sharedViewState.{VIEW}"
METRICS = (
    OBJECTIVE,
    *(f"{split}/{m}_{t}" for split in ("best_dev", "test") for m in ("rmse", "ccc") for t in TARGETS),
    "best_epoch",
)
PARAMS = ("window", "variant", "method", "pooling", "arch", "seed", "epochs", "data_name")
TAGS = ("emo.synthetic_data",)


def view_state() -> dict:
    """The saved view's state: columns (the logged model, headline metrics, telling settings) and sort."""
    columns = [
        "attributes.`Models`",
        *(f"metrics.`{m}`" for m in METRICS),
        *(f"params.`{p}`" for p in PARAMS),
        *(f"tags.`{t}`" for t in TAGS),
    ]
    return {
        "orderByKey": f"metrics.`{OBJECTIVE}`",
        "orderByAsc": True,
        "selectedColumns": columns,
        "columnOrder": [],
    }


def ensure_view(client, experiment_id: str) -> None:
    """Give the experiment emo's saved view, unless it holds this very one already."""
    state = json.dumps(view_state(), sort_keys=True)
    current = client.get_experiment(experiment_id).tags.get(TAG)
    if current and json.loads(current).get("state") == state:
        return
    now = int(time.time() * 1000)
    client.set_experiment_tag(
        experiment_id,
        TAG,
        json.dumps({"name": "emo: dev and test metrics", "createdAt": now, "updatedAt": now, "state": state}),
    )


def base_url(tracking_uri: str) -> str:
    """Where the UI is: the tracking server itself, or `mlflow ui`'s default address for a local store."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return "http://127.0.0.1:5000"


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    return f"{base_url(tracking_uri)}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def runs_link(tracking_uri: str, experiment_id: str) -> str:
    """The experiment's run list in emo's saved view."""
    return (
        f"{base_url(tracking_uri)}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
        f"&viewStateShareKey={VIEW}"
    )


def where(run_id: str) -> str:
    """How to look at run `run_id`: `mlflow ui` for a local store, and links to the run and its experiment
    (in emo's saved view)."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    experiment = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    start = (
        "" if uri.startswith(("http://", "https://")) else f"Start `mlflow ui --backend-store-uri {uri}`, then open "
    )
    return (
        f"{start or 'Open '}{run_link(uri, experiment, run_id)}\n"
        f"  and all runs of its experiment: {runs_link(uri, experiment)}"
    )
