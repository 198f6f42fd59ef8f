"""Regression metrics per target: MAE, RMSE (the thesis), CCC and Pearson r (the field's standard)."""

from __future__ import annotations

import numpy as np

from emo import TARGETS


def mae(y_true, y_pred) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64))))


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)) ** 2)))


def pearson(y_true, y_pred) -> float:
    """Pearson's r; 0 when either side is constant (r is undefined there)."""
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    t, p = t - t.mean(), p - p.mean()
    denom = np.sqrt((t * t).sum() * (p * p).sum())
    return float((t * p).sum() / denom) if denom > 0 else 0.0


def ccc(y_true, y_pred) -> float:
    """Lin's concordance correlation coefficient: 2 cov / (var_t + var_p + (mean_t - mean_p)^2)."""
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    cov = np.mean((t - t.mean()) * (p - p.mean()))
    denom = t.var() + p.var() + (t.mean() - p.mean()) ** 2
    return float(2 * cov / denom) if denom > 0 else 0.0


METRICS = {"mae": mae, "rmse": rmse, "ccc": ccc, "r": pearson}


def evaluate(y_true, y_pred, prefix: str = "") -> dict[str, float]:
    """Every metric for every target of (n, 2) arrays, named like `dev_rmse_valence`."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = {}
    for j, target in enumerate(TARGETS):
        for name, fn in METRICS.items():
            out[f"{prefix}{name}_{target}"] = fn(y_true[:, j], y_pred[:, j])
    return out
