"""Benchmark: windows and fusion samples at SEWA scale, against a naive per-row pandas version.

    python bench/windowing.py                  # 540 videos × 300 s × 5 fps, 512-dim (SEWA scale)
    python bench/windowing.py --videos 50      # quicker

Prints frames/s and windows/s of building 4 s windows, their labels and the audio
synchronisation, the rate of gathering every fusion batch of an epoch, the peak memory those
steps add (as a multiple of the feature array), and the same work done the naive way (iterate
the rows, match the frames, build each window, as the thesis describes) on a subset of videos.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from memory import reset_rss_peak, rss_peak  # bench/memory.py

from emo.data.samples import FusionSamples, loader
from emo.data.tables import FrameTable
from emo.data.windows import make_windows, sync_audio, window_labels

FPS = 5.0


def synthetic_tables(videos: int, seconds: float, dim: int, audio_dim: int, hop: float, seed: int = 0):
    """Tables built in memory (the reader is not what is measured here)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FPS)
    ids = np.array([f"v{i:04d}" for i in range(videos)])
    video = FrameTable(
        source=Path("video"),
        video_ids=ids,
        offsets=np.arange(videos + 1, dtype=np.int64) * n,
        times=np.tile(np.arange(n) / FPS, videos),
        features=rng.standard_normal((videos * n, dim), dtype=np.float32),
        labels=rng.uniform(-1, 1, (videos * n, 2)).astype(np.float32),
        feature_names=[],
    )
    m = int(seconds / hop)
    audio = FrameTable(
        source=Path("audio_4s"),
        video_ids=ids,
        offsets=np.arange(videos + 1, dtype=np.int64) * m,
        times=np.tile(np.arange(m) * hop, videos),
        features=rng.standard_normal((videos * m, audio_dim), dtype=np.float32),
        labels=None,
        feature_names=[],
    )
    return video, audio


def fast(video: FrameTable, audio: FrameTable, length: int, batch_size: int):
    win = make_windows(video, length)
    labels = window_labels(video, win, "last")
    sync = sync_audio(video, win, audio, FPS)
    samples = FusionSamples(video, win, labels, audio, sync)
    return win, samples


def naive(video_df: pd.DataFrame, audio_df: pd.DataFrame, length: int, max_len: int):
    """The thesis's way: per video, iterate the rows, match frames and audio, build each window."""
    emb = [c for c in video_df.columns if c.startswith("emb_")]
    feats = [c for c in audio_df.columns if c.startswith("a_")]
    out = []
    for vid in video_df["video_id"].unique():
        frames = video_df[video_df["video_id"] == vid].sort_values("timestamp")
        sounds = audio_df[audio_df["filename"].str.contains(vid)]
        rows = [row for _, row in frames.iterrows()]
        for s in range(len(rows) - length + 1):
            window = rows[s : s + length]
            x = np.stack([r[emb].to_numpy(np.float32) for r in window])
            y = window[-1][["valence", "arousal"]].to_numpy(np.float32)
            t0, t1 = window[0]["timestamp"], window[-1]["timestamp"] + 1 / FPS
            a = sounds[(sounds["timestamp"] >= t0) & (sounds["timestamp"] < t1)][feats].to_numpy(np.float32)[:max_len]
            mask = np.zeros(max_len, bool)
            mask[: len(a)] = True
            out.append((x, y, np.pad(a, ((0, max_len - len(a)), (0, 0))), mask))
    return out


def to_frames(video: FrameTable, audio: FrameTable, videos: int):
    n, m = video.offsets[videos], audio.offsets[videos]
    vdf = pd.DataFrame(video.features[:n], columns=[f"emb_{j}" for j in range(video.dim)])
    vdf.insert(0, "video_id", np.repeat(video.video_ids[:videos], video.lengths[:videos]))
    vdf.insert(1, "timestamp", video.times[:n])
    vdf["valence"], vdf["arousal"] = video.labels[:n, 0], video.labels[:n, 1]
    adf = pd.DataFrame(audio.features[:m], columns=[f"a_{j}" for j in range(audio.dim)])
    adf.insert(0, "filename", np.char.add(np.repeat(audio.video_ids[:videos], audio.lengths[:videos]), ".wav"))
    adf.insert(1, "timestamp", audio.times[:m])
    return vdf, adf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=540)
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--audio-dim", type=int, default=88)
    p.add_argument("--hop", type=float, default=0.5, help="audio row spacing, seconds")
    p.add_argument("--window", type=float, default=4.0, help="window length, seconds")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--naive-videos", type=int, default=2)
    args = p.parse_args()
    length = int(args.window * FPS)

    video, audio = synthetic_tables(args.videos, args.seconds, args.dim, args.audio_dim, args.hop)
    feature_bytes = video.features.nbytes
    frames = video.n_rows
    print(
        f"table: {args.videos} videos × {args.seconds:g} s × {FPS:g} fps = {frames} frames, {args.dim}-dim "
        f"({feature_bytes / 2**30:.2f} GiB of video features); audio {audio.n_rows} rows × {audio.dim}"
    )

    rss_before = reset_rss_peak()
    tracemalloc.start()
    t0 = time.perf_counter()
    win, samples = fast(video, audio, length, args.batch_size)
    build = time.perf_counter() - t0
    _, build_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    gathered = 0
    for batch in loader(samples, args.batch_size, shuffle=True):
        gathered += len(batch)
    gather = time.perf_counter() - t0
    _, gather_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = rss_peak()
    print(
        f"emo  : {len(win)} windows of {length} frames + labels + audio sync in {build:.2f} s = "
        f"{frames / build:,.0f} frames/s, {len(win) / build:,.0f} windows/s"
    )
    print(
        f"emo  : gathered one shuffled epoch of fusion batches ({gathered} samples, batch {args.batch_size}) in "
        f"{gather:.2f} s = {gathered / gather:,.0f} samples/s"
    )
    print(
        f"emo  : peak memory added by building {build_peak / 2**20:.0f} MiB, while gathering "
        f"{gather_peak / 2**20:.0f} MiB = {max(build_peak, gather_peak) / feature_bytes:.3f}× the feature array "
        f"(target < 2×)"
    )
    if rss_before is not None and rss_after is not None:
        print(
            f"emo  : peak resident memory (numpy + torch) rose by {(rss_after - rss_before) / 2**20:.0f} MiB = "
            f"{(rss_after - rss_before) / feature_bytes:.3f}× the feature array"
        )

    vdf, adf = to_frames(video, audio, args.naive_videos)
    t0 = time.perf_counter()
    ref = naive(vdf, adf, length, samples.steps.numel())
    slow = time.perf_counter() - t0
    n_frames = len(vdf)
    print(
        f"naive: {len(ref)} windows from {args.naive_videos} videos ({n_frames} frames) in {slow:.2f} s = "
        f"{n_frames / slow:,.0f} frames/s, {len(ref) / slow:,.0f} windows/s"
    )
    fast_rate = frames / (build + gather)
    print(f"speed-up per frame (build + gather vs naive): {fast_rate / (n_frames / slow):,.0f}× (target ≥ 50×)")
    check = samples.__getitems__([0])
    np.testing.assert_allclose(check.video[0].numpy(), ref[0][0])
    np.testing.assert_allclose(check.audio[0].numpy(), ref[0][2])


if __name__ == "__main__":
    main()
