"""The thesis's tables rebuilt from tracked matrix runs: one row per cell, mean ± std over seeds.

`matrix_runs` finds a matrix's runs (a parent run's, or every matrix run of an experiment) and the
(cell, seed) pairs it queued; `collect` reads them into one frame of final metrics; `build` groups it
into the thesis's tables (baselines, FFNN, video, audio, fusion, each family's best), says where the
numbers come from (data, split, epochs, seeds, versions, dates) and which expected cells are missing.
Model selection inside a table ("best") is by dev RMSE only; test numbers are reported, never used. Each cell's
seed ensemble (`ensembles`) and its results per group (`groups`) are read from the runs' test predictions: they
are shown beside the cells and never become a best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from emo import TARGETS, __version__
from emo.core.errors import ConfigError
from emo.report.comparison import Comparison, compare, compare_with_field
from emo.report.ensembles import CELL, METRICS, Extras, as_rows, label, per_cell
from emo.report.groups import GROUP_METRICS, Grouping, aggregate_groups, report_groups
from emo.runs import queries
from emo.studies.matrix import CELLS, PUBLISHED, TABLES

CORPORA = {"avec": "sewa", "sewa": "sewa", "afew-va": "afew", "afew": "afew"}
SYNTHETIC_NOTE = "synthetic data: not comparable"
# Run params and tags the report's provenance reads: frame column -> (where, key) on a cell run.
RUN_FIELDS = {
    "data_name": ("params", "data_name"),
    "data_fingerprint": ("params", "data_fingerprint"),
    "data_folder": ("params", "data_folder"),  # where meta.json's groups are read from
    "data_source": ("params", "data_source"),
    "split_hash": ("params", "split_hash"),
    "epochs": ("params", "epochs"),
    "patience": ("params", "patience"),
    "emo_version": ("params", "emo_version"),
    "epochs_run": ("tags", "epochs_run"),
}


@dataclass
class Matrix:
    """Where a report's runs came from: the cell runs found, the parent run (None: a whole experiment),
    the experiment and tracking URI looked in, and the (cell, seed) pairs the matrix queued (None: no
    parent run records them)."""

    runs: list
    parent: str | None
    experiment: str  # "NAME (id N)"
    uri: str  # the tracking URI, its password masked
    expected: pd.DataFrame | None = None  # columns cell, seed

    @property
    def where(self) -> str:
        """Where the runs were looked for, in words."""
        place = (
            f"the child runs of parent run {self.parent}, in every experiment (the parent's: {self.experiment})"
            if self.parent
            else f"the matrix runs of experiment {self.experiment}"
        )
        return f"{place} at tracking URI {self.uri}"


def matrix_runs(target: str) -> Matrix:
    """The cell runs of `target`: a matrix's parent run id (its children in any experiment: a worker may
    have logged its cells outside the parent's), or an experiment name or id (all its matrix runs)."""
    uri = queries.masked_uri()
    parent = queries.find_run(target)
    if parent is not None:
        runs = [r for r in queries.children(target) if "emo.cell" in r.data.tags]
        return Matrix(runs, target, _named(queries.experiment_of(parent)), uri, _expected([parent]))
    experiment = queries.find_experiment(target)
    if experiment is None:
        raise ConfigError(
            f"{target!r} is neither a run id nor an experiment name or id at tracking URI {uri}; pass "
            f"the parent run id `emo reproduce` printed, or the experiment's name (or set "
            f"MLFLOW_TRACKING_URI to the store the matrix ran on)."
        )
    runs = queries.search("tags.`emo.cell` != ''", [experiment.experiment_id])
    parents = queries.search("tags.`emo.kind` = 'reproduce'", [experiment.experiment_id])
    return Matrix(runs, None, _named(experiment), uri, _expected(parents))


def _named(experiment) -> str:
    return f"{experiment.name!r} (id {experiment.experiment_id})"


def _expected(parents: list) -> pd.DataFrame | None:
    """The (cell, seed) pairs that the matrices of `parents` queued: the cells each logged (cells.txt)
    × its seeds 0 … N-1. None where no parent records both."""
    queued = [
        (cells.split(), int(p.data.params["seeds"]))
        for p in parents
        if "seeds" in p.data.params and (cells := queries.run_text(p.info.run_id, "cells.txt")) is not None
    ]
    if not queued:
        return None
    frames = [
        pd.MultiIndex.from_product([cells, range(seeds)], names=["cell", "seed"]).to_frame(index=False)
        for cells, seeds in queued
    ]
    return pd.concat(frames).drop_duplicates().reset_index(drop=True)


def coverage(matrix: Matrix) -> pd.DataFrame:
    """Each expected (cell, seed) with what became of it: FINISHED where any of its runs finished, else
    the latest run's status, else "no run found"."""
    seen = pd.DataFrame(
        [
            (r.data.tags["emo.cell"], int(r.data.tags.get("emo.seed", 0)), r.info.status, r.info.start_time)
            for r in matrix.runs
        ],
        columns=["cell", "seed", "status", "start"],
    ).astype({"seed": "int64"})  # an empty frame too, so that it merges on seed
    seen = (
        seen.assign(finished=seen["status"].eq("FINISHED"))
        .sort_values(["finished", "start"], ascending=False)
        .drop_duplicates(["cell", "seed"])
    )
    out = matrix.expected.merge(seen[["cell", "seed", "status"]], on=["cell", "seed"], how="left")
    return out.fillna({"status": "no run found"})


def _metrics(metrics: dict) -> dict:
    out = {}
    for split, prefix in (("dev", "best_dev/"), ("test", "test/")):
        for m in METRICS:
            for t in TARGETS:
                out[f"{split}_{m}_{t}"] = metrics.get(f"{prefix}{m}_{t}", np.nan)
    return out


def _fields(run) -> dict:
    """What the report's provenance reads from a cell run (None where the run lacks it)."""
    return {column: getattr(run.data, where).get(key) for column, (where, key) in RUN_FIELDS.items()}


def collect(runs: list, where: str = "there") -> pd.DataFrame:
    """One row per finished cell run (baseline cells: one per algorithm) with its final metrics;
    `where` says where the runs were looked for, for the error when none finished."""
    rows = []
    for run in runs:
        if run.info.status != "FINISHED":
            continue
        tags, params = run.data.tags, run.data.params
        cell = CELLS.get(tags["emo.cell"])
        base = {
            "cell": tags["emo.cell"],
            "table": tags.get("emo.table", cell.table if cell else "?"),
            "row": tags.get("emo.row", cell.row if cell else "?"),
            "arch": tags.get("emo.arch", "emo"),
            "seed": int(tags.get("emo.seed", 0)),
            "window": float(params.get("window", "nan")) if params.get("window", "auto") != "auto" else np.nan,
            "label": params.get("label", "mean"),
            "run_id": run.info.run_id,
            "source_run": tags.get("emo.reused_from", run.info.run_id),
            "published_key": cell.published_key if cell else tags["emo.cell"].split("/")[0],
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
            **_fields(run),
        }
        base["data_source"] = base["data_source"] or "unknown"
        if tags.get("emo.family") == "baseline":
            for child in queries.children(base["source_run"], [run.info.experiment_id]):
                algorithm = child.data.tags.get("emo.algorithm", child.info.run_name)
                rows.append(
                    {
                        **base,
                        "row": algorithm,
                        "published_key": algorithm,
                        "source_run": child.info.run_id,
                        **_metrics(child.data.metrics),
                    }
                )
        else:
            rows.append({**base, **_metrics(run.data.metrics)})
    if not rows:
        raise ConfigError(
            f"no finished matrix run found in {where}: run `emo reproduce` first, or check the run "
            f"id, the experiment and MLFLOW_TRACKING_URI."
        )
    # an experiment may hold a run and its reused copy in a later matrix: one result, counted once
    return pd.DataFrame(rows).drop_duplicates(["cell", "seed", "row", "source_run"]).reset_index(drop=True)


def corpus_of(frame: pd.DataFrame) -> str | None:
    """ "sewa" or "afew" when every run used that corpus (the thesis's values apply), else None."""
    sources = set(frame["data_source"])
    corpora = {CORPORA.get(s) for s in sources}
    return corpora.pop() if len(corpora) == 1 and None not in corpora else None


@dataclass
class Report:
    """The report's tables (name -> frame of formatted cells, and the same as numbers for CSV), notes,
    provenance, the per-cell aggregates and the expected cells that are missing."""

    tables: dict[str, pd.DataFrame]
    numbers: dict[str, pd.DataFrame]
    aggregate: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    comparison: Comparison | None = None
    field_comparison: Comparison | None = None  # the best fusion cell against the field's sequence model
    corpus: str | None = None
    synthetic: bool = False
    expected: int | None = None  # (cell, seed) pairs the matrix queued; None: not recorded
    ensembles: pd.DataFrame | None = None  # one row per cell with two seeds or more: its seed ensemble's scores
    groups: pd.DataFrame | None = None  # test RMSE and CCC per cell (and ensemble) and group, over seeds
    grouping: Grouping | None = None  # the groups used and where they came from
    missing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["cell", "seed", "status"]))

    @property
    def counted(self) -> str:
        """The expected cell runs found, in one line (the command prints it; the report shows it)."""
        if self.expected is None:
            return "not counted: no parent run here records the matrix's cells and seeds"
        line = f"{self.expected - len(self.missing)} of {self.expected} expected (cells × seeds) finished"
        if self.missing.empty:
            return line
        gone = self.missing
        listed = gone["cell"] + " seed " + gone["seed"].astype(str) + " (" + gone["status"] + ")"
        return f"{line}; missing {len(gone)}: " + ", ".join(listed)


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (table, row, window, label, arch): columns `<metric>` and `<metric>_std`."""
    keys = ["table", "row", "window", "label", "arch", "published_key"]
    values = [c for c in frame.columns if c.startswith(("dev_", "test_"))]
    grouped = frame.groupby(keys, dropna=False, sort=False)
    mean = grouped[values].mean()
    std = grouped[values].std(ddof=1).fillna(0.0).add_suffix("_std")
    out = pd.concat([mean, std, grouped.size().rename("seeds")], axis=1).reset_index()
    out["dev_rmse_mean"] = out[[f"dev_rmse_{t}" for t in TARGETS]].mean(axis=1)
    return out


def _fmt(mean: pd.Series, std: pd.Series, seeds: pd.Series) -> pd.Series:
    """ "0.1171 ± 0.0019" (mean ± std over seeds), "0.1171" for one seed or a seed ensemble (no std), "–"
    where there is no value."""
    single = (seeds < 2) | std.isna()
    shown = mean.map("{:.4f}".format).where(single, mean.map("{:.4f}".format) + " ± " + std.map("{:.4f}".format))
    return shown.where(mean.notna(), "–")


COLUMNS = [("dev", "rmse"), ("test", "mae"), ("test", "rmse"), ("test", "ccc"), ("test", "ccc_per_recording")]
SHORT = {"mae": "MAE", "rmse": "RMSE", "ccc": "CCC", "ccc_per_recording": "CCC/rec"}
VALUES = [f"{split}_{m}_{t}" for split, m in COLUMNS for t in TARGETS]  # the tables' metric columns, in order


def _table(agg: pd.DataFrame, corpus: str | None, synthetic: bool) -> pd.DataFrame:
    """A table as the page shows it: one row per model, each metric "mean ± std" over seeds."""
    out = pd.DataFrame(
        {
            "model": agg["row"],
            "window (s)": agg["window"].map("{:g}".format).where(agg["window"].notna(), "–"),
            "label": agg["label"],
            "arch": agg["arch"],
            "seeds": agg["seeds"].astype(int),
        }
    )
    for split, m in COLUMNS:
        for t in TARGETS:
            key = f"{split}_{m}_{t}"
            out[f"{split} {SHORT[m]} {t[0].upper()}"] = _fmt(agg[key], agg[f"{key}_std"], agg["seeds"])
    out["thesis test RMSE V / A"] = agg["published_key"].map(lambda k: _published(k, corpus, synthetic))
    return out.reset_index(drop=True)


def _numbers(agg: pd.DataFrame, corpus: str | None, synthetic: bool) -> pd.DataFrame:
    """A table as numbers (the CSV): `<metric>_mean` and `<metric>_std` over seeds (std empty for one
    seed), and the thesis's published test RMSE per target (empty where it has none; `thesis_note` says why)."""
    out = agg[["row", "window", "label", "arch", "seeds"]].rename(columns={"row": "model", "window": "window_s"})
    spread = agg[[f"{k}_std" for k in VALUES]].where(agg["seeds"].gt(1), axis=0)
    pairs = pd.concat([agg[VALUES].add_suffix("_mean"), spread], axis=1)
    out = pd.concat([out, pairs[[f"{k}{s}" for k in VALUES for s in ("_mean", "_std")]]], axis=1)
    published = pd.DataFrame(
        [PUBLISHED.get((corpus, k), {}) if corpus and not synthetic else {} for k in agg["published_key"]],
        index=agg.index,
    )
    for t in TARGETS:
        out[f"thesis_test_rmse_{t}"] = published.get(f"rmse_{t}", np.nan)
    notes = agg["published_key"].map(lambda k: _published(k, corpus, synthetic))
    out["thesis_note"] = notes.where(out["thesis_test_rmse_valence"].isna(), "")
    return out.reset_index(drop=True)


def _published(key: str, corpus: str | None, synthetic: bool) -> str:
    """The thesis's published test RMSE of the same cell on the same corpus, where there is one."""
    if synthetic:
        return SYNTHETIC_NOTE
    if corpus is None:
        return "not in the thesis"
    values = PUBLISHED.get((corpus, key), {})
    if not values:
        return "–"
    return " / ".join(f"{values[f'rmse_{t}']:.4g}" for t in TARGETS)


def _values(frame: pd.DataFrame, column: str) -> str:
    """The distinct values of `column` over the runs, in words ("not recorded" where none logged it)."""
    values = sorted(frame[column].dropna().astype(str).unique()) if column in frame else []
    return ", ".join(values) or "not recorded"


def _span(values: pd.Series) -> str:
    """ "3" where every value is 3, else "1–3"."""
    low, high = values.min(), values.max()
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


def _utc(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms.dropna(), unit="ms", utc=True)


def provenance(frame: pd.DataFrame, matrix: Matrix | None, counted: str, written: datetime) -> dict[str, str]:
    """Where the report's numbers come from, label -> value: the runs, the data, the training budget
    (a smoke run's few epochs show here), the versions and the dates."""
    ran = pd.to_numeric(frame.get("epochs_run", pd.Series(dtype=float)), errors="coerce").dropna()
    starts, ends = (_utc(frame.get(c, pd.Series(dtype=float))) for c in ("start_time", "end_time"))
    seeds = sorted(frame["seed"].unique())
    per_cell = frame.groupby(["table", "row", "window", "label", "arch"], dropna=False)["seed"].nunique()
    return {
        "parent run": (matrix.parent if matrix.parent else "none: every matrix run of the experiment")
        if matrix
        else "not given",
        "experiment": matrix.experiment if matrix else "not given",
        "tracking URI": matrix.uri if matrix else "not given",
        "cell runs": counted,
        "data": _values(frame, "data_name"),
        "data fingerprint": _values(frame, "data_fingerprint"),
        "split hash": _values(frame, "split_hash"),
        "epochs": f"at most {_values(frame, 'epochs')} per cell" + (f"; {_span(ran)} ran" if len(ran) else ""),
        "patience": _values(frame, "patience"),
        "seeds": f"{', '.join(map(str, seeds))} ({_span(per_cell)} per cell)",
        "emo version": f"{_values(frame, 'emo_version')} (the runs); {__version__} (this report)",
        "date": (
            f"runs from {starts.min():%Y-%m-%d %H:%M} to {ends.max():%Y-%m-%d %H:%M} UTC; "
            if len(starts) and len(ends)
            else ""
        )
        + f"report written {written:%Y-%m-%d %H:%M} UTC",
    }


def build(
    frame: pd.DataFrame,
    predictions=None,
    *,
    matrix: Matrix | None = None,
    resamples: int = 2000,
    seed: int = 0,
    written: datetime | None = None,
    groups: Grouping | dict | None = None,
) -> Report:
    """The report of a matrix's runs (`frame`, from `collect`; `matrix`: where they came from and what was
    expected); `predictions(run_id) -> DataFrame` gives a run's test predictions for the seed ensembles, the
    results per group and the paired bootstrap (None: none of them). `groups`: the dataset's groups
    (name -> {video -> value}, or a Grouping); None reads them from the runs' data folder."""
    synthetic = set(frame["data_source"]) == {"synthetic"}
    corpus = None if synthetic else corpus_of(frame)
    notes = []
    if len(set(frame["data_fingerprint"])) > 1 or len(set(frame["split_hash"])) > 1:
        notes.append("The runs used more than one dataset or split: cells are not comparable across them.")
    if synthetic:
        notes.append(
            "Synthetic data: these numbers say how emo's models behave on a generated corpus with a known "
            "process, not how they do on SEWA or AFEW-VA."
        )
    agg = aggregate(frame)
    order = {t: i for i, t in enumerate(TABLES)}
    agg = agg.sort_values(["table", "row", "window", "arch"], key=lambda s: s.map(order) if s.name == "table" else s)
    grouping = _grouping(frame, groups) if predictions is not None else Grouping()
    extras = per_cell(frame, predictions, grouping.groups) if predictions is not None else Extras()
    parts = {name: agg[agg["table"] == name] for name in TABLES if (agg["table"] == name).any()}
    best = agg.loc[agg.groupby("table", sort=False)["dev_rmse_mean"].idxmin()]  # single cells only, on dev
    shown = {name: _with_ensembles(part, extras.ensembles) for name, part in parts.items()}
    shown["best"] = parts["best"] = best.sort_values("table", key=lambda s: s.map(order))
    tables = {name: _table(part, corpus, synthetic) for name, part in shown.items()}
    numbers = {name: _numbers(part, corpus, synthetic) for name, part in shown.items()}
    for table in (tables, numbers):  # the best table names each row's family first
        table["best"].insert(0, "family", parts["best"]["table"].to_numpy())
    report = Report(tables=tables, numbers=numbers, aggregate=agg, notes=notes, corpus=corpus, synthetic=synthetic)
    report.ensembles, report.grouping = extras.ensembles, grouping
    if matrix is not None and matrix.expected is not None:
        status = coverage(matrix)
        report.expected, report.missing = len(status), status[status["status"] != "FINISHED"].reset_index(drop=True)
        if not report.missing.empty:
            report.notes.insert(
                0,
                f"Incomplete matrix: cell runs {report.counted}. These cells are left out of "
                f"every table; looked in {matrix.where}.",
            )
    report.provenance = provenance(frame, matrix, report.counted, written or datetime.now(UTC))
    _add_groups(report, extras, agg)
    _like_for_like(report, frame, parts["best"], predictions, resamples, seed)
    return report


def _grouping(frame: pd.DataFrame, groups: Grouping | dict | None) -> Grouping:
    """The groups to report on: given (a mapping or a Grouping), else the runs' data folder's."""
    if groups is None:
        return report_groups(frame)
    return groups if isinstance(groups, Grouping) else Grouping(dict(groups))


def _with_ensembles(part: pd.DataFrame, ensembles: pd.DataFrame) -> pd.DataFrame:
    """A table's rows with each cell's seed ensemble right after the cell."""
    if ensembles.empty:
        return part
    placed = ensembles.merge(part[CELL].assign(_at=np.arange(len(part), dtype=float)), on=CELL)
    if placed.empty:
        return part
    rows = as_rows(placed, list(part.columns)).assign(_at=placed["_at"].to_numpy() + 0.5)
    both = pd.concat([part.assign(_at=np.arange(len(part), dtype=float)), rows], ignore_index=True)
    return both.sort_values("_at", kind="stable").drop(columns="_at").reset_index(drop=True)


def _add_groups(report: Report, extras: Extras, agg: pd.DataFrame) -> None:
    """The table per group, where the groups said where they come from, and notes on what is missing."""
    grouping = report.grouping
    if extras.failed:  # an older matrix lacks every run's predictions: the first few say why
        more = f"; and {len(extras.failed) - 5} more" if len(extras.failed) > 5 else ""
        report.notes.append(
            f"No seed ensemble or results per group for {len(extras.failed)} cell(s): "
            f"{'; '.join(extras.failed[:5])}{more}."
        )
    if grouping.note:
        report.notes.append(grouping.note)
    if not grouping.groups:
        return
    report.provenance["groups"] = grouping.describe()
    for name, videos in extras.ungrouped.items():
        if videos:
            shown = ", ".join(sorted(videos)[:5]) + (" …" if len(videos) > 5 else "")
            report.notes.append(
                f"{len(videos)} test recording(s) have no {name}{' in ' + grouping.source if grouping.source else ''} "
                f"({shown}): their windows are in no {name} group, so the {name} groups add up to the other test "
                f"windows."
            )
    if extras.groups.empty:
        return
    at = agg[CELL].assign(_at=np.arange(len(agg)))
    rows = aggregate_groups(extras.groups, CELL).merge(at, on=CELL, how="left")
    rows = rows.sort_values(["_at", "ensemble", "group_name", "group"], kind="stable").reset_index(drop=True)
    report.groups = rows.drop(columns="_at")
    report.tables["groups"] = _group_table(report.groups)
    report.numbers["groups"] = _group_numbers(report.groups)


GROUP_VALUES = [f"test_{m}_{t}" for m in GROUP_METRICS for t in TARGETS]


def _group_names(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each row's model ("video avg", or "video avg, ensemble of 3 seeds") and group ("culture = German")."""
    model = [r if n == 0 else label(r, int(n)) for r, n in zip(rows["row"], rows["ensemble"])]
    return pd.Series(model, index=rows.index), rows["group_name"] + " = " + rows["group"].astype(str)


def _group_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The table per group as the page shows it: one row per cell (or ensemble) and group."""
    model, group = _group_names(rows)
    out = pd.DataFrame(
        {
            "family": rows["table"],
            "model": model,
            "window (s)": rows["window"].map("{:g}".format).where(rows["window"].notna(), "–"),
            "label": rows["label"],
            "arch": rows["arch"],
            "seeds": rows["seeds"].astype(int),
            "group": group,
            "recordings": rows["recordings"].map("{:g}".format),
            "windows": rows["windows"].map("{:g}".format),
        }
    )
    for key in GROUP_VALUES:
        _, m, t = key.split("_")
        out[f"test {SHORT[m]} {t[0].upper()}"] = _fmt(rows[key], rows[f"{key}_std"], rows["seeds"])
    return out


def _group_numbers(rows: pd.DataFrame) -> pd.DataFrame:
    """The table per group as numbers (the CSV): `<metric>_mean` and `<metric>_std` over seeds (std empty for
    one seed and for an ensemble), the group's name and value, its recordings and windows."""
    model, _ = _group_names(rows)
    out = rows[["table", "window", "label", "arch", "seeds", "group_name", "group", "recordings", "windows"]]
    out = out.rename(columns={"table": "family", "window": "window_s"})
    out.insert(1, "model", model)
    spread = rows[[f"{k}_std" for k in GROUP_VALUES]].where(rows["seeds"].gt(1), axis=0)
    pairs = pd.concat([rows[GROUP_VALUES].add_suffix("_mean"), spread], axis=1)
    return pd.concat([out, pairs[[f"{k}{s}" for k in GROUP_VALUES for s in ("_mean", "_std")]]], axis=1)


def _like_for_like(
    report: Report, frame: pd.DataFrame, best: pd.DataFrame, predictions, resamples: int, seed: int
) -> None:
    """Notes where the best fusion and video cells differ in label rule or window, and the comparisons of
    fusion with the video model of the same window and label and with the field's sequence model on the
    same windows (emo.report.comparison)."""
    picks = {r["table"]: r for _, r in best.iterrows()}
    fusion, video = picks.get("fusion"), picks.get("video")
    if fusion is None:
        return
    if video is not None and (fusion["label"] != video["label"] or fusion["window"] != video["window"]):
        report.notes.append(
            f"The best fusion cell ({fusion['row']}, {fusion['window']:g} s, {fusion['label']}-frame label) and the "
            f"best video cell ({video['row']}, {video['window']:g} s, {video['label']} label) predict different "
            f"targets; as in the thesis, comparing their numbers compares targets as much as models. The like-for-like "
            f"comparison below pairs fusion with a video model of the same window and label."
        )
    if predictions is None:
        return
    options = dict(resamples=resamples, seed=seed, groups=report.grouping.groups)
    found = compare(frame, fusion, predictions, **options) if video is not None else None
    if isinstance(found, str):
        report.notes.append(found)
    else:
        report.comparison = found
    field = compare_with_field(frame, fusion, predictions, **options)
    if isinstance(field, str):
        report.notes.append(field)
    else:
        report.field_comparison = field
