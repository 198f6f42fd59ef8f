"""The report's figures: each family's test RMSE against window, and each family's best.

A family run at several windows is a line per model against window; at one window, a point per model
on a labelled row (a line through one x would pile every point there). Each model has its own colour
and marker: a colour is never reused within a family, so a legend reads even in grey or for 13 models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.report import plots

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p", "H", "d", "8")
FAMILIES = ("video", "audio", "fusion")  # the tables whose cells have a window
ENTRY = ["row", "arch", "label"]  # one model of a family: a line (several windows) or a point (one)


def styles(n: int) -> list[tuple[tuple[float, ...], str]]:
    """`n` (colour, marker) pairs, no colour twice: tab10 up to 10, tab20 up to 20, else evenly spaced hues.
    tab20's pairs (dark, light) fall on a model's thesis and emo archs, which sort next to each other."""
    plt = plots.plt
    if n <= 10:
        colors = plt.get_cmap("tab10").colors[:n]
    elif n <= 20:
        colors = plt.get_cmap("tab20").colors[:n]
    else:
        colors = plt.get_cmap("turbo")(np.linspace(0.05, 0.95, n))
    return [(tuple(c), MARKERS[i % len(MARKERS)]) for i, c in enumerate(colors)]


def _entries(part: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A family's models, each with its rows sorted by window, labelled "row (arch)"."""
    return [(f"{row} ({arch})", rows.sort_values("window")) for (row, arch, _), rows in part.groupby(ENTRY, sort=True)]


def _lines(axes: np.ndarray, family: str, part: pd.DataFrame) -> None:
    """One line per model against window; models side by side at each window, so error bars stay apart."""
    entries = _entries(part)
    windows = np.sort(part["window"].unique())
    width = 0.5 * np.diff(windows).min() if len(windows) > 1 else 1.0
    shift = (np.arange(len(entries)) - (len(entries) - 1) / 2) * width / max(len(entries), 1)
    for (name, rows), (color, marker), dx in zip(entries, styles(len(entries)), shift):
        for ax, t in zip(axes, TARGETS):
            ax.errorbar(
                rows["window"] + dx,
                rows[f"test_rmse_{t}"],
                yerr=rows[f"test_rmse_{t}_std"],
                color=color,
                marker=marker,
                capsize=2,
                linewidth=1.2,
                markersize=6,
                label=name,
            )
    for ax, t in zip(axes, TARGETS):
        ax.set_title(f"{family}: test RMSE {t}")
        ax.set_xlabel("window (s)")
        ax.set_xticks(windows, [f"{w:g}" for w in windows])
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False)


def _points(axes: np.ndarray, family: str, part: pd.DataFrame) -> None:
    """One window: one point per model (mean ± std over seeds), each on a row that names it."""
    entries = _entries(part)
    y = np.arange(len(entries))
    for k, ((name, rows), (color, marker)) in enumerate(zip(entries, styles(len(entries)))):
        for ax, t in zip(axes, TARGETS):
            ax.errorbar(
                rows[f"test_rmse_{t}"],
                [k],
                xerr=rows[f"test_rmse_{t}_std"],
                color=color,
                marker=marker,
                capsize=2,
                linestyle="none",
                markersize=7,
                label=name,
            )
    window = part["window"].iloc[0]
    for ax, t in zip(axes, TARGETS):
        ax.set_title(f"{family}, {window:g} s window: test RMSE {t}")
        ax.set_xlabel(f"test RMSE {t}")
        ax.set_yticks(y, [name for name, _ in entries] if ax is axes[0] else [])
        ax.set_ylim(len(entries) - 0.5, -0.5)  # the first model on top, as in the tables


def metric_vs_window(agg: pd.DataFrame):
    """One row of panels per family with a window (valence, arousal side by side); None: no such family."""
    parts = {f: agg[(agg["table"] == f) & agg["window"].notna()] for f in FAMILIES}
    parts = {f: part for f, part in parts.items() if not part.empty}
    if not parts:
        return None
    single = {f: part["window"].nunique() == 1 for f, part in parts.items()}
    heights = [0.8 + 0.32 * part.groupby(ENTRY).ngroups if single[f] else 3.4 for f, part in parts.items()]
    with plots.plt.rc_context(plots.STYLE):
        fig, axes = plots._figure(len(parts), len(TARGETS), (12, sum(heights)), gridspec_kw={"height_ratios": heights})
        for row, (family, part) in zip(axes, parts.items()):
            (_points if single[family] else _lines)(row, family, part)
    return fig


def best_models(agg: pd.DataFrame):
    """Each family's best on dev: its test RMSE per target, mean ± std over seeds."""
    best = agg.loc[agg.groupby("table", sort=False)["dev_rmse_mean"].idxmin()]
    x = np.arange(len(best))
    with plots.plt.rc_context(plots.STYLE):
        fig, axes = plots._figure(1, 1, (11, 4.4))
        ax = axes[0, 0]
        for k, t in enumerate(TARGETS):
            ax.bar(
                x + (k - 0.5) * 0.38,
                best[f"test_rmse_{t}"],
                0.38,
                yerr=best[f"test_rmse_{t}_std"],
                capsize=4,
                color=plots.COLORS[t],
                label=f"test RMSE {t}",
            )
        ax.set_xticks(
            x,
            [
                f"{r['table']}\n{r['row']}" + (f" {r['window']:g} s" if not np.isnan(r["window"]) else "")
                for _, r in best.iterrows()
            ],
        )
        ax.set_title("Each family's best on dev: test RMSE (mean ± std over seeds)")
        ax.legend()
    return fig


def figures(agg: pd.DataFrame) -> dict[str, object]:
    """The report's figures by name (plots/NAME.png)."""
    found = {"metric_vs_window": metric_vs_window(agg), "best_models": best_models(agg)}
    return {name: fig for name, fig in found.items() if fig is not None}
