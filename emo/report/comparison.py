"""The like-for-like comparison: the best fusion cell against a video model of the same window and label,
on the same test windows, per seed and pooled over seeds, with a paired bootstrap over whole recordings.

The thesis labels fusion by the last frame and video by the mean; comparing their tables compares targets as
much as models. Here both predict the same target on the same windows, so only the model differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.core.errors import ConfigError
from emo.report.groups import Groups, known, members

# What every number of the comparison is, in words; the report prints it beside them.
METRIC = "test RMSE, the mean of the valence RMSE and the arousal RMSE over the test windows both models predicted"


@dataclass
class Comparison:
    """Fusion minus video in `METRIC` (negative: fusion better): each common seed, and pooled over them."""

    fusion: str  # "fusion 4 v2 1 s (emo)"
    video: str
    label: str  # the label rule both use
    per_seed: dict[int, dict]  # seed -> paired_bootstrap's result
    pooled: dict  # paired_bootstrap over every seed in per_seed
    metric: str = METRIC
    per_group: dict[str, dict] = field(default_factory=dict)  # "culture = German" -> pooled, that group's windows
    partner: str = "video"  # what fusion is held against, in headings and readings


def compare(
    frame: pd.DataFrame,
    fusion: pd.Series,
    predictions: Callable[[str], pd.DataFrame],
    *,
    resamples: int,
    seed: int,
    groups: Groups | None = None,
) -> Comparison | str:
    """The comparison of the best fusion cell `fusion` (a row of the aggregate) with its video partner in
    `frame` (the runs), also on each group's test windows (`groups`: name -> {video -> value}), or a sentence
    saying why there is none."""
    same = (frame["label"] == fusion["label"]) & (frame["window"] == fusion["window"])
    partner = frame[same & (frame["table"] == "video")]
    if (partner["arch"] == fusion["arch"]).any():
        partner = partner[partner["arch"] == fusion["arch"]]
    if not partner.empty:  # one video model, not a mix of rows or archs across seeds
        first = partner.iloc[0]
        partner = partner[(partner["row"] == first["row"]) & (partner["arch"] == first["arch"])]
    mine = frame[_same_cell(frame, fusion)]
    if not set(mine["seed"]) & set(partner["seed"]):
        return (
            "No video cell with the fusion cell's window and label ran on the same seeds, so there is no "
            "like-for-like comparison (run the video table too)."
        )
    found = _paired(mine, partner, predictions, predictions, resamples=resamples, seed=seed, groups=groups)
    return Comparison(fusion=_name(mine.iloc[0]), video=_name(partner.iloc[0]), label=fusion["label"], **found)


def compare_with_field(
    frame: pd.DataFrame,
    fusion: pd.Series,
    predictions: Callable[..., pd.DataFrame],
    *,
    resamples: int,
    seed: int,
    groups: Groups | None = None,
) -> Comparison | str | None:
    """The best fusion cell `fusion` against the field table's best cell (chosen on dev RMSE), on exactly the
    fusion cell's test windows and targets: a sequence model or their late fusion logs its test predictions
    on every windowed cell's windows (`predictions(run, "test_4s_last")`); a windowed late fusion takes part
    where its window and label are the fusion cell's. None where no field cell ran."""
    field_runs = frame[frame["table"] == "field"]
    windowed = field_runs["window"].notna()
    same = (field_runs["window"] == fusion["window"]) & (field_runs["label"] == fusion["label"])
    field_runs = field_runs[~windowed | same]
    if field_runs.empty:
        return None
    dev = (field_runs["dev_rmse_valence"] + field_runs["dev_rmse_arousal"]) / 2
    partner = field_runs[field_runs["row"] == dev.groupby(field_runs["row"]).mean().idxmin()]
    mine = frame[_same_cell(frame, fusion)]
    if not set(mine["seed"]) & set(partner["seed"]):
        return "No field cell ran on the fusion cell's seeds, so fusion is not compared with it."
    own = partner["window"].notna().iloc[0]  # a windowed cell's own test windows are the fusion cell's
    windows = "test" if own else f"test_{fusion['window']:g}s_{fusion['label']}"
    theirs = lambda run: predictions(run, windows)  # noqa: E731
    found = _paired(mine, partner, predictions, theirs, resamples=resamples, seed=seed, groups=groups)
    name = f"{partner['row'].iloc[0]} ({partner['arch'].iloc[0]})" + (
        f" {fusion['window']:g} s" if own else ", on the fusion cell's windows"
    )
    return Comparison(fusion=_name(mine.iloc[0]), video=name, label=fusion["label"], partner="field baseline", **found)


def _same_cell(frame: pd.DataFrame, fusion: pd.Series) -> pd.Series:
    same = (frame["label"] == fusion["label"]) & (frame["window"] == fusion["window"])
    return same & (frame["table"] == "fusion") & (frame["row"] == fusion["row"]) & (frame["arch"] == fusion["arch"])


def _paired(mine, partner, read_mine, read_partner, *, resamples: int, seed: int, groups) -> dict:
    """Per seed and pooled paired bootstraps of the runs `mine` against `partner` on their common seeds,
    and per group: a Comparison's numbers."""
    seeds = sorted(set(mine["seed"]) & set(partner["seed"]))

    def read(runs: pd.DataFrame, how: Callable) -> pd.DataFrame:
        at = runs.drop_duplicates("seed").set_index("seed").loc[seeds, "source_run"]
        return pd.concat([how(run).assign(seed=s) for s, run in at.items()])

    a, b = read(mine, read_mine), read(partner, read_partner)
    per_seed = {
        s: paired_bootstrap(a[a["seed"] == s], b[b["seed"] == s], resamples=resamples, seed=seed) for s in seeds
    }
    return {
        "per_seed": per_seed,
        "pooled": paired_bootstrap(a, b, resamples=resamples, seed=seed),
        "per_group": by_group(a, b, groups or {}, resamples=resamples, seed=seed),
    }


def by_group(a: pd.DataFrame, b: pd.DataFrame, groups: Groups, *, resamples: int, seed: int) -> dict[str, dict]:
    """`paired_bootstrap` of `a` against `b` on each group's windows only (the windows of its videos), pooled
    over the seeds, resampling that group's recordings; groups with no test window are left out."""
    out = {}
    for name, mapping in groups.items():
        scored = set(known(a)["video_id"].astype(str)) & set(known(b)["video_id"].astype(str))
        for value, videos in members(mapping, scored).items():
            mine, theirs = (t[t["video_id"].astype(str).isin(videos)] for t in (a, b))
            out[f"{name} = {value}"] = paired_bootstrap(mine, theirs, resamples=resamples, seed=seed)
    return out


def _name(run: pd.Series) -> str:
    return f"{run['row']} {run['window']:g} s ({run['arch']})"


def paired_bootstrap(
    a: pd.DataFrame, b: pd.DataFrame, *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """RMSE(a) − RMSE(b) on the test windows both predicted, each RMSE the mean of the valence and arousal
    RMSEs, with a bootstrap interval that resamples whole recordings (windows of one recording are not
    independent). Frames with a `seed` column pair seed with seed: the difference is then the mean over
    seeds of each seed's difference, and a drawn recording brings its windows of every seed."""
    keys = ["video_id", "start"] + (["seed"] if "seed" in a and "seed" in b else [])
    both = a.merge(b, on=keys, suffixes=("_a", "_b"))
    both = both[np.isfinite(both[[f"true_{t}_a" for t in TARGETS]]).all(axis=1)]
    if both.empty:
        raise ConfigError("the two models share no test window: they were trained on different data or splits.")
    err_a = np.stack([(both[f"{t}_a"] - both[f"true_{t}_a"]) ** 2 for t in TARGETS], axis=1)
    err_b = np.stack([(both[f"{t}_b"] - both[f"true_{t}_a"]) ** 2 for t in TARGETS], axis=1)
    seeds, s_idx = np.unique(both["seed"].to_numpy() if "seed" in keys else np.zeros(len(both)), return_inverse=True)
    groups, g_idx = np.unique(both["video_id"].to_numpy(), return_inverse=True)
    shape = (len(seeds), len(groups))
    sums_a, sums_b, counts = np.zeros((*shape, 2)), np.zeros((*shape, 2)), np.zeros(shape)
    np.add.at(sums_a, (s_idx, g_idx), err_a)
    np.add.at(sums_b, (s_idx, g_idx), err_b)
    np.add.at(counts, (s_idx, g_idx), 1.0)

    def rmse(weights: np.ndarray, sums: np.ndarray) -> np.ndarray:  # (R, G) multiplicities -> (R, S) RMSEs
        return np.sqrt(np.einsum("rg,sgt->rst", weights, sums) / (weights @ counts.T)[..., None]).mean(axis=2)

    def diff(weights: np.ndarray) -> np.ndarray:  # (R,) differences, mean over seeds
        return (rmse(weights, sums_a) - rmse(weights, sums_b)).mean(axis=1)

    ones = np.ones((1, len(groups)))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(groups), size=(resamples, len(groups)))
    weights = np.zeros((resamples, len(groups)))
    np.add.at(weights, (np.repeat(np.arange(resamples), len(groups)), draws.ravel()), 1.0)
    lo, hi = np.quantile(diff(weights), [(1 - level) / 2, (1 + level) / 2])
    return {
        "difference": float(diff(ones)[0]),
        "low": float(lo),
        "high": float(hi),
        "level": level,
        "rmse_a": float(rmse(ones, sums_a).mean()),
        "rmse_b": float(rmse(ones, sums_b).mean()),
        "seeds": [int(s) for s in seeds] if "seed" in keys else [],
        "windows": len(both[["video_id", "start"]].drop_duplicates()),
        "recordings": len(groups),
        "resamples": resamples,
    }
