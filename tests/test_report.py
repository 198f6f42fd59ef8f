"""`emo report` as its reader meets it: plots that read at any number of windows.

The report's inputs are built directly (a frame as `collect` makes it): nothing here trains.
"""

import numpy as np
import pandas as pd
import pytest
from matplotlib import colors as mpl_colors

from emo.config import FAMILIES
from emo.matrix import select
from emo.report_plots import metric_vs_window
from emo.results import build

METRICS = [f"{split}_{m}_{t}" for split in ("dev", "test") for m in ("mae", "rmse", "ccc", "ccc_per_recording")
           for t in ("valence", "arousal")]
LOGGED = {"dev": "best_dev/", "test": "test/"}  # a frame column's split -> the prefix of the metric a run logs


def _frame(cells, seeds=(0, 1), seed: int = 0) -> pd.DataFrame:
    """Rows as `collect` makes them, one per (cell, seed), every metric a different random number."""
    rng = np.random.default_rng(seed)
    rows = [{"cell": c.name, "table": c.table, "row": c.row, "arch": c.arch, "seed": s, "window": c.window,
             "label": c.settings.get("label", FAMILIES[c.family].label), "run_id": f"{c.name}#{s}",
             "source_run": f"{c.name}#{s}", "published_key": c.published_key, "data_source": "synthetic",
             "data_fingerprint": "f1", "split_hash": "h1", **dict(zip(METRICS, rng.uniform(0.05, 0.3, len(METRICS))))}
            for c in cells for s in seeds]
    return pd.DataFrame(rows)


def _panels(fig, family: str) -> list:
    return [ax for ax in fig.axes if ax.get_title().startswith(family)]


def _style(container) -> tuple:
    line = container.lines[0]
    return tuple(np.round(mpl_colors.to_rgba(line.get_color()), 3)), line.get_marker()


def test_one_window_plots_one_point_per_model_each_in_its_own_colour_and_marker():
    frame = _frame(select(windows="1"))
    agg = build(frame).aggregate
    fig = metric_vs_window(agg)
    fusion = frame[frame["table"] == "fusion"]
    means = fusion.groupby(["row", "arch"])["test_rmse_valence"].mean()  # sorted by model, as plotted
    valence, arousal = _panels(fig, "fusion")
    points = valence.containers
    assert len(points) == len(means) == 13
    assert [len(c.lines[0].get_xdata()) for c in points] == [1] * 13
    assert [c.lines[0].get_xdata()[0] for c in points] == pytest.approx(list(means))
    assert sorted(c.lines[0].get_ydata()[0] for c in points) == list(range(13))  # a row each, none piled up
    assert [t.get_text() for t in valence.get_yticklabels()] == [f"{r} ({a})" for r, a in means.index]
    styles = [_style(c) for c in points]
    assert len({c for c, _ in styles}) == len({m for _, m in styles}) == 13
    assert [_style(c) for c in arousal.containers] == styles  # a model looks the same in both panels


def test_several_windows_plot_a_line_per_model_with_no_colour_reused_in_the_legend():
    frame = _frame(select("fusion,audio", "2,4"))
    fig = metric_vs_window(build(frame).aggregate)
    valence, arousal = _panels(fig, "fusion")
    assert [t.get_text() for t in valence.get_xticklabels()] == ["2", "4"]
    assert all(len(c.lines[0].get_xdata()) == 2 for c in valence.containers)
    legend = arousal.get_legend()
    entries = [t.get_text() for t in legend.get_texts()]
    colours = [tuple(np.round(mpl_colors.to_rgba(h.get_color()), 3)) for h in legend.legend_handles]
    assert len(entries) == len(set(entries)) == 13 and len(set(colours)) == 13
    assert [t.get_text() for t in _panels(fig, "audio")[0].get_xticklabels()] == ["2", "4"]
