"""Figures a researcher looks at: learning curves, predicted and true traces, predicted vs. true per target.

Sized for MLflow's artifact view (about 950 px wide): each PNG is 1100-1300 px wide at `DPI`, fonts >= 10 pt.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from emo import TARGETS  # noqa: E402
from emo.core.metrics import ccc, rmse  # noqa: E402

DPI = 100
LIMITS = (-1.05, 1.05)  # targets live in [-1, 1]; a little room so points on the edge stay visible
# The training loss as a formula, so the y axis says what was minimised (see emo.trainer.LOSSES).
LOSS_LABELS = {"rmse": "RMSE V + RMSE A", "ccc": "(1 − CCC V) + (1 − CCC A)"}
# Applied per figure through rc_context, never globally: report_page and tuning draw with plots.plt too.
STYLE = {
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
COLORS = {
    "label": "0.2",
    "prediction": "tab:orange",
    "train": "tab:blue",
    "dev": "tab:orange",
    "valence": "tab:purple",
    "arousal": "tab:green",
    "best": "tab:red",
}


def _figure(nrows: int, ncols: int, size: tuple[float, float], **kwargs) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure (it keeps labels, titles and a figure legend from overlapping)."""
    return plt.subplots(nrows, ncols, figsize=size, dpi=DPI, squeeze=False, layout="tight", **kwargs)


# ---------------------------------------------------------------- learning curves


def best_epoch(history: Sequence[dict]) -> dict:
    """The epoch whose weights the trainer kept: the last one marked `improved`, else the lowest dev loss."""
    improved = [h for h in history if h.get("improved")]
    return improved[-1] if improved else min(history, key=lambda h: h["dev/loss"])


def _mark_best(ax: Axes, epoch: int) -> None:
    ax.axvline(epoch, color=COLORS["best"], ls=":", lw=1.5)


def _loss_panel(ax: Axes, history: Sequence[dict], best: dict, loss: str) -> None:
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train/loss"] for h in history], marker=".", color=COLORS["train"], label="train")
    ax.plot(epochs, [h["dev/loss"] for h in history], marker=".", color=COLORS["dev"], label="dev")
    _mark_best(ax, best["epoch"])
    ax.plot(
        best["epoch"],
        best["dev/loss"],
        "o",
        ms=8,
        mfc="none",
        color=COLORS["best"],
        label=f"best epoch {best['epoch']} (dev {best['dev/loss']:.3f})",
    )
    ax.set_title(f"loss ({loss}), train and dev")
    ax.set_ylabel(f"loss: {LOSS_LABELS.get(loss, loss)}")
    ax.legend()


def _metric_panel(ax: Axes, history: Sequence[dict], best: dict, metric: str) -> None:
    """Dev `metric` (rmse or ccc) per target per epoch: what the loss means for each dimension."""
    epochs = [h["epoch"] for h in history]
    for target in TARGETS:
        ax.plot(
            epochs,
            [h[f"dev/{metric}_{target}"] for h in history],
            marker=".",
            color=COLORS[target],
            label=f"{target} ({best[f'dev/{metric}_{target}']:.3f} at best)",
        )
    _mark_best(ax, best["epoch"])
    better = "lower" if metric == "rmse" else "higher"
    ax.set_title(f"dev {metric.upper()} per target ({better} is better)")
    ax.set_ylabel(f"dev {metric.upper()}")
    ax.legend()


def learning_curves(history: list[dict], *, loss: str = "rmse") -> Figure:
    """Train and dev loss per epoch, and beside it dev RMSE and CCC per target; the best epoch marked.

    `loss` names the training loss ("rmse" or "ccc") for the y label. The metric panels are left out
    when the history lacks the dev metrics."""
    metrics = [m for m in ("rmse", "ccc") if all(f"dev/{m}_{t}" in history[0] for t in TARGETS)]
    best = best_epoch(history)
    with plt.rc_context(STYLE):
        fig, axes = _figure(1, 1 + len(metrics), (4.4 * (1 + len(metrics)), 4.4) if metrics else (10.5, 4.6))
        _loss_panel(axes[0, 0], history, best, loss)
        for ax, metric in zip(axes[0, 1:], metrics):
            _metric_panel(ax, history, best, metric)
        for ax in axes[0]:
            ax.set_xlabel("epoch")
            # whole epochs only, and a single tick when there is one epoch
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
        epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
        fig.suptitle(f"learning curves: {epochs}, best epoch {best['epoch']} (dotted line)")
    return fig


# ---------------------------------------------------------------- traces


def _with_gaps(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN between samples much further apart than usual, so a line does not bridge a stretch without
    windows (skipped frames, an unlabelled part) as if it had been predicted."""
    if len(times) < 3:
        return times, values
    steps = np.diff(times)
    typical = np.median(steps)
    breaks = np.flatnonzero(steps > 3 * typical) + 1 if typical > 0 else np.array([], int)
    return (np.insert(times.astype(float), breaks, np.nan), np.insert(values.astype(float), breaks, np.nan))


def _short(name: str, width: int = 40) -> str:
    """A recording id short enough for a panel title."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _trace_panel(ax: Axes, t: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, title: str) -> None:
    ax.plot(*_with_gaps(t, y_pred), color=COLORS["prediction"], lw=1.3, label="prediction")
    # the label on top: a noisy prediction would otherwise hide the curve it is judged against
    ax.plot(*_with_gaps(t, y_true), color=COLORS["label"], lw=1.8, label="label", zorder=3)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_ylim(*LIMITS)
    ax.set_title(f"{title}\nCCC {ccc(y_true, y_pred):.3f}, RMSE {rmse(y_true, y_pred):.3f}")


def traces(
    video_ids: np.ndarray,
    times: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    videos: int = 3,
    title: str = "dev",
    time_label: str = "window start (s)",
) -> Figure:
    """Predicted and true valence and arousal over time for the first `videos` recordings, one row each,
    with each recording's CCC and RMSE per target.

    `title` names the split; `times` are the windows' start times (seconds, as in SampleIndex.start)."""
    video_ids, times = np.asarray(video_ids), np.asarray(times)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    chosen = list(dict.fromkeys(video_ids.tolist()))[:videos]
    with plt.rc_context(STYLE):
        fig, axes = _figure(len(chosen), len(TARGETS), (12, 0.8 + 2.9 * len(chosen)), sharey=True)
        for row, vid in enumerate(chosen):
            sel = np.flatnonzero(video_ids == vid)
            sel = sel[np.argsort(times[sel], kind="stable")]
            for col, target in enumerate(TARGETS):
                ax = axes[row, col]
                _trace_panel(
                    ax, times[sel], y_true[sel, col], y_pred[sel, col], f"{title} · {_short(str(vid))} · {target}"
                )
                ax.set_ylabel(target)
                ax.tick_params(labelleft=True)  # sharey hides them on the right column; each panel reads alone
        for ax in axes[-1]:
            ax.set_xlabel(time_label)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles[::-1], labels[::-1], loc="outside upper right", ncols=2)  # "label" first
        fig.suptitle(
            f"{title}: label and prediction over time, first {len(chosen)} of "
            f"{len(set(video_ids.tolist()))} recordings",
            x=0.02,
            ha="left",
        )
    return fig


# ---------------------------------------------------------------- predicted vs. true


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """At most `max_points` indices: enough to show the shape, few enough to stay readable and fast."""
    idx = np.arange(n)
    if n > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    return idx


def _binned_means(
    t: np.ndarray, p: np.ndarray, width: float = 0.1, min_count: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Mean prediction per bin of the true value: a slope below the identity shows shrinkage to the mean."""
    edges = np.arange(-1.0, 1.0 + width / 2, width)
    which = np.clip(np.digitize(t, edges) - 1, 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1)
    sums = np.bincount(which, weights=p, minlength=len(edges) - 1)
    keep = counts >= min_count  # a mean of a handful of windows is noise
    return ((edges[:-1] + width / 2)[keep], sums[keep] / counts[keep])


def _identity_panel(ax: Axes, t: np.ndarray, p: np.ndarray, shown: np.ndarray, title: str) -> None:
    # denser clouds get fainter points, so where they pile up still shows
    alpha = float(np.clip(400 / max(len(shown), 1), 0.12, 0.8))
    ax.scatter(
        t[shown], p[shown], s=8, alpha=alpha, color="tab:blue", edgecolors="none", rasterized=True, label="window"
    )
    ax.plot(LIMITS, LIMITS, color=COLORS["best"], ls="--", lw=1.3, label="identity")
    ax.plot(*_binned_means(t, p), color="black", marker="o", ms=3, lw=1.5, label="mean prediction per bin")
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlim(*LIMITS)
    ax.set_ylim(*LIMITS)
    ax.set_aspect("equal")
    ax.set_title(f"{title}\nCCC {ccc(t, p):.3f}, RMSE {rmse(t, p):.3f}")
    legend = ax.legend(loc="upper left", markerscale=1.5)
    for handle in legend.legend_handles:
        handle.set_alpha(1)  # the faint points' swatch would be invisible


def predicted_vs_true(
    y_true: np.ndarray, y_pred: np.ndarray, *, split: str = "dev", max_points: int = 5000, seed: int = 0
) -> Figure:
    """Predicted against true value per target with the identity line; CCC and RMSE over all samples
    (pooled), the scatter a random subsample of at most `max_points`."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    shown = _subsample(len(y_true), max_points, seed)
    with plt.rc_context(STYLE):
        fig, axes = _figure(1, len(TARGETS), (11, 6))
        for col, target in enumerate(TARGETS):
            ax = axes[0, col]
            _identity_panel(ax, y_true[:, col], y_pred[:, col], shown, f"{split} {target}")
            ax.set_xlabel(f"true {target}")
            ax.set_ylabel(f"predicted {target}")
        sample = (
            f"{len(shown)} of {len(y_true)} windows shown" if len(shown) < len(y_true) else f"{len(y_true)} windows"
        )
        fig.suptitle(f"{split}: predicted vs. true ({sample}; metrics pooled over all)")
    return fig


def close(fig) -> None:
    plt.close(fig)
