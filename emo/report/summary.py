"""Plain-text summaries of results for the terminal."""

from __future__ import annotations

from emo import TARGETS
from emo.runs.ui import where


def metrics_table(rows: dict[str, dict[str, float]], prefix: str) -> str:
    """One line per row name: MAE, RMSE, CCC and r per target, from metrics named like `dev/rmse_valence`."""
    head = f"{'':14s}" + "".join(
        f"{m.upper() + ' ' + t[0].upper():>9s}" for t in TARGETS for m in ("mae", "rmse", "ccc", "r")
    )
    lines = [head]
    for name, metrics in rows.items():
        lines.append(
            f"{name:14s}"
            + "".join(f"{metrics[f'{prefix}{m}_{t}']:9.4f}" for t in TARGETS for m in ("mae", "rmse", "ccc", "r"))
        )
    return "\n".join(lines)


def describe(result) -> str:
    """What a researcher wants after a run: dev vs. the mean predictor, test, and where the run is."""
    rows = {"dev (best)": result.dev, "mean predictor": result.mean_predictor_dev}
    parts = [
        f"{result.config.model_name}: best epoch {result.best_epoch}"
        if result.history
        else f"{result.config.model_name}",
        metrics_table(rows, "dev/"),
    ]
    if result.test:
        parts.append(metrics_table({"test": result.test}, "test/"))
    for name, child in result.children.items():
        parts.append(metrics_table({f"{name} dev": child.dev}, "dev/").split("\n", 1)[1])
    if result.run_id:
        parts.append(f"MLflow run {result.run_id}" + (f", model {result.model_uri}" if result.model_uri else "") + ".")
        parts.append(where(result.run_id))
    return "\n".join(parts)
