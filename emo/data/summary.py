"""A human-readable summary of a loaded dataset, for `emo data check`."""

from __future__ import annotations

import numpy as np

from emo.data.dataset import Dataset
from emo.data.windows import make_windows, window_frames


def _label_range(labels: np.ndarray) -> str:
    return ", ".join(f"{name} [{labels[:, j].min():+.3f}, {labels[:, j].max():+.3f}] mean {labels[:, j].mean():+.3f}"
                     for j, name in enumerate(("valence", "arousal")))


def summarize(ds: Dataset, windows_s=()) -> str:
    """Videos, frames, duration, fps, dims, label ranges, split sizes and audio tables of `ds`."""
    v = ds.video
    lengths = v.lengths
    seconds = lengths / ds.fps
    lines = [
        f"dataset   {ds.name} ({ds.folder})" + ("  [SYNTHETIC data, not a real corpus]" if ds.synthetic else ""),
        f"video     {v.source.name}: {len(v.video_ids)} videos, {v.n_rows} frames, {v.dim}-dim features, "
        f"{ds.fps:g} fps",
        f"duration  {seconds.sum() / 3600:.2f} h in all; per video min {seconds.min():.1f} s, "
        f"median {np.median(seconds):.1f} s, max {seconds.max():.1f} s",
        f"labels    scaled by 1/{ds.label_scale:g}: {_label_range(v.labels)}",
    ]
    frames_of = dict(zip(v.video_ids, lengths))
    sizes = ", ".join(f"{name} {len(ids)} videos / {sum(frames_of.get(i, 0) for i in ids)} frames"
                      for name in ("train", "dev", "test") for ids in [ds.split.of(name)])
    lines.append(f"split     {sizes} ({ds.split.source}, hash {ds.split.hash})")
    for w in windows_s:
        n = window_frames(w, ds.fps)
        win = make_windows(v, n, max_gap=1.5 / ds.fps)
        lines.append(f"windows   {w:g} s = {n} frames: {len(win)} windows (stride 1), "
                     f"{len(win.skipped_videos)} videos too short")
    for w in ds.audio_windows():
        a = ds.audio(w)
        lines.append(f"audio     audio_{w}s: {a.n_rows} rows, {a.dim} features, {len(a.video_ids)} videos"
                     + (", with labels" if a.labels is not None else ", labels from the video frames"))
    if not ds.audio_windows():
        lines.append("audio     none (video-only dataset: video, ffnn and baseline models apply)")
    return "\n".join(lines)
