"""A human-readable summary of a loaded dataset, for `emo data check`."""

from __future__ import annotations

import numpy as np

from emo.core.config import SPLITS
from emo.core.errors import DataError
from emo.data.dataset import Dataset
from emo.data.windows import frames_with_audio, make_windows, stretches, time_ranges, window_frames


def _label_range(labels: np.ndarray) -> str:
    if not len(labels):
        return "none"
    return ", ".join(
        f"{name} [{labels[:, j].min():+.3f}, {labels[:, j].max():+.3f}] mean {labels[:, j].mean():+.3f}"
        for j, name in enumerate(("valence", "arousal"))
    )


def audio_coverage(ds: Dataset) -> dict[int, np.ndarray]:
    """Per audio table `audio_{w}s`: (V,) how many frames of each video have an audio row in the
    w-second window that starts at the frame (0 everywhere when the time bases disagree)."""
    v = ds.video
    return {
        w: np.bincount(v.row_video(), weights=frames_with_audio(v, ds.audio(w), w), minlength=len(v.video_ids)).astype(
            np.int64
        )
        for w in ds.audio_windows()
    }


def coverage(ds: Dataset, audio: dict[int, np.ndarray] | None = None) -> list[dict]:
    """Per video: frames, labelled and unlabelled frames, gaps (steps over 1.5 frames), label range and,
    per audio table, the frames whose window holds audio."""
    v = ds.video
    audio = audio_coverage(ds) if audio is None else audio
    labelled = v.labelled
    gap = np.r_[np.diff(v.times) > 1.5 / ds.fps, False]
    rows = []
    for k, vid in enumerate(v.video_ids):
        lo, hi = v.offsets[k], v.offsets[k + 1]
        lab = labelled[lo:hi]
        y = v.labels[lo:hi][lab] * ds.label_scale
        rows.append(
            {
                "video": str(vid),
                "frames": int(hi - lo),
                "labelled": int(lab.sum()),
                "unlabelled": int((~lab).sum()),
                "gaps": int(gap[lo : hi - 1].sum()) if hi - lo > 1 else 0,
                "range": None if not len(y) else (y.min(axis=0), y.max(axis=0)),
                "audio": {w: int(n[k]) for w, n in audio.items()},
            }
        )
    return rows


def coverage_lines(ds: Dataset, per_video: bool | None = None, audio: dict[int, np.ndarray] | None = None) -> list[str]:
    """The coverage table: every video when asked (default: up to 20 videos), else the least labelled."""
    rows = coverage(ds, audio)
    total = {k: sum(r[k] for r in rows) for k in ("frames", "labelled", "unlabelled", "gaps")}
    lines = [
        f"coverage  {total['labelled']} labelled frames, {total['unlabelled']} unlabelled, {total['gaps']} gaps "
        f"in {len(rows)} videos"
    ]
    shown = (
        rows
        if (per_video or (per_video is None and len(rows) <= 20))
        else sorted(rows, key=lambda r: r["labelled"] / max(r["frames"], 1))[:5]
    )
    if shown is not rows:
        lines.append(f"          the 5 least labelled videos (--per-video lists all {len(rows)}):")
    for r in shown:
        rng = (
            "no labels"
            if r["range"] is None
            else (
                f"valence [{r['range'][0][0]:+.2f}, {r['range'][1][0]:+.2f}] "
                f"arousal [{r['range'][0][1]:+.2f}, {r['range'][1][1]:+.2f}]"
            )
        )
        sound = "".join(
            f"  audio_{w}s {n}/{r['frames']}" + (" NO AUDIO" if not n else "") for w, n in r["audio"].items()
        )
        lines.append(
            f"  {r['video']:24s} {r['frames']:6d} frames {r['labelled']:6d} labelled {r['unlabelled']:5d} "
            f"unlabelled {r['gaps']:3d} gaps  {rng}{sound}"
        )
    return lines


def _few(ids) -> str:
    ids = [str(i) for i in ids]
    return ", ".join(ids[:5]) + (f" … ({len(ids)} in all)" if len(ids) > 5 else "")


def summarize(ds: Dataset, windows_s=(), per_video: bool | None = None) -> str:
    """Videos, frames, duration, fps, dims, label ranges, split sizes and audio tables of `ds`.

    A defect that would stop or silently spoil training (no window of a requested length, an audio
    table none of whose rows falls inside a split's windows) is listed in the summary and raised as a
    DataError holding the summary, so that `emo data check` fails.
    """
    audio = audio_coverage(ds)
    lines = [*_overview_lines(ds), *coverage_lines(ds, per_video, audio), _split_line(ds)]
    problems = []
    for w in windows_s:
        line, problem = _window_line(ds, w)
        lines.append(line)
        if problem:
            problems.append(problem)
    for w, frames in audio.items():
        lines += _audio_lines(ds, w, frames)
        if problem := _audio_problem(ds, w, frames):
            problems.append(problem)
    if not audio:
        lines.append("audio     none (video-only dataset: video, ffnn and baseline models apply)")
    text = "\n".join(lines)
    if problems:
        raise DataError(
            f"{ds.folder}: the check failed:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n\nwhat was read:\n{text}"
        )
    return text


def _overview_lines(ds: Dataset) -> list[str]:
    """The dataset, its video table, its durations and its label ranges."""
    v = ds.video
    seconds = v.lengths / ds.fps
    return [
        f"dataset   {ds.name} ({ds.folder})" + ("  [SYNTHETIC data, not a real corpus]" if ds.synthetic else ""),
        f"video     {v.source.name}: {len(v.video_ids)} videos, {v.n_rows} frames, {v.dim}-dim features, "
        f"{ds.fps:g} fps",
        f"duration  {seconds.sum() / 3600:.2f} h in all; per video min {seconds.min():.1f} s, "
        f"median {np.median(seconds):.1f} s, max {seconds.max():.1f} s",
        f"labels    scaled by 1/{ds.label_scale:g}: {_label_range(v.labels[v.labelled])}",
    ]


def _split_line(ds: Dataset) -> str:
    """Each split's videos and frames, and where the split came from."""
    frames_of = dict(zip(ds.video.video_ids, ds.video.lengths))
    sizes = ", ".join(
        f"{name} {len(ids)} videos / {sum(frames_of.get(i, 0) for i in ids)} frames"
        for name in SPLITS
        for ids in [ds.split.of(name)]
    )
    return f"split     {sizes} ({ds.split.source}, hash {ds.split.hash})"


def _window_line(ds: Dataset, w: float) -> tuple[str, str | None]:
    """How many windows of `w` seconds there are, and the problem when none is whole."""
    v = ds.video
    n = window_frames(w, ds.fps)
    win = make_windows(v, n, max_gap=1.5 / ds.fps, pad_short=True)
    if not int((win.padding == 0).sum()):
        longest = int(stretches(v, 1.5 / ds.fps)[2].max())
        problem = (
            f"no window of {w:g} s ({n} frames) exists: the longest run of consecutive frames is "
            f"{longest} frames ({longest / ds.fps:g} s), so every window would be padded. Choose a "
            f"--window of at most {longest / ds.fps:g} s."
        )
        return f"windows   {w:g} s = {n} frames: NONE; {problem}", problem
    line = (
        f"windows   {w:g} s = {n} frames: {len(win)} windows (stride 1), "
        f"{int((win.padding > 0).sum())} of them padded (stretches shorter than the window)"
    )
    return line, None


def _audio_lines(ds: Dataset, w: int, frames: np.ndarray) -> list[str]:
    """The `audio_{w}s` table, how many frames' windows hold its rows, and the videos with none."""
    v, a = ds.video, ds.audio(w)
    lines = [
        f"audio     audio_{w}s: {a.n_rows} rows, {a.dim} features, {len(a.video_ids)} videos"
        + (", with labels" if a.labels is not None else ", labels from the video frames"),
        f"          audio rows inside the {w} s window starting at {int(frames.sum())} of {v.n_rows} "
        f"frames; {int((frames > 0).sum())} of {len(frames)} videos have audio in some window",
    ]
    silent = v.video_ids[frames == 0]
    if len(silent):
        lines.append(
            f"          NO audio row inside any window of {len(silent)} video(s): {_few(silent)} "
            f"({time_ranges(v, a, silent[0])})"
        )
    return lines


def _audio_problem(ds: Dataset, w: int, frames: np.ndarray) -> str | None:
    """The problem when no window of some split's videos holds an `audio_{w}s` row (fusion would raise)."""
    v = ds.video
    empty = []
    for name in SPLITS:
        chosen = np.isin(v.video_ids, np.asarray(ds.split.of(name), dtype=str))
        if chosen.any() and not frames[chosen].any():
            empty.append((name, v.video_ids[chosen][0]))
    if not empty:
        return None
    return (
        f"audio_{w}s: no audio row falls inside any {w} s window of the "
        f"{' and '.join(name for name, _ in empty)} videos, so fusion would train or score on video alone. "
        f"Check the time bases: the audio timestamps must be seconds from the video's start, like the video "
        f"timestamps ({time_ranges(v, ds.audio(w), empty[0][1])})."
    )
