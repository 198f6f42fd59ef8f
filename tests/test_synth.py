"""The synthetic dataset generator: layout, determinism, and the science it promises.

The files are read with pandas directly, as any contract-following reader would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emo.core.errors import ConfigError
from emo.data.synth import SCALES, SynthConfig, synthesize

RESERVED = {
    "video_id",
    "filename",
    "path",
    "timestamp",
    "name",
    "frameTime",
    "end",
    "frame",
    "valence",
    "arousal",
    "split",
}


# ---------------------------------------------------------------- helpers


def folder_id(paths: pd.Series) -> pd.Series:
    """The contract's default id for a frame path: the name of the folder holding the file."""
    return paths.astype(str).str.extract(r"(?P<id>[^/\\]+)[/\\][^/\\]+$")["id"]


def stem_id(filenames: pd.Series) -> pd.Series:
    """The contract's default id for an audio file name: its stem."""
    return filenames.astype(str).str.replace(r"\.[^.]*$", "", regex=True)


def load_video(folder: Path) -> pd.DataFrame:
    meta = json.loads((folder / "meta.json").read_text())
    path = folder / "video.csv"
    df = pd.read_csv(path) if path.exists() else pd.read_parquet(folder / "video.parquet")
    df["video_id"] = folder_id(df["path"])
    if "timestamp" not in df:
        df["timestamp"] = df["frame"] / meta["fps"]
    df[["valence", "arousal"]] /= meta["label_scale"]
    return df.sort_values(["video_id", "timestamp"], kind="stable").reset_index(drop=True)


def emb_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("emb_")]


def audio_feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in RESERVED and pd.api.types.is_numeric_dtype(df[c])]


def split_videos(ids, seed: int = 0, train: float = 0.7):
    ids = np.array(sorted(set(ids)))
    np.random.default_rng(seed).shuffle(ids)
    k = int(round(train * len(ids)))
    return set(ids[:k]), set(ids[k:])


def rmse(y, p) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


def r2(y, p) -> float:
    y, p = np.asarray(y), np.asarray(p)
    return 1.0 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)


def held_out_ridge(df: pd.DataFrame, features: list[str], target: str):
    """Ridge trained on 70% of the videos; (rmse, mean-predictor rmse, r2) on the others."""
    train_ids, test_ids = split_videos(df["video_id"])
    tr, te = df[df["video_id"].isin(train_ids)], df[df["video_id"].isin(test_ids)]
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(tr[features], tr[target])
    pred = model.predict(te[features])
    return rmse(te[target], pred), rmse(te[target], np.full(len(te), tr[target].mean())), r2(te[target], pred)


def with_window_labels(audio: pd.DataFrame, video: pd.DataFrame, window_s: float) -> pd.DataFrame:
    """The contract's audio label: mean of the frame labels in [timestamp, timestamp + window)."""
    audio = audio.copy()
    audio["video_id"] = stem_id(audio["filename"])
    audio = audio.sort_values(["video_id", "timestamp"]).reset_index(drop=True)
    for target in ("valence", "arousal"):
        audio[target] = np.nan
    for vid, rows in audio.groupby("video_id").groups.items():
        frames = video[video["video_id"] == vid]
        times = frames["timestamp"].to_numpy()
        starts = audio.loc[rows, "timestamp"].to_numpy()
        lo = np.searchsorted(times, starts - 1e-9)
        hi = np.searchsorted(times, starts + window_s - 1e-9)
        for target in ("valence", "arousal"):
            csum = np.concatenate([[0.0], np.cumsum(frames[target].to_numpy())])
            audio.loc[rows, target] = (csum[hi] - csum[lo]) / (hi - lo)
    return audio


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sewa(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("sewa") / "ds", SynthConfig())


@pytest.fixture(scope="module")
def sewa_video(sewa) -> pd.DataFrame:
    return load_video(sewa)


@pytest.fixture(scope="module")
def afew(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("afew") / "ds", SynthConfig(kind="afew"))


# ---------------------------------------------------------------- layout


def test_sewa_folder_has_the_video_table_four_audio_tables_and_meta(sewa, tmp_path):
    assert sorted(p.name for p in sewa.iterdir()) == [
        "audio_1s.csv",
        "audio_2s.csv",
        "audio_3s.csv",
        "audio_4s.csv",
        "meta.json",
        "video.csv",
    ]
    meta = json.loads((sewa / "meta.json").read_text())
    assert meta["name"] == "synthetic-sewa"
    assert meta["synthetic"] is True
    assert meta["label_scale"] == 1
    assert meta["fps"] == 5.0
    assert "synthetic" in meta["description"].lower() and "not sewa" in meta["description"].lower()
    # meta.json's generator record is a recipe: it rebuilds the very same files
    again = synthesize(tmp_path / "again", SynthConfig(**meta["generator"]))
    for name in ("video.csv", "audio_1s.csv", "audio_4s.csv"):
        assert (again / name).read_bytes() == (sewa / name).read_bytes(), name


def test_sewa_video_table_has_one_row_per_frame_with_contiguous_embeddings(sewa):
    raw = pd.read_csv(sewa / "video.csv")
    assert list(raw.columns[:4]) == ["path", "timestamp", "valence", "arousal"]
    assert list(raw.columns[4:]) == [f"emb_{j}" for j in range(32)]
    assert "frame" not in raw and "video_id" not in raw
    ids = folder_id(raw["path"])
    assert ids.notna().all() and ids.nunique() == 24 and ids.str.fullmatch(r"S\d{4}").all()
    assert raw.groupby(ids).size().eq(200).all()  # 40 s at 5 fps
    assert not raw.duplicated(["path"]).any()
    by_video = raw.assign(video_id=ids).sort_values(["video_id", "timestamp"])
    steps = by_video.groupby("video_id")["timestamp"].diff().dropna()
    np.testing.assert_allclose(steps, 0.2, atol=1e-6)
    assert by_video["timestamp"].min() == 0.0 and by_video["timestamp"].max() == pytest.approx(39.8)
    # rows come shuffled (the contract allows any order; readers must sort)
    assert not raw["path"].is_monotonic_increasing
    assert raw[["valence", "arousal"]].abs().max().max() <= 1.0
    assert np.isfinite(raw.filter(like="emb_").to_numpy()).all()


@pytest.mark.parametrize("window_s", [1, 2, 3, 4])
def test_sewa_audio_tables_have_a_row_every_hop_over_whole_windows(sewa, window_s):
    audio = pd.read_csv(sewa / f"audio_{window_s}s.csv")
    assert list(audio.columns[:2]) == ["filename", "timestamp"]
    assert "valence" not in audio and "arousal" not in audio
    features = audio_feature_columns(audio)
    assert len(features) == 16 and not any(c.startswith("emb_") for c in features)
    assert {"loudness_sma3_amean", "F0semitoneFrom27.5Hz_sma3nz_amean", "mfcc1_sma3_amean"} <= set(features)
    ids = stem_id(audio["filename"])
    assert set(ids) == {f"S{i:04d}" for i in range(1, 25)}
    # windows start every 0.5 s and end at or before the video's end (40 s)
    per_video = 2 * (40 - window_s) + 1
    assert audio.groupby(ids).size().eq(per_video).all()
    assert audio["timestamp"].min() == 0.0
    assert audio["timestamp"].max() + window_s <= 40.0
    np.testing.assert_allclose(np.sort(audio["timestamp"].unique()), np.arange(per_video) * 0.5)
    assert np.isfinite(audio[features].to_numpy()).all()


def test_afew_folder_is_video_only_with_labels_on_the_ten_point_scale(afew):
    assert sorted(p.name for p in afew.iterdir()) == ["meta.json", "video.csv"]
    meta = json.loads((afew / "meta.json").read_text())
    assert meta["name"] == "synthetic-afew-va"
    assert meta["synthetic"] is True and meta["label_scale"] == 10
    assert meta["noise_floor"] == {"valence_rmse": 0.05, "arousal_rmse": 0.05}
    raw = pd.read_csv(afew / "video.csv")
    assert "timestamp" not in raw and "frame" in raw
    assert list(raw.columns[:4]) == ["path", "frame", "valence", "arousal"]
    labels = raw[["valence", "arousal"]].abs()
    assert labels.max().max() <= 10.0
    assert (labels > 1.0).any(axis=1).mean() > 0.5  # clearly not on the [-1, 1] scale
    ids = folder_id(raw["path"])
    assert ids.nunique() == 24 and ids.str.fullmatch(r"\d{3}").all()
    frames = raw.assign(video_id=ids).groupby("video_id")["frame"]
    assert frames.min().eq(0).all() and frames.max().eq(199).all() and frames.nunique().eq(200).all()


def test_parquet_tables_hold_float32_features(tmp_path):
    folder = synthesize(tmp_path / "pq", SynthConfig(videos=3, duration_s=8.0, fmt="parquet"))
    assert sorted(p.name for p in folder.iterdir()) == [
        "audio_1s.parquet",
        "audio_2s.parquet",
        "audio_3s.parquet",
        "audio_4s.parquet",
        "meta.json",
        "video.parquet",
    ]
    video = pd.read_parquet(folder / "video.parquet")
    assert len(video) == 3 * 40
    assert (video.filter(like="emb_").dtypes == np.float32).all()
    audio = pd.read_parquet(folder / "audio_2s.parquet")
    assert (audio[audio_feature_columns(audio)].dtypes == np.float32).all()
    # the same config in csv holds the same numbers
    csv = synthesize(tmp_path / "csv", SynthConfig(videos=3, duration_s=8.0, fmt="csv"))
    as_csv = pd.read_csv(csv / "video.csv")
    assert list(as_csv["path"]) == list(video["path"])
    np.testing.assert_allclose(as_csv["emb_5"], video["emb_5"], rtol=1e-6, atol=1e-6)


def test_resynthesizing_replaces_other_formats_and_a_stale_split(tmp_path):
    folder = synthesize(tmp_path / "ds", SynthConfig(videos=3, duration_s=8.0, fmt="csv"))
    (folder / "split.json").write_text('{"train": ["gone"]}')
    synthesize(folder, SynthConfig(videos=3, duration_s=8.0, fmt="parquet"))
    assert not (folder / "split.json").exists()
    assert not any(p.suffix == ".csv" for p in folder.iterdir())


def test_presets_and_invalid_configs():
    assert SCALES["sewa"] == {"videos": 540, "duration_s": 300.0, "dim": 512, "audio_dim": 88, "fmt": "parquet"}
    assert SynthConfig(**SCALES["test"]) == SynthConfig()
    for bad in ({"kind": "recola"}, {"fmt": "xlsx"}, {"videos": 0}, {"fps": -1.0}, {"duration_s": 3.0}):
        with pytest.raises(ConfigError):
            SynthConfig(**bad)


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    small = {"videos": 4, "duration_s": 10.0}
    for fmt in ("csv", "parquet"):
        a = synthesize(tmp_path / f"a-{fmt}", SynthConfig(seed=7, fmt=fmt, **small))
        b = synthesize(tmp_path / f"b-{fmt}", SynthConfig(seed=7, fmt=fmt, **small))
        c = synthesize(tmp_path / f"c-{fmt}", SynthConfig(seed=8, fmt=fmt, **small))
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir()) and len(names) == 6
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        for name in names:
            if name != "meta.json":
                assert (a / name).read_bytes() != (c / name).read_bytes(), name


# ---------------------------------------------------------------- the science


def test_labels_carry_the_declared_rater_noise(sewa, sewa_video):
    declared = json.loads((sewa / "meta.json").read_text())["noise_floor"]  # what the folder promises
    # second differences of a label remove the slow latent and leave 6 sigma^2 of noise
    d2 = sewa_video.groupby("video_id")[["valence", "arousal"]].diff().groupby(sewa_video["video_id"]).diff()
    estimate = d2.std() / np.sqrt(6)
    assert estimate["valence"] == pytest.approx(declared["valence_rmse"], abs=0.012)
    assert estimate["arousal"] == pytest.approx(declared["arousal_rmse"], abs=0.012)
    # the latent itself moves: labels are not just noise
    assert sewa_video.groupby("video_id")["valence"].std().mean() > 0.15


def test_face_embeddings_predict_valence_far_better_than_the_mean_but_not_beyond_the_noise_floor(sewa_video):
    err, mean_err, _ = held_out_ridge(sewa_video, emb_columns(sewa_video), "valence")
    assert err <= 0.6 * mean_err
    assert err >= 0.05 - 0.01


def test_the_face_carries_mostly_valence(sewa_video):
    *_, r2_valence = held_out_ridge(sewa_video, emb_columns(sewa_video), "valence")
    *_, r2_arousal = held_out_ridge(sewa_video, emb_columns(sewa_video), "arousal")
    assert r2_valence > 0.7
    assert r2_valence > r2_arousal + 0.25


@pytest.mark.parametrize("window_s", [1, 4])
def test_the_voice_carries_arousal(sewa, sewa_video, window_s):
    audio = with_window_labels(pd.read_csv(sewa / f"audio_{window_s}s.csv"), sewa_video, window_s)
    features = audio_feature_columns(audio.drop(columns=["valence", "arousal"]))
    err_a, mean_a, r2_a = held_out_ridge(audio, features, "arousal")
    *_, r2_v = held_out_ridge(audio, features, "valence")
    assert err_a <= 0.8 * mean_a
    assert r2_a > r2_v + 0.2


def test_silent_stretches_have_low_loudness_and_carry_no_affect(sewa, sewa_video):
    audio = with_window_labels(pd.read_csv(sewa / "audio_1s.csv"), sewa_video, 1)
    loud = audio["loudness_sma3_amean"]
    silent, speech = loud < 0.15, loud > 0.5
    assert 0.1 < silent.mean() < 0.45  # about a quarter of the time is silence
    assert loud[silent].median() == pytest.approx(0.06, abs=0.03)  # the silence level
    assert loud[speech].median() > 0.5
    # in speech, loudness rises with arousal; in silence it says nothing about it
    assert np.corrcoef(loud[speech], audio.loc[speech, "arousal"])[0, 1] > 0.5
    assert abs(np.corrcoef(loud[silent], audio.loc[silent, "arousal"])[0, 1]) < 0.2
