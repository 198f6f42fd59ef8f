"""Results per group: a cell's test RMSE and CCC on the windows of each group's videos (e.g. per culture).

A dataset's groups are meta.json's `groups` (name -> {video id -> value}), as the AVEC importer writes them
or a user adds them. The report reads them from the runs' data folder (the `data_folder` each run logs) or
from a folder it is given. A group's windows are exactly the test windows of that group's videos: the
groups of one name split the test windows that have a value, and windows of videos without one are named
in a note, never put in a group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.core.errors import DataError
from emo.core.metrics import evaluate

Groups = dict[str, dict[str, str]]  # group name -> {video id -> value}
GROUP_METRICS = ("rmse", "ccc")  # what the per-group table shows, per target
TRUE = [f"true_{t}" for t in TARGETS]


@dataclass
class Grouping:
    """The groups a report uses, where they came from (a meta.json path; None: given as a mapping), and why
    there are none (a note)."""

    groups: Groups = field(default_factory=dict)
    source: str | None = None
    note: str | None = None

    def describe(self) -> str:
        """ "culture (Chinese, German) from PATH" for the provenance."""
        values = [f"{name} ({', '.join(sorted(set(m.values())))})" for name, m in self.groups.items()]
        return "; ".join(values) + (f" from {self.source}" if self.source else "")


def report_groups(frame: pd.DataFrame, folder: str | Path | None = None) -> Grouping:
    """The groups of `folder`'s meta.json (an error where it is unreadable: it was asked for), else of the
    runs' data folder where it is on this machine (a note where it is not, or disagrees with itself)."""
    from emo.data.dataset import read_groups, resolve_data

    if folder is not None:
        path = resolve_data(folder)
        return Grouping(read_groups(path), str(path / "meta.json"))
    folders = sorted(frame["data_folder"].dropna().astype(str).unique()) if "data_folder" in frame else []
    here = [f for f in folders if (Path(f) / "meta.json").is_file()]
    if not here:
        missing = f"the runs' data folder ({', '.join(folders)}) is not on this machine" if folders else None
        return Grouping(note=_unread(missing) if missing else None)
    try:
        found = {f: read_groups(Path(f)) for f in here}
    except DataError as exc:
        return Grouping(note=_unread(str(exc).rstrip(".")))
    if len({repr(sorted(g.items())) for g in found.values()}) > 1:
        return Grouping(note=_unread(f"the runs' data folders ({', '.join(here)}) give different groups"))
    return Grouping(found[here[0]], str(Path(here[0]) / "meta.json"))


def _unread(why: str) -> str:
    return (
        f"No results per group: {why}. Pass `emo report --data DIR` (the runs' dataset) to read its meta.json groups."
    )


def known(table: pd.DataFrame) -> pd.DataFrame:
    """The windows of a predictions table that have both labels (the ones a metric can score)."""
    return table[np.isfinite(table[TRUE].to_numpy(np.float64)).all(axis=1)]


def group_scores(table: pd.DataFrame, groups: Groups) -> pd.DataFrame:
    """One row per (group name, value) with windows in `table`: its windows, recordings, and test RMSE and
    CCC per target on exactly those windows (the test windows of that value's videos)."""
    table = known(table)
    rows = []
    for name, mapping in groups.items():
        value = table["video_id"].astype(str).map(mapping)
        for group, part in table.groupby(value, sort=True):  # videos without a value fall out here
            scored = evaluate(part[TRUE].to_numpy(), part[list(TARGETS)].to_numpy())
            rows.append(
                {
                    "group_name": name,
                    "group": group,
                    "windows": len(part),
                    "recordings": part["video_id"].nunique(),
                    **{f"test_{m}_{t}": scored[f"{m}_{t}"] for m in GROUP_METRICS for t in TARGETS},
                }
            )
    return pd.DataFrame(rows)


def ungrouped(table: pd.DataFrame, groups: Groups) -> dict[str, set[str]]:
    """Per group name, the videos of `table`'s scored windows that have no value of it."""
    videos = known(table)["video_id"].astype(str).unique()
    return {name: {v for v in videos if v not in mapping} for name, mapping in groups.items()}


def members(mapping: dict[str, str], videos) -> dict[str, list[str]]:
    """Value -> its videos among `videos` (values with none left out)."""
    present = pd.Series(sorted(set(map(str, videos))))
    value = present.map(mapping)
    return {g: part.tolist() for g, part in present.groupby(value, sort=True)}


def aggregate_groups(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of `rows` (one per seed and group) per `keys` + ensemble + group: columns
    `<metric>`, `<metric>_std`, `seeds`, and the windows and recordings scored (mean over seeds: the same
    for every seed on one dataset and split)."""
    by = [*keys, "ensemble", "group_name", "group"]
    values = [f"test_{m}_{t}" for m in GROUP_METRICS for t in TARGETS]
    grouped = rows.groupby(by, dropna=False, sort=False)
    mean = grouped[values + ["windows", "recordings"]].mean()
    std = grouped[values].std(ddof=1).fillna(0.0).add_suffix("_std")
    out = pd.concat([mean, std, grouped.size().rename("seeds")], axis=1).reset_index()
    # an ensemble row is one prediction of N seeds: N seeds, no spread
    ensemble = out["ensemble"] > 0
    out.loc[ensemble, "seeds"] = out.loc[ensemble, "ensemble"]
    out.loc[ensemble, [f"{v}_std" for v in values]] = np.nan
    return out
