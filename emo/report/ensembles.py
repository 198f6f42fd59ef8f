"""Seed ensembles and per-group scores of each cell, from the test predictions its runs logged.

A cell run with N seeds is N models; the field often reports their ensemble, the mean of their
predictions, beside the mean of their scores. Here a cell (a baseline: each algorithm) with two seeds or
more gets one: the seeds' predictions averaged on the test windows every seed predicted, scored as a run
scores its own. An ensemble is not selected on dev (there is none to select) and never becomes a
family's best: it is a reading of the test set, not a model choice.

One pass over the cells reads each run's predictions once, for its ensemble and its per-group scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.core.errors import short_error
from emo.core.metrics import evaluate
from emo.report.groups import TRUE, Groups, group_scores, known, ungrouped

METRICS = ("mae", "rmse", "ccc", "ccc_per_recording")
CELL = ["table", "row", "window", "label", "arch", "published_key"]  # one table row (a baseline: one algorithm)
# One test window; a table without `end` joins on video and start (a cell's windows all have one length).
WINDOW = ["video_id", "start", "end"]
TARGET = list(TARGETS)
AGREE = 1e-6  # the seeds' labels of a window must agree: else they ran on different data


def label(row: str, seeds: int) -> str:
    """An ensemble's row name: "fusion 4 v2, ensemble of 3 seeds"."""
    return f"{row}, ensemble of {seeds} seeds"


def scores(table: pd.DataFrame) -> dict[str, float]:
    """`test_<metric>_<target>` of a predictions table, as a run scores its test windows (per recording:
    grouped by video_id)."""
    table = known(table)
    found = evaluate(table[TRUE].to_numpy(), table[TARGET].to_numpy(), "test_", groups=table["video_id"].to_numpy())
    return {f"test_{m}_{t}": found[f"test_{m}_{t}"] for m in METRICS for t in TARGETS}


def ensemble(tables: dict[int, pd.DataFrame]) -> pd.DataFrame | str:
    """The mean prediction of the seeds' `tables` on the windows all of them predicted (an inner join on
    video, start and end), or why there is none."""
    keys = [c for c in WINDOW if all(c in t for t in tables.values())]
    stacked = pd.concat([t[keys + TARGET + TRUE].assign(seed=s) for s, t in tables.items()], ignore_index=True)
    grouped = stacked.groupby(keys, sort=True)
    everyone = grouped["seed"].nunique() == len(tables)
    if not everyone.any():
        return "its seeds share no test window"
    spread = grouped[TRUE].max() - grouped[TRUE].min()
    if (spread[everyone] > AGREE).any(axis=None):
        return "its seeds' test labels differ on the same windows (different data)"
    return grouped[TARGET + TRUE].mean()[everyone].reset_index()


@dataclass
class Extras:
    """What the predictions add to the tables: the ensembles (one row per cell with two seeds or more), the
    per-group scores (one row per seed or ensemble and group), and notes on what could not be read."""

    ensembles: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*CELL, "seeds"]))
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    failed: list[str] = field(default_factory=list)  # "cell (why)"
    ungrouped: dict[str, set[str]] = field(default_factory=dict)  # group name -> test videos without a value


def cell_name(cell: dict) -> str:
    window = f" {cell['window']:g} s" if pd.notna(cell["window"]) else ""
    return f"{cell['table']}: {cell['row']}{window} ({cell['arch']})"


def _read(runs: pd.DataFrame, predictions: Callable[[str], pd.DataFrame]) -> dict[int, pd.DataFrame] | str:
    """Each seed's test predictions, or why they cannot be had. Any failure of the reader is caught: one
    run whose artifact is gone (an older emo, a moved store) must not cost the whole report."""
    tables = {}
    for seed, run in zip(runs["seed"], runs["source_run"]):
        try:
            tables[int(seed)] = predictions(run)
        except Exception as exc:
            return f"the test predictions of run {run} could not be read: {short_error(exc)}"
    return tables


def per_cell(frame: pd.DataFrame, predictions: Callable[[str], pd.DataFrame], groups: Groups) -> Extras:
    """Every cell's seed ensemble (two seeds or more) and per-group scores (where there are `groups`)."""
    out, ensembles, scored = Extras(), [], []
    for key, runs in frame.groupby(CELL, dropna=False, sort=False):
        runs = runs.drop_duplicates("seed").sort_values("seed")
        if len(runs) < 2 and not groups:
            continue
        cell = dict(zip(CELL, key))
        tables = _read(runs, predictions)
        if isinstance(tables, str):
            out.failed.append(f"{cell_name(cell)} ({tables})")
            continue
        for seed, table in tables.items():
            scored.append(group_scores(table, groups).assign(**cell, seed=seed, ensemble=0))
            for name, videos in ungrouped(table, groups).items():
                out.ungrouped.setdefault(name, set()).update(videos)
        if len(tables) < 2:
            continue
        mean = ensemble(tables)
        if isinstance(mean, str):
            out.failed.append(f"{cell_name(cell)} (no ensemble: {mean})")
            continue
        ensembles.append({**cell, "seeds": len(tables), **scores(mean)})
        scored.append(group_scores(mean, groups).assign(**cell, seed=-1, ensemble=len(tables)))
    if ensembles:
        out.ensembles = pd.DataFrame(ensembles)
    scored = [s for s in scored if not s.empty]
    if scored:
        out.groups = pd.concat(scored, ignore_index=True)
    return out


def as_rows(ensembles: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Ensembles as rows of the aggregate (`columns`): labelled by their seeds, dev and every spread empty
    (an ensemble is not selected on dev and has one score), and no thesis value (the thesis had none)."""
    out = ensembles.assign(
        row=[label(r, n) for r, n in zip(ensembles["row"], ensembles["seeds"])], published_key=None
    ).reindex(columns=columns)
    return out.astype({c: np.float64 for c in columns if c.startswith(("dev_", "test_"))})
