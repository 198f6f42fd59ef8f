"""`emo extract`: real media made here (a face photograph that moves, grows and brightens, a voice whose
pitch and loudness change) become the data contract's tables, offline; then `emo data import csv`
joins them with labels and a model trains on the result."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from click.testing import CliRunner

pytest.importorskip("av", reason="the extract extra is not installed: pip install -e '.[extract]'")
pytest.importorskip("opensmile", reason="the extract extra is not installed: pip install -e '.[extract]'")
pytest.importorskip("dlib", reason="the extract extra is not installed: pip install -e '.[extract]'")
pytest.importorskip("skimage", reason="the test media need scikit-image (the test extra)")

from emo.cli import main  # noqa: E402

from media import face_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def copies(clips: Path, folder: Path, *names: str) -> Path:
    """A folder holding the named recordings of `clips`."""
    folder.mkdir()
    for name in names:
        (folder / f"{name}.mp4").write_bytes((clips / f"{name}.mp4").read_bytes())
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Three 4 s recordings; the face is blanked out from 1.6 s to 2.0 s."""
    folder = tmp_path_factory.mktemp("media")
    for name in ("alice", "bob", "carol"):
        face_video(folder / f"{name}.mp4")
    return folder


@pytest.fixture(scope="module")
def extracted(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("features")
    video = cli("extract", "video", str(clips), str(out), "--jobs", "2")
    assert video.exit_code == 0, video.output
    audio = cli("extract", "audio", str(clips), str(out), "--windows", "1,2", "--jobs", "1")
    assert audio.exit_code == 0, audio.output
    return out


def test_video_features_follow_the_face_with_the_containers_timestamps(clips, extracted):
    import av

    df = pd.read_parquet(extracted / "video.parquet")
    assert sorted(df["video_id"].unique()) == ["alice", "bob", "carol"]
    one = df[df["video_id"] == "alice"].sort_values("timestamp")
    with av.open(str(clips / "alice.mp4")) as c:
        pts = [float(f.pts * f.time_base) for f in c.decode(c.streams.video[0])]
    expected = [t for t in pts if round(t * 5, 6) == int(round(t * 5, 6))]  # the frames at 0, 0.2, 0.4 … s
    blank = [t for t in expected if 1.6 <= t < 2.0]
    assert one["timestamp"].tolist() == pytest.approx([t for t in expected if t not in blank])  # blank = gap
    assert len(one) == len(expected) - len(blank) == 18  # a face in every frame that shows one
    assert [c for c in df.columns if c.startswith("emb_")][-1] == "emb_139"
    # the face slides right and grows: the box features follow it, the shape features do not move
    assert np.corrcoef(one["timestamp"], one["emb_136"])[0, 1] > 0.95
    assert one["emb_138"].iloc[-4:].mean() > 1.05 * one["emb_138"].iloc[:4].mean()  # 15% larger at the end
    shape = one[[f"emb_{j}" for j in range(136)]].to_numpy()
    assert np.abs(shape - shape.mean(axis=0)).max() < 0.15


def test_audio_functionals_change_where_pitch_and_loudness_change(extracted):
    a1 = pd.read_parquet(extracted / "audio_1s.parquet")
    a2 = pd.read_parquet(extracted / "audio_2s.parquet")
    assert a1.shape[1] == 2 + 88 and "loudness_sma3_amean" in a1.columns
    one = a1[a1["video_id"] == "alice"]
    assert one["timestamp"].iloc[:4].tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6])
    quiet, loud = one[one["timestamp"] <= 0.9], one[(one["timestamp"] >= 2.0) & (one["timestamp"] <= 2.9)]
    assert loud["loudness_sma3_amean"].min() > 3 * quiet["loudness_sma3_amean"].max()
    # an octave up is 12 semitones
    pitch = loud["F0semitoneFrom27.5Hz_sma3nz_amean"].mean() - quiet["F0semitoneFrom27.5Hz_sma3nz_amean"].mean()
    assert pitch == pytest.approx(12, abs=1.5)
    assert len(a2[a2["video_id"] == "alice"]) < len(one)  # fewer 2 s windows fit in 4 s


def test_a_corrupt_file_is_reported_and_skipped_and_a_rerun_resumes(clips, tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "alice.mp4").write_bytes((clips / "alice.mp4").read_bytes())
    (folder / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    out = tmp_path / "out"
    result = cli("extract", "video", str(folder), str(out), "--jobs", "1")
    assert result.exit_code == 2
    assert "1 of 2 recordings failed" in result.output and "broken.mp4" in result.output
    assert set(pd.read_parquet(out / "video.parquet")["video_id"]) == {"alice"}
    (folder / "broken.mp4").unlink()
    again = cli("extract", "video", str(folder), str(out), "--jobs", "1")
    assert again.exit_code == 0 and "1 already complete, skipped" in again.output


def test_a_users_torchscript_model_embeds_the_face_crops(clips, tmp_path):
    import torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 6)
    )
    torch.jit.save(torch.jit.script(net), tmp_path / "face.pt")
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "alice.mp4").write_bytes((clips / "alice.mp4").read_bytes())
    result = cli(
        "extract",
        "video",
        str(folder),
        str(tmp_path / "out"),
        "--extractor",
        f"torchscript:{tmp_path / 'face.pt'}",
        "--crop-size",
        "32",
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "out" / "video.parquet")
    assert [c for c in df.columns if c.startswith("emb_")] == [f"emb_{j}" for j in range(6)] and len(df) == 18
    bad = cli("extract", "video", str(folder), str(tmp_path / "out2"), "--extractor", "torchscript:/nope.pt")
    assert bad.exit_code == 2 and "no such TorchScript model file" in bad.output


def test_a_rerun_with_another_hop_re_extracts_and_one_with_the_same_hop_skips(clips, tmp_path, caplog):
    folder, out = copies(clips, tmp_path / "media", "alice", "bob"), tmp_path / "out"
    first = cli("extract", "audio", str(folder), str(out), "--windows", "1", "--hop", "0.2", "--jobs", "1")
    assert first.exit_code == 0, first.output
    with caplog.at_level(logging.WARNING, logger="emo"):
        other = cli("extract", "audio", str(folder), str(out), "--windows", "1", "--hop", "0.5", "--jobs", "1")
    assert other.exit_code == 0, other.output
    assert "2 made with other options (hop 0.2 → 0.5): re-extracting" in caplog.text
    assert "2 recording(s) extracted" in other.output and "skipped" not in other.output
    a1 = pd.read_parquet(out / "audio_1s.parquet")
    assert a1[a1["video_id"] == "bob"]["timestamp"].iloc[:4].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="emo"):
        same = cli("extract", "audio", str(folder), str(out), "--windows", "1", "--hop", "0.5", "--jobs", "1")
    assert same.exit_code == 0 and "2 already complete, skipped" in same.output
    assert "other options" not in caplog.text


def test_parts_of_an_older_emo_that_recorded_no_options_are_re_extracted(clips, tmp_path, caplog):
    import pyarrow.parquet as pq

    folder, out = copies(clips, tmp_path / "media", "alice"), tmp_path / "out"
    assert cli("extract", "audio", str(folder), str(out), "--windows", "1", "--jobs", "1").exit_code == 0
    part = out / ".parts" / "audio_1s" / "alice.parquet"
    pq.write_table(pq.read_table(part).replace_schema_metadata(None), part)  # as emo wrote parts before
    with caplog.at_level(logging.WARNING, logger="emo"):
        again = cli("extract", "audio", str(folder), str(out), "--windows", "1", "--jobs", "1")
    assert again.exit_code == 0, again.output
    assert "1 made with other options (not recorded): re-extracting" in caplog.text
    assert "1 recording(s) extracted" in again.output
    assert b"emo.options" in pq.read_schema(part).metadata


def test_a_rerun_with_another_fps_and_extractor_re_extracts_the_video(clips, extracted, tmp_path, caplog):
    folder, out = copies(clips, tmp_path / "media", "alice"), tmp_path / "out"
    (out / ".parts" / "video").mkdir(parents=True)  # alice's landmarks at 5 fps, as the first run made them
    (out / ".parts" / "video" / "alice.parquet").write_bytes(
        (extracted / ".parts" / "video" / "alice.parquet").read_bytes()
    )
    with caplog.at_level(logging.WARNING, logger="emo"):
        result = cli("extract", "video", str(folder), str(out), "--fps", "2", "--extractor", "embedding", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "1 made with other options (fps 5 → 2, extractor landmarks → embedding): re-extracting" in caplog.text
    df = pd.read_parquet(out / "video.parquet")
    assert [c for c in df.columns if c.startswith("emb_")] == [f"emb_{j}" for j in range(128)]
    assert df["timestamp"].tolist() == pytest.approx([0.0, 0.52, 1.0, 1.52, 2.0, 2.52, 3.0, 3.52])  # 25 fps frames


def test_a_changed_torchscript_model_file_re_extracts(clips, tmp_path, caplog):
    import torch

    model, folder, out = tmp_path / "face.pt", copies(clips, tmp_path / "media", "alice"), tmp_path / "out"
    digests = []
    for outputs in (6, 3):  # a retrained model saved over the first, at the same path
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, outputs)
        )
        torch.jit.save(torch.jit.script(net), model)
        digests.append(hashlib.sha256(model.read_bytes()).hexdigest()[:16])
        with caplog.at_level(logging.WARNING, logger="emo"):
            result = cli(
                "extract",
                "video",
                str(folder),
                str(out),
                "--fps",
                "2",
                "--extractor",
                f"torchscript:{model}",
                "--crop-size",
                "32",
                "--jobs",
                "1",
            )
        assert result.exit_code == 0, result.output
    assert f"1 made with other options (model sha256:{digests[0]} → sha256:{digests[1]}): re-extracting" in caplog.text
    df = pd.read_parquet(out / "video.parquet")
    assert [c for c in df.columns if c.startswith("emb_")] == ["emb_0", "emb_1", "emb_2"] and len(df) == 8


def running(procs: list, within: float) -> list:
    """Those of `procs` still running after up to `within` seconds (a zombie has ended: it only awaits
    being reaped by whoever adopted it)."""

    def alive(p) -> bool:
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + within
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in procs if alive(p)]


def files_in(folder: Path) -> dict[str, int]:
    return {str(f.relative_to(folder)): f.stat().st_size for f in folder.rglob("*") if f.is_file()}


def reading(proc, folder: Path) -> bool:
    """Whether `proc` has a file of `folder` open."""
    try:
        return any(Path(f.path).parent == folder for f in proc.open_files())
    except psutil.Error:
        return False


def test_killing_a_run_outright_ends_its_workers(clips, tmp_path):
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "emo.cli", "extract", "video", str(clips), str(out), "--jobs", "2"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = []
    try:
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline and not any(reading(p, clips) for p in workers):
            workers = psutil.Process(run.pid).children(recursive=True)
            time.sleep(0.05)
        assert run.poll() is None and len(workers) >= 2, "the workers should be extracting"
        run.kill()  # SIGKILL: the run cannot tell its workers
        run.wait()
        assert running(workers, within=5) == []
        written = files_in(out)
        time.sleep(1)
        assert files_in(out) == written  # nothing is being written any more
        assert not list(out.glob(".parts/video/*.parquet"))  # and the recordings in progress were not finished
    finally:
        for p in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        if run.poll() is None:
            run.kill()


def test_recordings_to_a_trained_model_through_import_csv(extracted, tmp_path):
    rows = []
    for k, vid in enumerate(["alice", "bob", "carol"]):
        t = np.arange(0, 4.01, 0.1)
        rows.append(
            pd.DataFrame({"video_id": vid, "timestamp": t, "valence": np.sin(t + k) * 0.5, "arousal": np.cos(t) * 0.5})
        )
    pd.concat(rows).to_csv(tmp_path / "labels.csv", index=False)
    result = cli(
        "data",
        "import",
        "csv",
        "--labels",
        str(tmp_path / "labels.csv"),
        "--video",
        str(extracted / "video.parquet"),
        "--audio",
        f"{extracted / 'audio_1s.parquet'}:1",
        str(tmp_path / "ds"),
    )
    assert result.exit_code == 0, result.output
    assert "3 recordings" in result.output
    ds = tmp_path / "ds"
    assert (ds / "video.parquet").exists() and (ds / "audio_1s.parquet").exists()
    train = cli(
        "train",
        "fusion",
        "--data",
        str(ds),
        "--window",
        "1",
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
    )
    assert train.exit_code == 0, train.output
