"""Runs reused rather than retrained: a finished run of the same experiment (its cell key, the tag
`emo.cell_key`) found in any experiment, and copied as a nested run of another parent that points at
the original (`emo.reused_from`). `emo reproduce` fills a matrix cell this way when an earlier matrix
already ran it on the same data, split and settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable


def earlier_run(key: str, parent_id: str):
    """A finished run of the cell key `key` from another parent than `parent_id` (None: train it).
    Copies are never returned: the original is."""
    import mlflow

    runs = mlflow.MlflowClient().search_runs(
        experiment_ids=[e.experiment_id for e in mlflow.search_experiments()],
        filter_string=f"tags.`emo.cell_key` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
        max_results=20,
    )
    for run in runs:
        if run.data.tags.get("mlflow.parentRunId") != parent_id and "emo.reused_from" not in run.data.tags:
            return run
    return None


def copy_run(earlier, parent_id: str, run_name: str, tags: dict, *, keep: Iterable[str]) -> str:
    """A finished nested run of `parent_id` holding the `earlier` run's params and final metrics, and
    its `emo.*` tags except those named in `keep` (the new run's own, given in `tags`)."""
    import mlflow
    from mlflow.entities import Metric, Param

    keep = frozenset(keep)
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_id)
    run = client.create_run(
        parent.info.experiment_id,
        run_name=run_name,
        tags={
            **{k: str(v) for k, v in tags.items()},
            "mlflow.parentRunId": parent_id,
            "emo.reused_from": earlier.info.run_id,
            **{k: v for k, v in earlier.data.tags.items() if k.startswith("emo.") and k not in keep},
        },
    )
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        params=[Param(k, v) for k, v in earlier.data.params.items()],
        metrics=[Metric(k, v, now, 0) for k, v in earlier.data.metrics.items()],
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id
