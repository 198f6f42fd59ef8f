"""Regression metrics per target: MAE, RMSE (the thesis), CCC and Pearson r (the field's standard)."""

from __future__ import annotations

import numpy as np

from emo import TARGETS


def target_mean(metrics, name: str) -> float:
    """The mean over valence and arousal of metric `name` (`metrics[f"{name}_valence"]`, …): what model
    selection, tuning and the champion compare, e.g. `target_mean(dev, "dev/rmse")`."""
    return float(np.mean([metrics[f"{name}_{t}"] for t in TARGETS]))


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


def ccc_per_recording(y_true, y_pred, groups) -> float:
    """Mean over recordings of each recording's CCC (AVEC's practice beside the pooled CCC): a model
    that only tracks the differences between recordings' means scores high pooled, not here."""
    t, p, g = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64), np.asarray(groups)
    order = np.argsort(g, kind="stable")
    bounds = np.flatnonzero(np.r_[True, g[order][1:] != g[order][:-1], True])
    scores = [ccc(t[order[a:b]], p[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:]) if b - a > 1]
    return float(np.mean(scores)) if scores else 0.0


def evaluate(y_true, y_pred, prefix: str = "", groups=None) -> dict[str, float]:
    """Every metric for every target of (n, 2) arrays, named like `dev/rmse_valence`; with `groups`
    (each sample's recording) also the per-recording CCC, `dev/ccc_per_recording_valence`."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = {}
    for j, target in enumerate(TARGETS):
        for name, fn in METRICS.items():
            out[f"{prefix}{name}_{target}"] = fn(y_true[:, j], y_pred[:, j])
        if groups is not None:
            out[f"{prefix}ccc_per_recording_{target}"] = ccc_per_recording(y_true[:, j], y_pred[:, j], groups)
    return out
