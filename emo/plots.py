"""Figures a researcher looks at: learning curves, predicted vs. true traces, valence-arousal scatter."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emo import TARGETS  # noqa: E402


def learning_curves(history: list[dict]):
    """Train and dev loss per epoch, the best epoch marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train/loss"] for h in history], label="train loss")
    ax.plot(epochs, [h["dev/loss"] for h in history], label="dev loss")
    best = min(history, key=lambda h: h["dev/loss"])
    ax.axvline(best["epoch"], color="grey", ls=":", label=f"best epoch {best['epoch']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    return fig


def traces(video_ids: np.ndarray, times: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *,
           videos: int = 3, title: str = "dev"):
    """Predicted and true valence and arousal over time for the first `videos` videos."""
    chosen = list(dict.fromkeys(video_ids.tolist()))[:videos]
    fig, axes = plt.subplots(len(chosen), 2, figsize=(10, 2.2 * len(chosen)), squeeze=False, sharey=True)
    for row, vid in enumerate(chosen):
        sel = video_ids == vid
        order = np.argsort(times[sel])
        for col, target in enumerate(TARGETS):
            ax = axes[row, col]
            ax.plot(times[sel][order], y_true[sel][order, col], label="label", lw=1)
            ax.plot(times[sel][order], y_pred[sel][order, col], label="prediction", lw=1)
            ax.set_title(f"{title} video {vid}: {target}", fontsize=9)
            ax.set_ylim(-1.05, 1.05)
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 1].set_xlabel("seconds")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def va_scatter(y_true: np.ndarray, y_pred: np.ndarray, *, max_points: int = 5000, seed: int = 0):
    """Labels and predictions in the valence-arousal plane."""
    idx = np.arange(len(y_true))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y_true[idx, 0], y_true[idx, 1], s=4, alpha=0.4, label="label")
    ax.scatter(y_pred[idx, 0], y_pred[idx, 1], s=4, alpha=0.4, label="prediction")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
