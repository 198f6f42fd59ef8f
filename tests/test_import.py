"""`emo data import FORMAT`: the corpora as distributed become dataset folders every command reads.

Each format is imported from files the tests write in its published layout, and from the real example
files in ../shared/fixtures (skipped, saying so, only where that folder is absent). The alignment
property: labels that are a known function of time and features that encode their own time come out
aligned on the grid, whatever the rates and units, for every format.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emo.cli import main
from emo.data.dataset import load_dataset

from corpus_files import (
    FIXTURES,
    afew_clip,
    affwild2_annotation,
    avec_features,
    avec_labels,
    muse_challenge,
    muse_features,
    muse_raw,
    opensmile_arff,
    recola_gold,
)

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"the shared corpus fixtures are not at {FIXTURES}")

SPAN = 20.0  # seconds of every test recording


def ramp(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels that name their own time: valence rises from -0.9 to 0.9 over SPAN, arousal falls."""
    v = -0.9 + 1.8 * t / SPAN
    return v, -v


def label_time(valence: np.ndarray) -> np.ndarray:
    return (valence + 0.9) * SPAN / 1.8


def run(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def imported(dest: Path) -> pd.DataFrame:
    return (
        pd.read_parquet(dest / "video.parquet")
        if (dest / "video.parquet").exists()
        else pd.read_csv(dest / "video.csv")
    )


# --- writers of one small corpus per format, features encoding time in emb_0 ---------------------------


def _clock(rate: float, start: float = 0.0, span: float = SPAN) -> np.ndarray:
    return start + np.arange(int(round((span - start) * rate)) + 1) / rate


def write_avec(
    root: Path,
    feature_rate: float = 10.0,
    label_rate: float = 10.0,
    n: int = 4,
    culture: str = "DE_",
    label_header: bool = True,
) -> list[str]:
    for part in ("Train", "Devel"):
        for k in range(1, n + 1):
            name = f"{part}_{culture}{k:02d}"
            lt = _clock(label_rate)
            avec_labels(root / "labels" / f"{name}.csv", name, lt, *ramp(lt), header=label_header)
            ft = _clock(feature_rate)
            avec_features(root / "video" / f"{name}.csv", name, ft, np.column_stack([ft, np.sin(ft + k)]))
            avec_features(root / "audio" / f"{name}.csv", name, ft, np.column_stack([ft]), header=True)
    ft = _clock(feature_rate)
    avec_features(root / "video" / "Test_DE_01.csv", "Test_DE_01", ft, np.column_stack([ft, np.cos(ft)]))
    avec_features(root / "audio" / "Test_DE_01.csv", "Test_DE_01", ft, np.column_stack([ft]), header=True)
    return ["avec", "--labels", str(root / "labels"), "--video", str(root / "video"), "--audio", f"{root / 'audio'}:4"]


def write_recola(root: Path, feature_rate: float = 25.0, label_rate: float = 25.0) -> list[str]:
    for name in ("train_1", "train_2", "train_3", "dev_1", "dev_2"):
        lt = _clock(label_rate)
        v, a = ramp(lt)
        recola_gold(root / "gs" / "valence" / f"{name}.arff", name, lt, v)
        recola_gold(root / "gs" / "arousal" / f"{name}.arff", name, lt, a)
        ft = _clock(feature_rate)
        opensmile_arff(root / "video" / f"{name}.arff", ft, np.column_stack([ft, ft * 0.5]))
    return ["recola", "--labels", str(root / "gs"), "--video", str(root / "video")]


def write_muse(root: Path, feature_rate: float = 10.0, label_rate: float = 2.0, raw: bool = False) -> list[str]:
    ids = ["11", "32", "47", "50"]
    for vid in ids:
        lt = _clock(label_rate)
        v, a = ramp(lt)
        for dim, values in (("valence", v), ("arousal", a)):
            if raw:  # three annotators around the gold value: their mean is it
                muse_raw(root / "labels" / dim / f"{vid}.csv", lt, values[:, None] + np.array([-0.05, 0.0, 0.05]))
            else:
                muse_challenge(root / "labels" / dim / f"{vid}.csv", lt * 1000, values)
        ft = _clock(feature_rate)
        muse_features(root / "video" / f"{vid}.csv", ft * 1000, np.column_stack([ft, np.sin(ft)]))
    (root / "partition.csv").write_text("Id,Partition\n11,train\n32,train\n47,train\n50,devel\n")
    return [
        "muse",
        "--labels",
        str(root / "labels"),
        "--video",
        str(root / "video"),
        "--partition",
        str(root / "partition.csv"),
    ]


def write_affwild2(root: Path, fps: int = 30, unlabelled: slice = slice(0, 0)) -> list[str]:
    rows = []
    for vid, part in (
        ("1-30-1280x720", "Training_Set"),
        ("2-30-640x360_left", "Training_Set"),
        ("2-30-640x360_right", "Training_Set"),
        ("3-30-640x360", "Validation_Set"),
    ):
        frames = int(SPAN * fps) + 1
        t = np.arange(frames) / fps
        v, a = ramp(t)
        v[unlabelled], a[unlabelled] = -5, -5
        affwild2_annotation(root / "annotations" / "VA_Set" / part / f"{vid}.txt", v, a)
        rows.append(pd.DataFrame({"video_id": vid, "frame": np.arange(frames), "emb_0": t, "emb_1": np.cos(t)}))
    pd.concat(rows).to_parquet(root / "embeddings.parquet")
    return ["affwild2", "--annotations", str(root / "annotations"), "--video", str(root / "embeddings.parquet")]


def write_afew(root: Path, source_fps: float = 25.0, frames: int | dict[str, int] = 60) -> list[str]:
    """Four AFEW-VA clips of `frames` frames each (or `frames[clip]`)."""
    rng = np.random.default_rng(0)
    face = rng.normal(size=(68, 2)) * 20
    rows = []
    for clip in ("001", "002", "003", "004"):
        n = frames[clip] if isinstance(frames, dict) else frames
        t = np.arange(1, n + 1) / source_fps
        v, a = ramp(t)
        afew_clip(
            root / "clips" / "01",
            clip,
            {k: (round(v[k - 1] * 10), round(a[k - 1] * 10), face * (1 + k / 100) + 300) for k in range(1, n + 1)},
        )
        rows.append(pd.DataFrame({"video_id": clip, "frame": np.arange(1, n + 1), "emb_0": t}))
    pd.concat(rows).to_csv(root / "embeddings.csv", index=False)
    return ["afew-va", "--clips", str(root / "clips"), "--video", str(root / "embeddings.csv")]


def write_csv(root: Path, label_unit: float = 1.0, feature_unit: float = 1.0) -> list[str]:
    """`import csv`: one label table (10 Hz) and one feature table (10 Hz); times × the given units."""
    labels, features = [], []
    for vid in ("0041", "0042", "0043", "0044"):
        t = _clock(10.0)
        v, a = ramp(t)
        labels.append(pd.DataFrame({"video_id": vid, "timestamp": t * label_unit, "valence": v, "arousal": a}))
        features.append(pd.DataFrame({"video_id": vid, "timestamp": t * feature_unit, "emb_0": t, "emb_1": np.sin(t)}))
    root.mkdir(parents=True, exist_ok=True)
    pd.concat(labels).to_csv(root / "labels.csv", index=False)
    pd.concat(features).to_parquet(root / "video.parquet")
    return ["csv", "--labels", str(root / "labels.csv"), "--video", str(root / "video.parquet")]


WRITERS = {
    "avec": write_avec,
    "recola": write_recola,
    "muse": write_muse,
    "muse-raw": lambda root: write_muse(root, raw=True),
    "affwild2": write_affwild2,
    "csv": write_csv,
}


# --- alignment, for every format -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_labels_and_features_meet_on_the_grid_for_every_format(fmt, tmp_path):
    args = WRITERS[fmt](tmp_path / "src")
    result = run(["data", "import", *args, str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    df = imported(tmp_path / "ds")
    labelled = df.dropna(subset=["valence"])
    assert len(labelled) > 0.9 * SPAN * 5 * df["video_id"].nunique() * 0.5
    # the label describes the same instants the features describe (emb_0 is their mean time)
    np.testing.assert_allclose(label_time(labelled["valence"].to_numpy()), labelled["emb_0"], atol=2e-3)
    np.testing.assert_allclose(labelled["arousal"], -labelled["valence"], atol=1e-5)
    # and both sit within one step of the grid time: seconds everywhere, at 5 fps
    steps = df["timestamp"].to_numpy() * 5
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    assert ((df["emb_0"] - df["timestamp"]).between(-1e-6, 0.2)).all()
    assert df["timestamp"].max() <= SPAN + 1e-9


def test_afew_va_frame_numbers_become_seconds_at_the_source_rate(tmp_path):
    args = write_afew(tmp_path / "src")
    assert run(["data", "import", *args, str(tmp_path / "ds")]).exit_code == 0
    df = imported(tmp_path / "ds")
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["label_scale"] == 10 and meta["source_format"] == "afew-va"
    # labels were rounded to AFEW-VA's integers; they stay in the corpus's own scale on disk
    assert 5 < df["valence"].abs().max() <= 10
    assert ((df["emb_0"] - df["timestamp"]).between(0, 0.2)).all()
    assert df.groupby("video_id")["timestamp"].max().max() == pytest.approx(2.4)


@pytest.mark.parametrize("feature_rate,label_rate", [(10, 10), (25, 10), (100, 25), (5, 2)])
def test_alignment_holds_at_other_rates(feature_rate, label_rate, tmp_path):
    args = write_avec(tmp_path / "src", feature_rate=feature_rate, label_rate=label_rate, n=3)
    assert run(["data", "import", *args, str(tmp_path / "ds")]).exit_code == 0
    labelled = imported(tmp_path / "ds").dropna(subset=["valence"])
    np.testing.assert_allclose(label_time(labelled["valence"].to_numpy()), labelled["emb_0"], atol=2e-3)


def test_features_sparser_than_the_grid_are_refused_with_the_rate_to_use(tmp_path):
    args = write_avec(tmp_path / "src", feature_rate=2, n=3)
    result = CliRunner().invoke(main, ["data", "import", *args, str(tmp_path / "ds")])
    assert result.exit_code == 2 and "--fps 2" in result.output and not (tmp_path / "ds").exists()


# --- what each importer keeps --------------------------------------------------------------------------


def test_avec_partitions_cultures_and_unlabelled_test_recordings(tmp_path):
    args = write_avec(tmp_path / "src")
    result = run(["data", "import", *args, str(tmp_path / "ds")])
    assert result.exit_code == 0
    out = result.output
    assert "partition dev" in out and "partition train" in out and "without labels" in out and "Test_DE_01" in out
    split = json.loads((tmp_path / "ds" / "split.json").read_text())
    assert split["test"] == [f"Devel_DE_{k:02d}" for k in range(1, 5)]  # the official dev set, reported on
    assert len(split["dev"]) == 1 and split["dev"][0].startswith("Train_")  # carved from training
    assert "no labels" in split["rule"]
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["groups"]["culture"]["Train_DE_01"] == "DE" and meta["unlabelled_recordings"] == ["Test_DE_01"]
    # the unlabelled test recording is kept apart, never in the tables that train and score
    assert "Test_DE_01" not in set(imported(tmp_path / "ds")["video_id"])
    assert set(pd.read_parquet(tmp_path / "ds" / "unlabelled" / "video.parquet")["video_id"]) == {"Test_DE_01"}
    audio = pd.read_parquet(tmp_path / "ds" / "audio_4s.parquet")
    assert list(audio.columns[:3]) == ["video_id", "timestamp", "feat0"]
    ds = load_dataset(tmp_path / "ds")
    assert ds.fps == 5 and ds.audio(4).dim == 1 and ds.split.source.endswith("split.json")


def test_avec_2017_names_and_2018_headerless_label_files(tmp_path):
    args = write_avec(tmp_path / "src", culture="", label_header=False, n=3)  # Train_01.csv, no header
    result = run(["data", "import", *args, str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    df = imported(tmp_path / "ds")
    assert "Train_01" in set(df["video_id"]) and len(df.dropna(subset=["valence"])) == 6 * 101
    np.testing.assert_allclose(label_time(df.dropna()["valence"].to_numpy()), df.dropna()["emb_0"], atol=2e-3)


def test_label_delay_pairs_the_features_at_t_with_the_label_at_t_plus_delay(tmp_path):
    args = write_avec(tmp_path / "src", n=3)
    run(["data", "import", *args, str(tmp_path / "ds")])
    plain = load_dataset(tmp_path / "ds")
    late = load_dataset(tmp_path / "ds", label_delay=2.0)
    v0, v2 = plain.video, late.video
    both = v0.labelled & v2.labelled
    # a ramp's label 2 s later, scaled to [-1, 1] (label_scale 1); within half a feature step (0.05 s)
    # at the end, whose last grid step holds one feature row and so reads its label at 20.0 s, not 20.05 s
    np.testing.assert_allclose(v2.labels[both, 0] - v0.labels[both, 0], 1.8 * 2.0 / SPAN, atol=1.01 * 1.8 * 0.05 / SPAN)
    # the last 2 s of each recording have no label 2 s later
    assert v0.labelled.sum() - v2.labelled.sum() == 10 * len(v0.video_ids)


def test_muse_challenge_labels_are_milliseconds_and_raw_ratings_seconds(tmp_path):
    for raw, name in ((False, "challenge"), (True, "raw")):
        args = write_muse(tmp_path / name, raw=raw)
        assert run(["data", "import", *args, str(tmp_path / f"ds-{name}")]).exit_code == 0
    a, b = imported(tmp_path / "ds-challenge"), imported(tmp_path / "ds-raw")
    assert a["timestamp"].max() == pytest.approx(SPAN) and b["timestamp"].max() == pytest.approx(SPAN)
    np.testing.assert_allclose(a["valence"], b["valence"], atol=1e-4)  # the annotators' mean is the gold value
    split = json.loads((tmp_path / "ds-raw" / "split.json").read_text())
    assert split["test"] == ["50"] and len(split["train"]) + len(split["dev"]) == 3


def test_affwild2_minus_five_frames_never_become_labels(tmp_path):
    args = write_affwild2(tmp_path / "src", unlabelled=slice(90, 180))  # seconds 3-6 not annotated
    assert run(["data", "import", *args, str(tmp_path / "ds")]).exit_code == 0
    df = imported(tmp_path / "ds")
    assert set(df["video_id"]) == {"1-30-1280x720", "2-30-640x360_left", "2-30-640x360_right", "3-30-640x360"}
    unlabelled = df[df["valence"].isna()]
    assert len(unlabelled) == 4 * 15  # 3 s at 5 fps per video, frames kept as context
    assert unlabelled["timestamp"].between(2.99, 6.0).all()
    assert df["valence"].min() >= -1  # no -5 anywhere
    ds = load_dataset(tmp_path / "ds")
    assert int((~ds.video.labelled).sum()) == 60


def test_recola_gold_standards_at_25_hz_per_dimension(tmp_path):
    args = write_recola(tmp_path / "src")
    result = run(["data", "import", *args, str(tmp_path / "ds")])
    assert result.exit_code == 0
    df = imported(tmp_path / "ds")
    assert df.groupby("video_id").size().tolist() == [101] * 5  # 0 … 20 s at 5 fps
    split = json.loads((tmp_path / "ds" / "split.json").read_text())
    assert split["test"] == ["dev_1", "dev_2"]


def test_imported_short_clips_train_a_video_model_on_padded_windows(tmp_path):
    # clip 001 (1.2 s, in the train split) is shorter than the 4 s window; the others are 4.4 s
    args = write_afew(tmp_path / "src", frames={"001": 30, "002": 110, "003": 110, "004": 110})
    run(["data", "import", *args[:3], str(tmp_path / "ds")])  # landmarks as features
    from emo.data.inputs import build_inputs

    ds = load_dataset(tmp_path / "ds")
    assert "001" in ds.split.train and "003" in ds.split.train
    inputs = build_inputs(ds, "window", window_s=4.0)
    assert inputs.sizes() == {"train": 1 + 4, "dev": 4, "test": 4}  # 23 steps: 4 windows of 20; 001: one padded
    padded = int(np.flatnonzero(inputs.index["train"].video_id == "001")[0])
    batch = inputs.samples["train"].__getitems__([padded])
    assert batch.video.shape[1] == 20 and batch.video_mask.sum().item() == 7  # frames 1-30 span 7 steps
    assert inputs.dims["video_mask"] == 1 and inputs.notes["padded_windows"] == 1
    result = CliRunner().invoke(
        main, ["train", "video", "--data", str(tmp_path / "ds"), "--window", "4", "--epochs", "1", "--no-track"]
    )
    assert result.exit_code == 0, result.output


# --- the real example files ------------------------------------------------------------------------------


@needs_fixtures
def test_fixture_afew_va_clips_import_with_their_missing_frames_as_gaps(tmp_path):
    result = run(["data", "import", "afew-va", "--clips", str(FIXTURES / "afew_va"), str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert "4 recordings" in result.output
    df = imported(tmp_path / "ds")
    assert sorted(df["video_id"].unique()) == ["video1", "video2", "video3", "video4"]
    assert [c for c in df.columns if c.startswith("emb_")][-1] == "emb_135"  # 68 landmarks × (x, y)
    body = json.loads((FIXTURES / "afew_va" / "video2" / "video2.json").read_text())
    first = df[df["video_id"] == "video2"].iloc[0]
    assert first["valence"] == body["frames"]["00003"]["valence"] == 2.0  # the step's middle frame
    # landmarks are free of the face's position and size: centred, unit RMS radius
    xy = first[[f"emb_{j}" for j in range(136)]].to_numpy(float).reshape(68, 2)
    assert np.abs(xy.mean(axis=0)).max() < 1e-5 and np.sqrt((xy**2).sum(axis=1).mean()) == pytest.approx(1, abs=1e-3)
    check = run(["data", "check", str(tmp_path / "ds")])
    assert check.exit_code == 0 and "video4" in check.output


@needs_fixtures
def test_fixture_sewa_labels_import_as_avec_with_their_partition_and_culture(tmp_path):
    labels, video = tmp_path / "labels", tmp_path / "video"
    labels.mkdir()
    for src in sorted((FIXTURES / "sewa_avec2019_ces" / "labels_devel").glob("*.csv")):
        shutil.copy(src, labels / src.name)
        for k in range(1, 4):  # training recordings: the same files under training names
            shutil.copy(src, labels / src.name.replace("Devel", "Train").replace(".csv", f"{k}.csv"))
    for path in labels.glob("*.csv"):
        t = pd.read_csv(path, sep=";")["timestamp"].to_numpy()
        avec_features(video / path.name, path.stem, t, np.column_stack([t, np.sin(t)]))
    result = run(["data", "import", "avec", "--labels", str(labels), "--video", str(video), str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    df = imported(tmp_path / "ds")
    raw = pd.read_csv(FIXTURES / "sewa_avec2019_ces" / "labels_devel" / "Devel_DE_01.csv", sep=";")
    rec = df[df["video_id"] == "Devel_DE_01"]
    assert len(rec) == int(np.ceil(len(raw) / 2))  # 10 Hz rows averaged into 5 fps steps
    # a step's label is the label at the mean time of its two feature rows: the mean of the two labels
    np.testing.assert_allclose(
        rec["arousal"].to_numpy()[:50], raw["arousal"].to_numpy()[:100].reshape(50, 2).mean(axis=1), atol=1e-5
    )
    assert (
        "partition dev" in result.output
        and "culture" in json.loads((tmp_path / "ds" / "meta.json").read_text())["groups"]
    )


@needs_fixtures
def test_fixture_muse_processed_and_raw_arousal_share_one_time_axis(tmp_path):
    src = FIXTURES / "muse_car_toolbox_examples"
    for shape in ("processed", "raw"):
        labels = tmp_path / shape / "labels"
        for dim in ("arousal", "valence"):
            (labels / dim).mkdir(parents=True)
            for vid in ("11", "32", "47"):
                shutil.copy(src / shape / "arousal" / "11.csv", labels / dim / f"{vid}.csv")
        t = np.arange(0, 310, 0.1)
        for vid in ("11", "32", "47"):
            muse_features(tmp_path / shape / "video" / f"{vid}.csv", t * 1000, np.column_stack([t]))
        result = run(
            [
                "data",
                "import",
                "muse",
                "--labels",
                str(labels),
                "--video",
                str(tmp_path / shape / "video"),
                "--partition",
                str(src / "metadata" / "partition.csv"),
                str(tmp_path / f"ds-{shape}"),
            ]
        )
        assert result.exit_code == 0, result.output
    proc, raw = imported(tmp_path / "ds-processed"), imported(tmp_path / "ds-raw")
    for df, first, last in ((proc, 0.0, 308.5), (raw, 0.5, 309.0)):  # processed starts 0.5 s before raw
        lab = df[(df["video_id"] == "11")].dropna(subset=["arousal"])
        assert lab["emb_0"].min() >= first - 1e-6 and lab["emb_0"].max() <= last + 1e-6
    gold = pd.read_csv(src / "processed" / "arousal" / "11.csv")
    at_49 = proc[(proc["video_id"] == "11") & (proc["timestamp"] == 49.0)]["arousal"].iloc[0]
    assert at_49 == pytest.approx(np.interp(49.05, gold["Time"] / 1000, gold["value"]), abs=1e-4)


@needs_fixtures
def test_fixture_recola_gold_standard_imports_at_five_fps(tmp_path):
    gs = tmp_path / "gs"
    for dim in ("arousal", "valence"):
        (gs / dim).mkdir(parents=True)
        for name in ("train_1", "train_2", "train_3", "dev_1"):
            shutil.copy(FIXTURES / "recola_avec2016_gold_standard" / "templateGS.arff", gs / dim / f"{name}.arff")
    t = np.arange(0, 300.01, 0.04)
    for name in ("train_1", "train_2", "train_3", "dev_1"):
        opensmile_arff(tmp_path / "video" / f"{name}.arff", t, np.column_stack([t]))
    result = run(
        ["data", "import", "recola", "--labels", str(gs), "--video", str(tmp_path / "video"), str(tmp_path / "ds")]
    )
    assert result.exit_code == 0, result.output
    df = imported(tmp_path / "ds")
    rec = df[df["video_id"] == "dev_1"]
    assert len(rec) == 1501 and rec["arousal"].iloc[0] == pytest.approx(-0.022925, abs=1e-6)
    assert rec["arousal"].min() == pytest.approx(-0.431, abs=2e-3)


@needs_fixtures
def test_fixture_opensmile_outputs_read_as_feature_files():
    from emo.data.corpora import feature_series
    from emo.data.readers import feature_block, read_arff

    gen = FIXTURES / "opensmile" / "generated_egemapsv02"
    csv, names = feature_series(gen / "opensmile_eGeMAPSv02_func.csv", timestamp_unit="s")
    table = read_arff(gen / "opensmile_eGeMAPSv02_func.arff")  # whole-file functionals: no time column
    arff, arff_names = feature_block(table, gen / "opensmile_eGeMAPSv02_func.arff")
    assert csv.values.shape == arff.shape == (1, 88) and names == arff_names  # ARFF's `class ?` dropped
    np.testing.assert_allclose(csv.values, arff, rtol=1e-6)
    lld, lld_names = feature_series(gen / "opensmile_eGeMAPSv02_lld.csv", timestamp_unit="s")
    assert lld.values.shape == (200, 25) and lld.step == pytest.approx(0.01) and lld_names[0] == "Loudness_sma3"
    compare, _ = feature_series(
        FIXTURES / "opensmile" / "compare2016_lld_csv" / "Healthy_H57_04_2SL_4DN4KOLO_lld.csv", timestamp_unit="s"
    )
    assert compare.values.shape[1] == 130 and np.all(np.diff(compare.times) > 0)  # the repeated last time dropped


# --- bad input: one line naming the file, exit code 2, nothing half-written ---------------------------------


def _fails(args: list[str], dest: Path, *needles: str) -> str:
    result = CliRunner().invoke(main, ["data", "import", *args, str(dest)])
    assert result.exit_code == 2, result.output
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("error: ") and "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message
    assert not dest.exists() and not list(dest.parent.glob(f".{dest.name}.import-*"))
    return message


def test_a_label_file_without_features_is_named(tmp_path):
    args = write_avec(tmp_path / "src", n=3)
    (tmp_path / "src" / "video" / "Train_DE_02.csv").unlink()
    _fails(args, tmp_path / "ds", "1 label file(s)", "have no feature file", "Train_DE_02")


def test_a_feature_file_without_labels_is_named_unless_it_is_a_test_recording(tmp_path):
    args = write_avec(tmp_path / "src", n=3)
    (tmp_path / "src" / "labels" / "Devel_DE_03.csv").unlink()
    _fails(args, tmp_path / "ds", "feature file(s)", "have no label file", "Devel_DE_03")


def test_a_time_column_that_goes_backwards_names_file_and_line(tmp_path):
    args = write_avec(tmp_path / "src", n=3)
    path = tmp_path / "src" / "labels" / "Train_DE_01.csv"
    lines = path.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]
    path.write_text("\n".join(lines) + "\n")
    _fails(args, tmp_path / "ds", "Train_DE_01.csv", "not increasing", "line 6")


def test_features_that_miss_their_labels_time_span(tmp_path):
    args = write_avec(tmp_path / "src", n=3)
    t = np.arange(100, 120, 0.1)
    avec_features(tmp_path / "src" / "video" / "Train_DE_01.csv", "Train_DE_01", t, np.column_stack([t, t]))
    _fails(args, tmp_path / "ds", "Train_DE_01.csv", "does not overlap the labels")


def test_a_comma_file_where_semicolons_belong_says_so(tmp_path):
    args = write_avec(tmp_path / "src", n=3)
    path = tmp_path / "src" / "labels" / "Train_DE_01.csv"
    path.write_text(path.read_text().replace(";", ","))
    _fails(args, tmp_path / "ds", "Train_DE_01.csv", "','-separated", "';'-separated")


def test_an_arff_without_a_data_section(tmp_path):
    args = write_recola(tmp_path / "src")
    path = tmp_path / "src" / "gs" / "arousal" / "dev_1.arff"
    path.write_bytes(path.read_bytes().split(b"@data")[0])
    _fails(args, tmp_path / "ds", "dev_1.arff", "'@data'")


def test_affwild2_annotations_longer_than_the_features_by_more_than_the_tolerance(tmp_path):
    args = write_affwild2(tmp_path / "src")
    path = tmp_path / "src" / "annotations" / "VA_Set" / "Training_Set" / "1-30-1280x720.txt"
    path.write_text(path.read_text() + "0.1,0.1\n" * 40)
    _fails(args, tmp_path / "ds", "1-30-1280x720.txt", "641 annotated frames", "--tolerance")
    assert run(["data", "import", *args, "--tolerance", "50", str(tmp_path / "ds")]).exit_code == 0


def test_an_afew_va_frame_without_a_label_is_named(tmp_path):
    args = write_afew(tmp_path / "src", frames=10)
    path = tmp_path / "src" / "clips" / "01" / "002" / "002.json"
    body = json.loads(path.read_text())
    del body["frames"]["00007"]["arousal"]
    path.write_text(json.dumps(body))
    _fails(args, tmp_path / "ds", "002.json", "frame '00007' lacks a numeric valence or arousal")


def test_an_existing_destination_is_kept_unless_forced(tmp_path):
    args = write_recola(tmp_path / "src")
    dest = tmp_path / "ds"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["data", "import", *args, str(dest)])
    assert result.exit_code == 2 and "exists already" in result.output and "--force" in result.output
    assert (dest / "mine.txt").read_text() == "keep me"
    assert run(["data", "import", *args, "--force", str(dest)]).exit_code == 0
    assert not (dest / "mine.txt").exists() and (dest / "video.parquet").exists()


def test_csv_tables_and_check_report_coverage(tmp_path):
    args = write_affwild2(tmp_path / "src", unlabelled=slice(0, 30))
    assert run(["data", "import", *args, "--format", "csv", str(tmp_path / "ds")]).exit_code == 0
    result = run(["data", "check", str(tmp_path / "ds")])
    assert result.exit_code == 0
    assert "coverage  384 labelled frames, 20 unlabelled, 0 gaps in 4 videos" in result.output
    assert "1-30-1280x720" in result.output and "96 labelled" in result.output


# --- time units: labels and features of a recording are checked against each other ------------------------


@pytest.mark.parametrize("fmt", ["avec", "csv"])
def test_label_timestamps_in_milliseconds_are_refused_naming_the_likely_unit(fmt, tmp_path):
    if fmt == "avec":
        args = write_avec(tmp_path / "src", n=3)
        for path in (tmp_path / "src" / "labels").glob("*.csv"):
            t = _clock(10.0)
            avec_labels(path, path.stem, t * 1000, *ramp(t))
        where = "Devel_DE_01.csv"
    else:
        args = write_csv(tmp_path / "src", label_unit=1000)
        where = "labels.csv (video 0041)"
    message = _fails(
        args,
        tmp_path / "ds",
        where,
        "the labels span 0–20000 s, one row every 100 s (column 'timestamp', read as seconds)",
        "features in",
        "span 0–20 s",
        "are the labels' timestamps in milliseconds?",
    )
    assert "convert the column" in message


def test_feature_timestamps_in_milliseconds_are_named_not_called_too_sparse(tmp_path):
    args = write_csv(tmp_path / "src", feature_unit=1000)
    message = _fails(
        args,
        tmp_path / "ds",
        "video.parquet (video 0041)",
        "span 0–20000 s",
        "are the features' timestamps in milliseconds?",
    )
    assert "--fps" not in message


def test_labels_that_cover_part_of_the_features_at_another_rate_still_import(tmp_path):
    args = write_csv(tmp_path / "src")
    labels = pd.read_csv(tmp_path / "src" / "labels.csv", dtype={"video_id": str})
    two_hertz = np.round(labels["timestamp"] * 10) % 5 == 0
    labels[two_hertz & (labels["timestamp"] <= 6.0)].to_csv(tmp_path / "src" / "labels.csv", index=False)  # 0-6 s
    assert run(["data", "import", *args, str(tmp_path / "ds")]).exit_code == 0
    df = imported(tmp_path / "ds")
    assert sorted(set(df["video_id"])) == ["0041", "0042", "0043", "0044"]  # ids stay text
    labelled = df.dropna(subset=["valence"])
    assert labelled.groupby("video_id").size().tolist() == [30] * 4 and labelled["emb_0"].max() <= 6.0
    np.testing.assert_allclose(label_time(labelled["valence"].to_numpy()), labelled["emb_0"], atol=2e-3)


# --- damaged label files: the same checks for the AVEC reader and `import csv` ------------------------------


def _edit_label_file(args: list[str], fmt: str, edit) -> Path:
    """Apply `edit(lines)` to the label file of the first recording (the AVEC file, or the csv table)."""
    path = Path(args[2]) / "Devel_DE_01.csv" if fmt == "avec" else Path(args[2])
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def _set_time(line: str, value: str) -> str:
    sep = ";" if ";" in line else ","
    fields = line.split(sep)
    return sep.join(fields[:1] + [value] + fields[2:])


def _time_of(line: str) -> str:
    return line.split(";" if ";" in line else ",")[1]


def _cut_last_field(line: str) -> str:
    return line[: line.rindex(";" if ";" in line else ",")]


DAMAGE = {  # what is done to the label file -> what the one-line error says
    "a truncated last line": (
        lambda lines: lines[:-1] + [_cut_last_field(lines[-1])],
        ["the last line (202) holds 4 of the 5 fields (liking missing)", "looks cut short", "Export or copy it again"],
    ),
    "a negative timestamp": (
        lambda lines: [lines[0], _set_time(lines[1], "-0.100000")] + lines[2:],
        ["column 'timestamp' holds a negative time, -0.1 s, at line 2", "shift them"],
    ),
    "unsorted timestamps": (
        lambda lines: lines[:5] + [lines[6], lines[5]] + lines[7:],
        [
            "column 'timestamp' is not increasing: 0.5 s at line 6 is followed by 0.4 s at line 7",
            "Sort the file by time",
        ],
    ),
    "a duplicate timestamp": (
        lambda lines: lines[:6] + [_set_time(lines[6], _time_of(lines[5]))] + lines[7:],
        ["column 'timestamp' repeats 0.4 s at line 7 (also at line 6", "delete the repeated rows"],
    ),
}


@pytest.mark.parametrize("fmt", ["avec", "csv"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_label_file_is_refused_naming_file_column_and_line(damage, fmt, tmp_path):
    args = write_avec(tmp_path / "src", n=3) if fmt == "avec" else write_csv(tmp_path / "src")
    edit, needles = DAMAGE[damage]
    if fmt == "csv" and damage == "a truncated last line":
        needles = ["the last line (805) holds 3 of the 4 fields (arousal missing)"] + needles[1:]  # 4 × 201 rows
    path = _edit_label_file(args, fmt, edit)
    _fails(args, tmp_path / "ds", str(path), *needles)


def test_a_cut_short_arff_gold_standard_is_refused_naming_the_line(tmp_path):
    args = write_recola(tmp_path / "src")
    path = tmp_path / "src" / "gs" / "arousal" / "dev_1.arff"
    body = path.read_bytes()
    path.write_bytes(body[: body.rstrip().rindex(b",")])  # the last row loses its GoldStandard value
    _fails(
        args,
        tmp_path / "ds",
        "dev_1.arff: the last line (510) holds 2 of the 3 fields (GoldStandard missing)",
        "looks cut short",
    )


# --- DEST: where an import may write, and how it fails there -------------------------------------------------


@pytest.mark.parametrize("relation, dest", [("contains", "."), ("is", "labels"), ("lies inside", "video/ds")])
def test_a_dest_that_is_contains_or_lies_inside_a_source_is_refused_before_anything_is_deleted(
    relation, dest, tmp_path
):
    src = tmp_path / "src"
    write_avec(src, n=3)
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    dest = src / dest
    args = ["avec", "--labels", str(src / "labels"), "--video", str(src / "video"), "--force"]
    result = CliRunner().invoke(main, ["data", "import", *args, str(dest)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = result.output.strip().splitlines()[-1]
    source = src / ("video" if relation == "lies inside" else "labels")
    option = "--video" if relation == "lies inside" else "--labels"
    assert message.startswith(f"error: DEST {dest} {relation} the source {source} ({option})"), message
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before  # nothing deleted, nothing added


@pytest.mark.parametrize("dest", [".", ".."])
def test_dest_dot_or_dotdot_is_refused_in_one_line(dest, tmp_path, monkeypatch):
    args = write_avec(tmp_path / "src", n=3)
    here = tmp_path / "work" / "here"
    here.mkdir(parents=True)
    (here / "notes.txt").write_text("mine")
    monkeypatch.chdir(here)
    result = CliRunner().invoke(main, ["data", "import", *args, "--force", dest])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    message = result.output.strip().splitlines()[-1]
    assert message.startswith(f"error: {dest}: DEST is ") and "current folder" in message, message
    assert (here / "notes.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["src", "work"]


@pytest.fixture
def tmpfs(tmp_path):
    """Mounts a tmpfs with the given options (`size=…`, `ro`) under tmp_path: a real full or read-only disk."""
    import subprocess

    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or done.returncode}): needs root")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "--lazy", str(point)], check=True)  # lazy: a file left open must not keep it


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, tmpfs):
    args = write_avec(tmp_path / "src", n=3)
    disk = tmpfs("size=16k")
    result = CliRunner().invoke(main, ["data", "import", *args, "--format", "csv", str(disk / "ds")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    message = result.output.strip().splitlines()[-1]
    assert message.startswith(f"error: {disk / 'ds'}: ") and "No space left on device" in message, message
    assert f"the disk (or quota) holding {disk / 'ds'} is full" in message
    assert list(disk.iterdir()) == []  # no half-written dataset, no temporary folder


def test_a_read_only_dest_is_one_line(tmp_path, tmpfs):
    args = write_avec(tmp_path / "src", n=3)
    disk = tmpfs("ro,size=16k")
    result = CliRunner().invoke(main, ["data", "import", *args, str(disk / "ds")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    message = result.output.strip().splitlines()[-1]
    assert "Read-only file system" in message and f"{disk / 'ds'} is on a read-only file system" in message


def test_a_killed_import_leaves_no_temporary_folders_piling_up(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = write_csv(tmp_path / "src")
    video = tmp_path / "src" / "video.csv"
    os.mkfifo(video)  # the import blocks reading it, after it has made its temporary folder
    args[args.index("--video") + 1] = str(video)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    dest = tmp_path / "ds"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emo.cli", "data", "import", *args, str(dest)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".ds.import-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    left = list(tmp_path.glob(".ds.import-*"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(left) == 1 and left[0].is_dir() and str(proc.pid) in left[0].name  # SIGKILL: it could not clean up
    video.unlink()
    pd.read_parquet(tmp_path / "src" / "video.parquet").to_csv(video, index=False)
    assert run(["data", "import", *args, str(dest)]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "src"]  # the killed import's folder is gone
    assert imported(dest)["video_id"].nunique() == 4


# --- learnability: the delay is applied in the right direction ---------------------------------------------


def write_lagged_avec(root: Path, lag: float = 2.0, recordings: int = 14, seconds: float = 60.0) -> list[str]:
    """Features carry an emotion e(t) that changes within ~0.3 s; the raters report it `lag` seconds late."""
    rng = np.random.default_rng(7)
    t = np.arange(-lag * 10, seconds * 10 + 1) / 10  # 10 Hz, from before 0 so the lagged labels exist
    kernel = np.exp(-0.5 * (np.arange(-15, 16) / 3.0) ** 2)
    for k in range(recordings):
        name = f"{'Train' if k < 10 else 'Devel'}_DE_{k + 1:02d}"
        e = np.convolve(rng.normal(size=len(t)), kernel / kernel.sum() * 3, mode="same")
        e = 0.6 * e / np.abs(e).max()
        now = t >= 0
        shift = int(round(lag * 10))
        label = e[:-shift] if shift else e  # the label at t is e(t - lag)
        avec_labels(root / "labels" / f"{name}.csv", name, t[now], label[-now.sum() :], label[-now.sum() :] * 0.5)
        x = np.column_stack([e, rng.normal(size=(len(t), 3)) * 0.3])[now]
        avec_features(root / "video" / f"{name}.csv", name, t[now], x)
    return ["avec", "--labels", str(root / "labels"), "--video", str(root / "video")]


def test_a_lagged_corpus_is_learnt_only_with_the_right_label_delay(tmp_path):
    from emo.core.config import Config
    from emo.experiment import run_experiment

    assert run(["data", "import", *write_lagged_avec(tmp_path / "src"), str(tmp_path / "ds")]).exit_code == 0
    scores = {}
    for delay in (0.0, 2.0, 4.0):
        config = Config(family="ffnn", data=str(tmp_path / "ds"), epochs=25, patience=5, label_delay=delay, seed=0)
        result = run_experiment(config, track=False, progress=False)
        scores[delay] = result.objective / (
            (result.mean_predictor_dev["dev/rmse_valence"] + result.mean_predictor_dev["dev/rmse_arousal"]) / 2
        )
    assert scores[2.0] < 0.5, scores  # features at t explain the label written 2 s later
    assert scores[0.0] > 0.85 and scores[4.0] > 0.85, scores  # no better than the mean


def test_fusion_trains_on_an_import_with_recordings_shorter_than_the_window(tmp_path):
    args = write_avec(tmp_path / "src", n=3)
    for folder in ("labels", "video", "audio"):  # one training recording of 2 s, under the 4 s window
        path = tmp_path / "src" / folder / "Train_DE_02.csv"
        lines = path.read_text().splitlines()
        header = 1 if lines[0].startswith("name") else 0
        path.write_text("\n".join(lines[: header + 21]) + "\n")
    assert run(["data", "import", *args, str(tmp_path / "ds")]).exit_code == 0
    from emo.data.inputs import build_inputs

    inputs = build_inputs(load_dataset(tmp_path / "ds"), "fusion", window_s=4.0, label="last")
    assert inputs.notes["padded_windows"] == 1 and inputs.dims["video_mask"] == 1
    assert inputs.samples["train"].__getitems__([0]).video_mask is not None  # every batch carries the mask
    result = CliRunner().invoke(
        main,
        [
            "train",
            "fusion",
            "--data",
            str(tmp_path / "ds"),
            "--window",
            "4",
            "--d-model",
            "16",
            "--heads",
            "2",
            "--ff",
            "16",
            "--depth",
            "1",
            "--epochs",
            "1",
            "--no-track",
        ],
    )
    assert result.exit_code == 0, result.output


def test_a_model_predicts_the_unlabelled_test_recordings_of_an_import(tmp_path, tracking):
    args = write_avec(tmp_path / "src", n=3)
    assert run(["data", "import", *args, str(tmp_path / "ds")]).exit_code == 0
    trained = run(["train", "video", "--data", str(tmp_path / "ds"), "--window", "1", "--epochs", "1"])
    assert trained.exit_code == 0, trained.output
    import mlflow

    uri = mlflow.search_runs(search_all_experiments=True).iloc[0]["tags.emo.model_uri"]
    result = run(
        [
            "predict",
            "--model",
            uri,
            "--data",
            str(tmp_path / "ds" / "unlabelled"),
            "--split",
            "all",
            "--out",
            str(tmp_path / "test.csv"),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "no sample has labels" in result.output
    pred = pd.read_csv(tmp_path / "test.csv")
    assert set(pred["video_id"]) == {"Test_DE_01"} and len(pred) == 101 - 5 + 1  # every 1 s window of 20 s
    assert pred["valence"].between(-1, 1).all() and pred["true_valence"].isna().all()
    scored = run(
        [
            "predict",
            "--model",
            uri,
            "--data",
            str(tmp_path / "ds"),
            "--split",
            "test",
            "--out",
            str(tmp_path / "dev.csv"),
        ]
    )
    assert scored.exit_code == 0 and "RMSE V" in scored.output
