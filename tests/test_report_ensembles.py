"""Seed ensembles in `emo report`: a cell run with several seeds also shows the ensemble of its seeds, the mean
of their test predictions on the windows every seed predicted, scored as a run scores itself; it has no dev
score, is never a family's best, and a report with one seed per cell is as it was.

The report's inputs are built by hand (rows as `collect` makes them, predictions as runs log them); every
expected number is computed here with numpy, not with emo's metrics.
"""

import numpy as np
import pandas as pd
import pytest

from emo.report.page import markdown, write
from emo.report.tables import build
from emo.studies.matrix import CELLS

TARGETS = ("valence", "arousal")
VIDEOS = [f"v{i}" for i in range(6)]
STARTS = np.arange(20.0)


def _rows(cell, seeds, *, row=None, dev=0.2, test=0.25) -> list[dict]:
    """Rows as `collect` makes them for `cell` (a baseline: `row` names the algorithm), one per seed."""
    name = row or cell.row
    return [
        {
            "cell": cell.name,
            "table": cell.table,
            "row": name,
            "arch": cell.arch,
            "seed": s,
            "window": np.nan if cell.window is None else cell.window,
            "label": "mean",
            "run_id": f"{cell.name}#{s}",
            "source_run": f"{cell.name}/{name}#{s}",
            "published_key": name if cell.table == "baseline" else cell.published_key,
            "data_source": "synthetic",
            "data_fingerprint": "f1",
            "split_hash": "h1",
            **{
                f"{split}_{m}_{t}": value + 0.01 * s
                for split, value in (("dev", dev), ("test", test))
                for m in ("mae", "rmse", "ccc", "ccc_per_recording")
                for t in TARGETS
            },
        }
        for s in seeds
    ]


def _truth() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    keys = pd.DataFrame({"video_id": np.repeat(VIDEOS, len(STARTS)), "start": np.tile(STARTS, len(VIDEOS))})
    keys["end"] = keys["start"] + 1.0
    return keys.assign(true_valence=rng.uniform(-1, 1, len(keys)), true_arousal=rng.uniform(-1, 1, len(keys)))


def _predicted(truth: pd.DataFrame, noise: float, seed: int) -> pd.DataFrame:
    """A run's predictions/test.parquet: the truth plus noise, in shuffled order (as a join must not care)."""
    rng = np.random.default_rng(seed)
    table = truth.assign(**{t: truth[f"true_{t}"] + rng.normal(0, noise, len(truth)) for t in TARGETS})
    return table.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _ccc(t: np.ndarray, p: np.ndarray) -> float:
    return 2 * np.mean((t - t.mean()) * (p - p.mean())) / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)


def _by_hand(tables: list[pd.DataFrame]) -> dict[str, float]:
    """The ensemble's test metrics, computed without emo: the windows in every table, their mean prediction."""
    keyed = [{(v, s): row for v, s, row in zip(t["video_id"], t["start"], t.itertuples())} for t in tables]
    common = sorted(set.intersection(*(set(k) for k in keyed)))
    out = {"windows": len(common)}
    for t in TARGETS:
        truth = np.array([getattr(keyed[0][k], f"true_{t}") for k in common])
        mean = np.array([np.mean([getattr(k_[k], t) for k_ in keyed]) for k in common])
        video = np.array([k[0] for k in common])
        out[f"test_mae_{t}"] = np.abs(mean - truth).mean()
        out[f"test_rmse_{t}"] = np.sqrt(((mean - truth) ** 2).mean())
        out[f"test_ccc_{t}"] = _ccc(truth, mean)
        out[f"test_ccc_per_recording_{t}"] = np.mean([_ccc(truth[video == v], mean[video == v]) for v in VIDEOS])
    return out


@pytest.fixture
def fusion_three_seeds_audio_one():
    """Fusion 1 at 1 s with three seeds (seed 1 missed the last windows of v5); audio at 1 s with one seed."""
    fusion, audio = CELLS["fusion1-1s/emo"], CELLS["audio-1s/emo"]
    frame = pd.DataFrame(_rows(fusion, (0, 1, 2), dev=0.1, test=0.3) + _rows(audio, (0,), dev=0.05, test=0.4))
    truth = _truth()
    tables = {f"{fusion.name}/{fusion.row}#{s}": _predicted(truth, 0.3, s) for s in (0, 1, 2)}
    seed1 = tables[f"{fusion.name}/{fusion.row}#1"]
    tables[f"{fusion.name}/{fusion.row}#1"] = seed1[~((seed1["video_id"] == "v5") & (seed1["start"] >= 15))]
    tables[f"{audio.name}/{audio.row}#0"] = _predicted(truth, 0.1, 9)
    return frame, tables


def test_a_cell_with_three_seeds_gets_the_ensemble_of_their_predictions_right_after_it(
    fusion_three_seeds_audio_one, tmp_path
):
    frame, tables = fusion_three_seeds_audio_one
    report = build(frame, predictions=tables.__getitem__)
    expected = _by_hand([tables[f"fusion1-1s/emo/fusion 1#{s}"] for s in (0, 1, 2)])
    assert expected["windows"] == 6 * 20 - 5  # the windows seed 1 did not predict are left out

    shown = report.tables["fusion"]
    assert shown["model"].tolist() == ["fusion 1", "fusion 1, ensemble of 3 seeds"]
    ensemble = shown.iloc[1]
    assert ensemble["seeds"] == 3 and ensemble["dev RMSE V"] == ensemble["dev RMSE A"] == "–"
    assert ensemble["test RMSE V"] == f"{expected['test_rmse_valence']:.4f}"  # one number, no "± std"
    assert ensemble["thesis test RMSE V / A"] == "synthetic data: not comparable"

    write(report, tmp_path, "report")
    csv = pd.read_csv(tmp_path / "tables" / "fusion.csv").set_index("model")
    row = csv.loc["fusion 1, ensemble of 3 seeds"]
    for key in [k for k in expected if k.startswith("test_")]:
        assert row[f"{key}_mean"] == pytest.approx(expected[key], rel=1e-9), key
        assert np.isnan(row[f"{key}_std"])
    assert np.isnan(row["dev_rmse_valence_mean"]) and row["seeds"] == 3
    assert csv.loc["fusion 1", "test_rmse_valence_mean"] == pytest.approx(np.mean([0.3, 0.31, 0.32]))


def test_an_ensemble_is_never_a_familys_best_and_one_seed_gets_none(fusion_three_seeds_audio_one):
    frame, tables = fusion_three_seeds_audio_one
    report = build(frame, predictions=tables.__getitem__)
    # the ensemble beats every seed on test, yet the best is the single cell: chosen on dev only
    single = frame.loc[frame["row"] == "fusion 1", "test_rmse_valence"].min()
    assert report.ensembles["test_rmse_valence"].item() < single
    assert report.tables["best"]["model"].tolist() == ["audio", "fusion 1"]
    assert report.tables["audio"]["model"].tolist() == ["audio"]  # one seed: no ensemble
    assert [f for f in report.aggregate["row"] if "ensemble" in f] == []  # the plots and the best read this


def test_each_baseline_algorithm_gets_its_own_ensemble():
    baseline = CELLS["baseline"]
    frame = pd.DataFrame(_rows(baseline, (0, 1), row="svr") + _rows(baseline, (0, 1), row="tree"))
    truth = _truth()
    tables = {
        f"baseline/{a}#{s}": _predicted(truth, noise, 10 * k + s)
        for k, (a, noise) in enumerate([("svr", 0.1), ("tree", 0.4)])
        for s in (0, 1)
    }
    report = build(frame, predictions=tables.__getitem__)
    assert report.tables["baseline"]["model"].tolist() == [
        "svr",
        "svr, ensemble of 2 seeds",
        "tree",
        "tree, ensemble of 2 seeds",
    ]
    for algorithm in ("svr", "tree"):
        expected = _by_hand([tables[f"baseline/{algorithm}#{s}"] for s in (0, 1)])
        got = report.ensembles.set_index("row").loc[algorithm]
        assert got["test_rmse_arousal"] == pytest.approx(expected["test_rmse_arousal"], rel=1e-9)
        assert got["test_ccc_per_recording_valence"] == pytest.approx(
            expected["test_ccc_per_recording_valence"], rel=1e-9
        )


def test_a_report_with_one_seed_per_cell_is_as_it_was(fusion_three_seeds_audio_one, tmp_path):
    frame, tables = fusion_three_seeds_audio_one
    one = frame[frame["seed"] == 0]
    before = build(one, written=pd.Timestamp("2030-01-01", tz="UTC"))
    after = build(one, predictions=tables.__getitem__, written=pd.Timestamp("2030-01-01", tz="UTC"))
    assert markdown(after, "r") == markdown(before, "r")
    assert list(after.numbers) == list(before.numbers)
    for name in before.numbers:
        pd.testing.assert_frame_equal(after.numbers[name], before.numbers[name])


def test_unreadable_predictions_or_seeds_on_other_data_cost_their_cell_its_ensemble_not_the_report(
    fusion_three_seeds_audio_one,
):
    frame, tables = fusion_three_seeds_audio_one
    gone = dict(tables)
    del gone["fusion1-1s/emo/fusion 1#2"]
    report = build(frame, predictions=gone.__getitem__)
    assert report.tables["fusion"]["model"].tolist() == ["fusion 1"]
    assert any("fusion: fusion 1 1 s (emo)" in n and "fusion1-1s/emo/fusion 1#2" in n for n in report.notes)

    other = dict(tables)  # seed 2 was scored against other labels: its windows are not the same windows
    other["fusion1-1s/emo/fusion 1#2"] = tables["fusion1-1s/emo/fusion 1#2"].assign(true_valence=0.5)
    report = build(frame, predictions=other.__getitem__)
    assert report.tables["fusion"]["model"].tolist() == ["fusion 1"]
    assert any("labels differ" in n for n in report.notes)
