"""The thesis's tables rebuilt from tracked matrix runs: one row per cell, mean ± std over seeds.

`collect` reads the runs of a matrix (a parent run, or every matrix run of an experiment) into one
frame of final metrics; `tables` groups it into the thesis's tables (baselines, FFNN, video, audio,
fusion, each family's best); `paired_bootstrap` compares two models on the same test windows.
Model selection inside a table ("best") is by dev RMSE only; test numbers are reported, never used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.errors import ConfigError
from emo.matrix import CELLS, PUBLISHED, TABLES

METRICS = ("mae", "rmse", "ccc", "ccc_per_recording")
CORPORA = {"avec": "sewa", "sewa": "sewa", "afew-va": "afew", "afew": "afew"}
SYNTHETIC_NOTE = "synthetic data: not comparable"


def _client():
    import mlflow

    return mlflow.MlflowClient()


def matrix_runs(target: str) -> tuple[list, str | None]:
    """The cell runs of `target`: a matrix's parent run id, or an experiment name or id (all its matrix runs).
    Returns (runs, parent run id or None)."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        parent = client.get_run(target)
    except MlflowException:
        parent = None
    if parent is not None:
        runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{target}'",
                                  max_results=50000)
        return [r for r in runs if "emo.cell" in r.data.tags], target
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        try:
            experiment = client.get_experiment(target)
        except MlflowException:
            experiment = None
    if experiment is None:
        raise ConfigError(f"{target!r} is neither a run id nor an experiment name or id at the tracking store; pass "
                          f"the parent run id `emo reproduce` printed, or the experiment's name.")
    runs = client.search_runs([experiment.experiment_id], "tags.`emo.cell` != ''", max_results=50000)
    return list(runs), None


def _metrics(metrics: dict) -> dict:
    out = {}
    for split, prefix in (("dev", "best_dev/"), ("test", "test/")):
        for m in METRICS:
            for t in TARGETS:
                out[f"{split}_{m}_{t}"] = metrics.get(f"{prefix}{m}_{t}", np.nan)
    return out


def collect(runs: list) -> pd.DataFrame:
    """One row per finished cell run (baseline cells: one per algorithm) with its final metrics."""
    rows = []
    for run in runs:
        if run.info.status != "FINISHED":
            continue
        tags, params = run.data.tags, run.data.params
        cell = CELLS.get(tags["emo.cell"])
        base = {"cell": tags["emo.cell"], "table": tags.get("emo.table", cell.table if cell else "?"),
                "row": tags.get("emo.row", cell.row if cell else "?"), "arch": tags.get("emo.arch", "emo"),
                "seed": int(tags.get("emo.seed", 0)), "window": float(params.get("window", "nan"))
                if params.get("window", "auto") != "auto" else np.nan,
                "label": params.get("label", "mean"), "run_id": run.info.run_id,
                "source_run": tags.get("emo.reused_from", run.info.run_id),
                "published_key": cell.published_key if cell else tags["emo.cell"].split("/")[0],
                "data_fingerprint": params.get("data_fingerprint"), "data_source": params.get("data_source", "unknown"),
                "split_hash": params.get("split_hash")}
        if tags.get("emo.family") == "baseline":
            for child in _client().search_runs([run.info.experiment_id],
                                               f"tags.mlflow.parentRunId = '{base['source_run']}'"):
                algorithm = child.data.tags.get("emo.algorithm", child.info.run_name)
                rows.append({**base, "row": algorithm, "published_key": algorithm, "source_run": child.info.run_id,
                             **_metrics(child.data.metrics)})
        else:
            rows.append({**base, **_metrics(run.data.metrics)})
    if not rows:
        raise ConfigError("no finished matrix run found there: run `emo reproduce` first, or check the run id.")
    # an experiment may hold a run and its reused copy in a later matrix: one result, counted once
    return pd.DataFrame(rows).drop_duplicates(["cell", "seed", "row", "source_run"]).reset_index(drop=True)


def corpus_of(frame: pd.DataFrame) -> str | None:
    """"sewa" or "afew" when every run used that corpus (the thesis's values apply), else None."""
    sources = set(frame["data_source"])
    corpora = {CORPORA.get(s) for s in sources}
    return corpora.pop() if len(corpora) == 1 and None not in corpora else None


@dataclass
class Report:
    """The report's tables (name -> frame of formatted cells), notes, and the per-cell aggregates."""

    tables: dict[str, pd.DataFrame]
    aggregate: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    bootstrap: dict | None = None
    corpus: str | None = None
    synthetic: bool = False


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (table, row, window, label, arch): columns `<metric>` and `<metric>_std`."""
    keys = ["table", "row", "window", "label", "arch", "published_key"]
    values = [c for c in frame.columns if c.startswith(("dev_", "test_"))]
    grouped = frame.groupby(keys, dropna=False, sort=False)
    mean = grouped[values].mean()
    std = grouped[values].std(ddof=1).fillna(0.0).add_suffix("_std")
    out = pd.concat([mean, std, grouped.size().rename("seeds")], axis=1).reset_index()
    out["dev_rmse_mean"] = (out["dev_rmse_valence"] + out["dev_rmse_arousal"]) / 2
    return out


def _fmt(mean: float, std: float, seeds: int) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.4f}" if seeds < 2 else f"{mean:.4f} ± {std:.4f}"


COLUMNS = [("dev", "rmse"), ("test", "mae"), ("test", "rmse"), ("test", "ccc"), ("test", "ccc_per_recording")]
SHORT = {"mae": "MAE", "rmse": "RMSE", "ccc": "CCC", "ccc_per_recording": "CCC/rec"}


def _table(agg: pd.DataFrame, corpus: str | None, synthetic: bool) -> pd.DataFrame:
    rows = []
    for _, r in agg.iterrows():
        row = {"model": r["row"], "window (s)": "–" if np.isnan(r["window"]) else f"{r['window']:g}",
               "label": r["label"], "arch": r["arch"], "seeds": int(r["seeds"])}
        for split, m in COLUMNS:
            for t in TARGETS:
                key = f"{split}_{m}_{t}"
                row[f"{split} {SHORT[m]} {t[0].upper()}"] = _fmt(r[key], r[f"{key}_std"], r["seeds"])
        row["thesis test RMSE V / A"] = _published(r["published_key"], corpus, synthetic)
        rows.append(row)
    return pd.DataFrame(rows)


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


def build(frame: pd.DataFrame, predictions=None, *, resamples: int = 2000, seed: int = 0) -> Report:
    """The report of a matrix's runs; `predictions(run_id) -> DataFrame` gives a run's test predictions
    for the paired bootstrap (None: no bootstrap)."""
    synthetic = set(frame["data_source"]) == {"synthetic"}
    corpus = None if synthetic else corpus_of(frame)
    notes = []
    if len(set(frame["data_fingerprint"])) > 1 or len(set(frame["split_hash"])) > 1:
        notes.append("The runs used more than one dataset or split: cells are not comparable across them.")
    if synthetic:
        notes.append("Synthetic data: these numbers say how emo's models behave on a generated corpus with a known "
                     "process, not how they do on SEWA or AFEW-VA.")
    agg = aggregate(frame)
    order = {t: i for i, t in enumerate(TABLES)}
    agg = agg.sort_values(["table", "row", "window", "arch"], key=lambda s: s.map(order) if s.name == "table" else s)
    tables = {name: _table(agg[agg["table"] == name], corpus, synthetic) for name in TABLES
              if (agg["table"] == name).any()}
    best = agg.loc[agg.groupby("table", sort=False)["dev_rmse_mean"].idxmin()]
    best = best.sort_values("table", key=lambda s: s.map(order))
    tables["best"] = _table(best, corpus, synthetic).assign(family=best["table"].to_numpy())
    tables["best"] = tables["best"][["family", *[c for c in tables["best"].columns if c != "family"]]]
    report = Report(tables=tables, aggregate=agg, notes=notes, corpus=corpus, synthetic=synthetic)
    _like_for_like(report, frame, best, predictions, resamples, seed)
    return report


def _like_for_like(report: Report, frame: pd.DataFrame, best: pd.DataFrame, predictions, resamples: int,
                   seed: int) -> None:
    """Notes where the best fusion and video cells differ in label rule or window, and a paired
    bootstrap of fusion against the video model on the same windows with the same (last-frame) label."""
    picks = {r["table"]: r for _, r in best.iterrows()}
    fusion, video = picks.get("fusion"), picks.get("video")
    if fusion is None or video is None:
        return
    if fusion["label"] != video["label"] or fusion["window"] != video["window"]:
        report.notes.append(
            f"The best fusion cell ({fusion['row']}, {fusion['window']:g} s, {fusion['label']}-frame label) and the "
            f"best video cell ({video['row']}, {video['window']:g} s, {video['label']} label) predict different "
            f"targets; as in the thesis, comparing their numbers compares targets as much as models. The like-for-like "
            f"comparison below pairs fusion with a video model of the same window and label.")
    partner = frame[(frame["table"] == "video") & (frame["label"] == fusion["label"])
                    & (frame["window"] == fusion["window"]) & (frame["arch"] == fusion["arch"])]
    if partner.empty:
        partner = frame[(frame["table"] == "video") & (frame["label"] == fusion["label"])
                        & (frame["window"] == fusion["window"])]
    mine = frame[(frame["table"] == "fusion") & (frame["row"] == fusion["row"]) & (frame["window"] == fusion["window"])
                 & (frame["arch"] == fusion["arch"])]
    if partner.empty or predictions is None:
        report.notes.append("No video cell with the fusion cell's window and label ran, so there is no like-for-like "
                            "comparison (run the video table too).")
        return
    seeds = sorted(set(mine["seed"]) & set(partner["seed"]))
    a = mine[mine["seed"] == seeds[0]].iloc[0] if seeds else mine.iloc[0]
    b = partner[partner["seed"] == a["seed"]].iloc[0] if seeds else partner.iloc[0]
    result = paired_bootstrap(predictions(a["source_run"]), predictions(b["source_run"]), resamples=resamples,
                              seed=seed)
    result.update(fusion=f"{a['row']} {a['window']:g} s ({a['arch']})", video=f"{b['row']} {b['window']:g} s "
                  f"({b['arch']})", label=a["label"], seed=int(a["seed"]))
    report.bootstrap = result


def paired_bootstrap(a: pd.DataFrame, b: pd.DataFrame, *, resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """RMSE(a) − RMSE(b) on the test windows both predicted (mean over valence and arousal), with a
    bootstrap interval that resamples whole recordings (windows of one recording are not independent)."""
    keys = ["video_id", "start"]
    both = a.merge(b, on=keys, suffixes=("_a", "_b"))
    both = both[np.isfinite(both[[f"true_{t}_a" for t in TARGETS]]).all(axis=1)]
    if both.empty:
        raise ConfigError("the two models share no test window: they were trained on different data or splits.")
    err_a = np.stack([(both[f"{t}_a"] - both[f"true_{t}_a"]) ** 2 for t in TARGETS], axis=1)
    err_b = np.stack([(both[f"{t}_b"] - both[f"true_{t}_a"]) ** 2 for t in TARGETS], axis=1)
    groups, idx = np.unique(both["video_id"].to_numpy(), return_inverse=True)
    sums_a = np.zeros((len(groups), 2))
    sums_b = np.zeros((len(groups), 2))
    np.add.at(sums_a, idx, err_a)
    np.add.at(sums_b, idx, err_b)
    counts = np.bincount(idx, minlength=len(groups)).astype(float)

    def diff(weights: np.ndarray) -> np.ndarray:  # (R, G) recording multiplicities -> (R,) RMSE differences
        n = weights @ counts
        rmse_a = np.sqrt((weights @ sums_a) / n[:, None]).mean(axis=1)
        rmse_b = np.sqrt((weights @ sums_b) / n[:, None]).mean(axis=1)
        return rmse_a - rmse_b

    observed = float(diff(np.ones((1, len(groups))))[0])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(groups), size=(resamples, len(groups)))
    weights = np.zeros((resamples, len(groups)))
    np.add.at(weights, (np.repeat(np.arange(resamples), len(groups)), draws.ravel()), 1.0)
    boot = diff(weights)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": observed, "low": float(lo), "high": float(hi), "level": level, "windows": int(len(both)),
            "recordings": int(len(groups)), "resamples": resamples}
