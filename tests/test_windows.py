"""Windows and fusion samples equal a slow, obviously-correct reference on random tables."""

import numpy as np
import pandas as pd
import pytest

from emo.data.samples import FrameSamples, FusionSamples, WindowSamples, loader
from emo.data.tables import read_table
from emo.data.windows import audio_row_labels, make_windows, sync_audio, window_frames, window_labels

from tables import audio_frame, video_frame

FPS = 5.0


def reference_windows(df: pd.DataFrame, length: int, stride: int, label: str):
    """Iterate the videos and their rows, building each window by hand."""
    emb = [c for c in df.columns if c.startswith("emb_")]
    out = []
    for vid in sorted(df["video_id"].unique()):
        g = df[df["video_id"] == vid].sort_values("timestamp")
        x, y, t = g[emb].to_numpy(np.float32), g[["valence", "arousal"]].to_numpy(), g["timestamp"].to_numpy()
        for s in range(0, len(g) - length + 1, stride):
            lab = y[s : s + length].mean(axis=0) if label == "mean" else y[s + length - 1]
            out.append((vid, t[s], t[s + length - 1] + 1 / FPS, x[s : s + length], lab))
    return out


def reference_audio(audio: pd.DataFrame, vid: str, start: float, end: float, max_len: int):
    feats = [c for c in audio.columns if c not in ("filename", "timestamp")]
    g = audio[audio["filename"] == f"{vid}.wav"].sort_values("timestamp")
    inside = g[(g["timestamp"] >= start) & (g["timestamp"] < end)][feats].to_numpy(np.float32)[:max_len]
    padded = np.zeros((max_len, len(feats)), np.float32)
    padded[: len(inside)] = inside
    return padded, np.arange(max_len) < len(inside)


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    lengths = {f"v{i:02d}": int(rng.integers(1, 40)) for i in range(int(rng.integers(2, 7)))}
    df = video_frame(lengths, dim=int(rng.integers(1, 5)), fps=FPS, seed=seed)
    audio = audio_frame(
        {v: n / FPS for v, n in lengths.items()},
        hop=float(rng.choice([0.2, 0.5, 0.7])),
        dim=int(rng.integers(1, 4)),
        seed=seed,
    )
    return df, audio


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("label", ["mean", "last"])
def test_windows_and_fusion_samples_equal_the_reference(tmp_path, seed, label):
    df, audio = random_case(seed)
    df.to_csv(tmp_path / "video.csv", index=False)
    audio.to_parquet(tmp_path / "audio_1s.parquet")
    video_t = read_table(tmp_path / "video.csv")
    audio_t = read_table(tmp_path / "audio_1s.parquet", modality="audio")
    rng = np.random.default_rng(100 + seed)
    length, stride, max_len = int(rng.integers(1, 12)), int(rng.integers(1, 4)), int(rng.integers(1, 6))

    ref = reference_windows(df, length, stride, label)
    win = make_windows(video_t, length, stride=stride)
    assert len(win) == len(ref)
    too_short = sorted(v for v, n in df["video_id"].value_counts().items() if n < length)
    assert sorted(win.skipped_videos) == too_short
    if not ref:
        return
    labels = window_labels(video_t, win, label)
    sync = sync_audio(video_t, win, audio_t, FPS, max_len=max_len)
    batch = FusionSamples(video_t, win, labels, audio_t, sync).__getitems__(list(range(len(win))))
    for i, (vid, start, end, x, y) in enumerate(ref):
        assert video_t.video_ids[win.video[i]] == vid
        np.testing.assert_array_equal(batch.video[i].numpy(), x)
        np.testing.assert_allclose(batch.target[i].numpy(), y, atol=1e-6)
        a, m = reference_audio(audio, vid, start, end, max_len)
        np.testing.assert_array_equal(batch.audio_mask[i].numpy(), m)
        np.testing.assert_allclose(batch.audio[i].numpy(), a, atol=1e-6)
    # the window dataset gathers the same video tensors as the fusion one
    window_batch = WindowSamples(video_t, win, labels).__getitems__(list(range(len(win))))
    assert torch_equal(window_batch.video, batch.video)


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_window_frames_are_seconds_times_fps():
    assert [window_frames(s, 5.0) for s in (1, 2, 3, 4)] == [5, 10, 15, 20]


def test_a_dataloader_yields_whole_gathered_batches_in_seeded_order(tmp_path):
    df = video_frame({"a": 30, "b": 25}, dim=4)
    df.to_csv(tmp_path / "video.csv", index=False)
    t = read_table(tmp_path / "video.csv")
    win = make_windows(t, 5)
    samples = WindowSamples(t, win, window_labels(t, win))
    first = [b.target for b in loader(samples, 8, shuffle=True, seed=3)]
    again = [b.target for b in loader(samples, 8, shuffle=True, seed=3)]
    assert [b.shape for b in first][:2] == [(8, 2), (8, 2)]
    assert sum(len(b) for b in first) == len(win) == 26 + 21
    assert all(torch_equal(x, y) for x, y in zip(first, again))
    batch = next(iter(loader(samples, 8)))
    assert batch.video.shape == (8, 5, 4)


def test_frame_samples_gather_rows_of_either_modality(tmp_path):
    df = video_frame({"a": 6}, dim=2, shuffle=False)
    df.to_csv(tmp_path / "video.csv", index=False)
    t = read_table(tmp_path / "video.csv")
    rows = np.array([5, 0, 2])
    batch = FrameSamples(t, rows, t.labels[rows], modality="audio").__getitems__([0, 2])
    assert batch.video is None
    np.testing.assert_array_equal(batch.audio.numpy(), df.filter(like="emb_").to_numpy(np.float32)[[5, 2]])


def test_audio_rows_without_labels_take_the_mean_of_the_video_frames_inside_them(tmp_path):
    df = video_frame({"a": 10}, dim=1, shuffle=False)
    df.to_csv(tmp_path / "video.csv", index=False)
    audio = pd.DataFrame({"filename": ["a.wav"] * 3, "timestamp": [0.0, 1.0, 5.0], "f": [1.0, 2.0, 3.0]})
    audio.to_csv(tmp_path / "audio_1s.csv", index=False)
    v, a = read_table(tmp_path / "video.csv"), read_table(tmp_path / "audio_1s.csv", modality="audio")
    labels = audio_row_labels(a, v, 1.0)
    y = df[["valence", "arousal"]].to_numpy()
    np.testing.assert_allclose(labels[0], y[0:5].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(labels[1], y[5:10].mean(axis=0), atol=1e-6)
    assert np.isnan(labels[2]).all()  # no frame after 2 s: no label, never a made-up one


def test_memory_is_o_frames_windows_share_the_feature_array(tmp_path):
    df = video_frame({"a": 200, "b": 300}, dim=8)
    df.to_csv(tmp_path / "video.csv", index=False)
    t = read_table(tmp_path / "video.csv")
    win = make_windows(t, 20)
    samples = WindowSamples(t, win, window_labels(t, win))
    assert samples.features.data_ptr() == t.features.ctypes.data  # no copy of the features
    assert samples.starts.shape == (len(win),)  # one integer per window, not a (n, T, D) block


def test_windows_never_span_a_gap_in_the_timestamps(tmp_path):
    df = video_frame({"a": 12}, dim=1, shuffle=False)
    df = df[(df["timestamp"] < 0.7) | (df["timestamp"] > 1.5)]  # frames 4-7 missing: a 1 s gap
    df.to_csv(tmp_path / "video.csv", index=False)
    t = read_table(tmp_path / "video.csv")
    win = make_windows(t, 3, max_gap=1.5 / FPS)
    np.testing.assert_allclose(t.times[win.starts], [0.0, 0.2, 1.6, 1.8])  # none starts at 0.4 or 0.6
    assert len(make_windows(t, 3)) == 6  # without max_gap the gap is ignored
    assert make_windows(t, 5, max_gap=1.5 / FPS).skipped_videos == ("a",)  # no 5 consecutive frames
