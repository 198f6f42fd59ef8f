"""A human-readable summary of a loaded dataset, for `emo data check`."""

from __future__ import annotations

import numpy as np

from emo.data.dataset import Dataset
from emo.data.windows import make_windows, window_frames


def _label_range(labels: np.ndarray) -> str:
    if not len(labels):
        return "none"
    return ", ".join(f"{name} [{labels[:, j].min():+.3f}, {labels[:, j].max():+.3f}] mean {labels[:, j].mean():+.3f}"
                     for j, name in enumerate(("valence", "arousal")))


def coverage(ds: Dataset) -> list[dict]:
    """Per video: frames, labelled and unlabelled frames, gaps (steps over 1.5 frames) and label range."""
    v = ds.video
    labelled = v.labelled
    gap = np.r_[np.diff(v.times) > 1.5 / ds.fps, False]
    rows = []
    for k, vid in enumerate(v.video_ids):
        lo, hi = v.offsets[k], v.offsets[k + 1]
        lab = labelled[lo:hi]
        y = v.labels[lo:hi][lab] * ds.label_scale
        rows.append({"video": vid, "frames": int(hi - lo), "labelled": int(lab.sum()),
                     "unlabelled": int((~lab).sum()), "gaps": int(gap[lo:hi - 1].sum()) if hi - lo > 1 else 0,
                     "range": None if not len(y) else (y.min(axis=0), y.max(axis=0))})
    return rows


def coverage_lines(ds: Dataset, per_video: bool | None = None) -> list[str]:
    """The coverage table: every video when asked (default: up to 20 videos), else the least labelled."""
    rows = coverage(ds)
    total = {k: sum(r[k] for r in rows) for k in ("frames", "labelled", "unlabelled", "gaps")}
    lines = [f"coverage  {total['labelled']} labelled frames, {total['unlabelled']} unlabelled, {total['gaps']} gaps "
             f"in {len(rows)} videos"]
    shown = rows if (per_video or (per_video is None and len(rows) <= 20)) else \
        sorted(rows, key=lambda r: r["labelled"] / max(r["frames"], 1))[:5]
    if shown is not rows:
        lines.append(f"          the 5 least labelled videos (--per-video lists all {len(rows)}):")
    for r in shown:
        rng = "no labels" if r["range"] is None else \
            (f"valence [{r['range'][0][0]:+.2f}, {r['range'][1][0]:+.2f}] "
             f"arousal [{r['range'][0][1]:+.2f}, {r['range'][1][1]:+.2f}]")
        lines.append(f"  {r['video']:24s} {r['frames']:6d} frames {r['labelled']:6d} labelled {r['unlabelled']:5d} "
                     f"unlabelled {r['gaps']:3d} gaps  {rng}")
    return lines


def summarize(ds: Dataset, windows_s=(), per_video: bool | None = None) -> str:
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
        f"labels    scaled by 1/{ds.label_scale:g}: {_label_range(v.labels[v.labelled])}",
        *coverage_lines(ds, per_video),
    ]
    frames_of = dict(zip(v.video_ids, lengths))
    sizes = ", ".join(f"{name} {len(ids)} videos / {sum(frames_of.get(i, 0) for i in ids)} frames"
                      for name in ("train", "dev", "test") for ids in [ds.split.of(name)])
    lines.append(f"split     {sizes} ({ds.split.source}, hash {ds.split.hash})")
    for w in windows_s:
        n = window_frames(w, ds.fps)
        win = make_windows(v, n, max_gap=1.5 / ds.fps, pad_short=True)
        lines.append(f"windows   {w:g} s = {n} frames: {len(win)} windows (stride 1), "
                     f"{int((win.padding > 0).sum())} of them padded (stretches shorter than the window)")
    for w in ds.audio_windows():
        a = ds.audio(w)
        lines.append(f"audio     audio_{w}s: {a.n_rows} rows, {a.dim} features, {len(a.video_ids)} videos"
                     + (", with labels" if a.labels is not None else ", labels from the video frames"))
    if not ds.audio_windows():
        lines.append("audio     none (video-only dataset: video, ffnn and baseline models apply)")
    return "\n".join(lines)
