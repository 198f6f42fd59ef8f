"""The train/dev/test samples of one experiment: frames, audio rows, video windows or fusion windows.

Every split is cut from the same tables by the dataset's video split, so all families and both
modalities of a fusion see the same videos.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from emo.core.config import SPLITS
from emo.core.errors import ConfigError, DataError
from emo.data.dataset import AUDIO_TABLES, Dataset
from emo.data.samples import FrameSamples, FusionSamples, SequenceSamples, WindowSamples, _Samples
from emo.data.segments import frame_means, make_segments
from emo.data.tables import FrameTable
from emo.data.windows import (
    AudioSync,
    Windows,
    audio_row_labels,
    frame_audio_rows,
    make_windows,
    span_means,
    sync_audio,
    time_ranges,
    window_frames,
    window_labels,
    window_span,
)

log = logging.getLogger(__name__)

KINDS = ("frame", "audio", "window", "fusion", "sequence")


@dataclass
class SampleIndex:
    """Where each sample comes from: its video and its time span (for predictions and plots)."""

    video_id: np.ndarray  # (n,) str
    start: np.ndarray  # (n,) seconds
    end: np.ndarray  # (n,) seconds


@dataclass
class Inputs:
    """Samples per split, the input sizes a model needs, and what was skipped on the way."""

    kind: str
    samples: dict[str, _Samples]
    index: dict[str, SampleIndex]
    dims: dict[str, int]
    notes: dict[str, object] = field(default_factory=dict)
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # input -> train mean, std

    def sizes(self) -> dict[str, int]:
        return {name: len(s) for name, s in self.samples.items()}


def train_stats(table: FrameTable, videos) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over the rows of `videos` (the training videos)."""
    chosen = np.flatnonzero(np.isin(table.video_ids, np.asarray(list(videos), dtype=str)))
    mean = np.zeros(table.dim, np.float64)
    sq = np.zeros(table.dim, np.float64)
    n = 0
    for k in chosen:  # per video, to avoid a copy of the whole training block
        block = table.features[table.offsets[k] : table.offsets[k + 1]].astype(np.float64)
        mean += block.sum(axis=0)
        sq += (block**2).sum(axis=0)
        n += len(block)
    mean /= max(n, 1)
    std = np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0.0))
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def _frame_inputs(ds: Dataset, splits, keep_unlabelled: bool) -> Inputs:
    v = ds.video
    row_video = v.row_video()
    samples, index = {}, {}
    for name in splits:
        rows = np.flatnonzero(
            np.isin(row_video, np.flatnonzero(np.isin(v.video_ids, ds.split.of(name)))) & (v.labelled | keep_unlabelled)
        )
        samples[name] = FrameSamples(v, rows, v.labels[rows])
        index[name] = SampleIndex(v.video_ids[row_video[rows]], v.times[rows], v.times[rows] + 1 / ds.fps)
    return Inputs("frame", samples, index, {"input_dim": v.dim}, stats={"video": train_stats(v, ds.split.train)})


def _audio_inputs(ds: Dataset, audio_window: int, splits, keep_unlabelled: bool) -> Inputs:
    a = ds.audio(audio_window)
    labels = audio_row_labels(a, ds.video, audio_window)
    unlabelled = np.isnan(labels).any(axis=1)
    if keep_unlabelled:
        unlabelled[:] = False
    elif unlabelled.all():
        raise DataError(
            f"{a.source}: no audio row overlaps a labelled video frame, so no audio row has a label. "
            f"Check that both tables use the same time origin (seconds from the video's start)."
        )
    if unlabelled.any():
        log.warning(
            "%s: %d of %d audio rows have no video frame inside them and no label of their own; they are left out.",
            a.source,
            int(unlabelled.sum()),
            a.n_rows,
        )
    row_video = a.row_video()
    samples, index = {}, {}
    for name in splits:
        keep = np.isin(a.video_ids[row_video], ds.split.of(name)) & ~unlabelled
        rows = np.flatnonzero(keep)
        samples[name] = FrameSamples(a, rows, labels[rows], modality="audio")
        index[name] = SampleIndex(a.video_ids[row_video[rows]], a.times[rows], a.times[rows] + audio_window)
    return Inputs(
        "audio",
        samples,
        index,
        {"input_dim": a.dim},
        {"unlabelled_audio_rows": int(unlabelled.sum()), "audio_window": audio_window},
        stats={"audio": train_stats(a, ds.split.train)},
    )


def _sequence_inputs(
    ds: Dataset, segment_s: float, hop_s: float, modality: str, audio_window: int | None, splits, keep_unlabelled: bool
) -> Inputs:
    """Segments of `segment_s` seconds every `hop_s` per split, reading `modality`; a segment without a
    labelled frame neither trains nor scores (kept with `keep_unlabelled`, for prediction)."""
    v = ds.video
    length, hop = max(1, round(segment_s * ds.fps)), max(1, round(hop_s * ds.fps))
    audio, rows, dims, stats = None, None, {"frames": length, "video_mask": 1}, {}
    if modality != "audio":
        dims["video_dim"], stats["video"] = v.dim, train_stats(v, ds.split.train)
    if modality != "video":
        have = ds.audio_windows()
        if not have:
            raise DataError(
                f"{ds.folder}: a sequence model on {modality} needs audio tables ({AUDIO_TABLES}), and this "
                f"dataset has none. Use modality=video, or add the audio tables."
            )
        audio_window = audio_window or min(have)  # the finest audio describes a frame best
        audio = ds.audio(audio_window)
        rows = frame_audio_rows(v, audio, audio_window)
        dims["audio_dim"], stats["audio"] = audio.dim, train_stats(audio, ds.split.train)
    samples, index = {}, {}
    for name in splits:
        seg = make_segments(v, length, hop, videos=ds.split.of(name))
        if not keep_unlabelled:
            labelled = v.labelled[seg.rows()] & seg.real()
            seg = seg.select(labelled.any(axis=1))
        if not len(seg):
            raise DataError(
                f"{v.source}: the {name} split has no labelled frame in its {len(ds.split.of(name))} videos."
            )
        samples[name] = SequenceSamples(v, seg, modality=modality, audio=audio, audio_rows=rows, fps=ds.fps)
        last = seg.starts + seg.lengths - 1
        index[name] = SampleIndex(v.video_ids[seg.video], v.times[seg.starts], v.times[last] + 1.0 / ds.fps)
    notes = {"segment_frames": length, "hop_frames": hop}
    if audio is not None:
        notes["audio_window"] = audio_window
        notes["frames_without_audio"] = int((rows < 0).sum())
    return Inputs("sequence", samples, index, dims, notes, stats)


def _window_inputs(
    ds: Dataset,
    kind: str,
    window_s: float,
    label: str,
    stride: int,
    audio_window: int | None,
    audio_len: int | None,
    splits,
    keep_unlabelled: bool,
    masked: bool | None,
) -> Inputs:
    """Window samples of `window_s` seconds per split, with their audio rows for `fusion`."""
    v = ds.video
    frames = window_frames(window_s, ds.fps)
    audio = ds.audio(audio_window) if kind == "fusion" else None
    _check_lengths(v, frames, window_s, ds, splits)
    # a step over 1.5 frame periods is a gap (frames dropped where no face was found); a stretch shorter
    # than the window (a 1-3 s AFEW-VA clip) gets one window padded at the start
    wins = {
        name: make_windows(v, frames, stride=stride, videos=ds.split.of(name), max_gap=1.5 / ds.fps, pad_short=True)
        for name in splits
    }
    wins, labels, unlabelled = _labelled_windows(v, wins, label, window_s, keep_unlabelled, masked)
    if masked is None:
        masked = any(w.padded for w in wins.values())
    syncs = {}
    if audio is not None:
        syncs = {name: sync_audio(v, w, audio, ds.fps) for name, w in wins.items()}
        _check_audio(v, audio, window_s, wins, syncs)
        if audio_len is None:
            # one fixed length, the longest in training: dev and test are cut to it, never define it
            audio_len = syncs["train"].max_len
    samples, index = _window_samples(ds, wins, labels, window_s, frames, masked, audio, syncs, audio_len)
    dims = {"input_dim": v.dim, "video_dim": v.dim, "frames": frames}
    if masked:
        dims["video_mask"] = 1  # the model takes a (B, T) mask of real frames
    stats = {"video": train_stats(v, ds.split.train)}
    notes = {
        "skipped_short_videos": sum(len(w.skipped_videos) for w in wins.values()),
        "unlabelled_windows": unlabelled,
        "padded_windows": int(sum(int((w.padding > 0).sum()) for w in wins.values())),
    }
    if audio is not None:
        dims.update(audio_dim=audio.dim, audio_len=int(audio_len))
        stats["audio"] = train_stats(audio, ds.split.train)
        notes["audio_window"] = audio_window
    return Inputs(kind, samples, index, dims, notes, stats)


def _labelled_windows(
    v: FrameTable,
    wins: dict[str, Windows],
    label: str,
    window_s: float,
    keep_unlabelled: bool,
    masked: bool | None,
) -> tuple[dict[str, Windows], dict[str, np.ndarray], int]:
    """Each split's windows whose label is known (all with `keep_unlabelled`), their labels, and how
    many were left out for an unknown label."""
    kept, labels = {}, {}
    unlabelled = 0
    for name, w in wins.items():
        y = window_labels(v, w, label)
        known = ~np.isnan(y).any(axis=1) | keep_unlabelled  # unknown labels never train nor score
        unlabelled += int((~known).sum())
        if masked is False and w.padded:  # a model trained without padding cannot read padded windows
            log.warning(
                "%d window(s) of recordings shorter than %g s are left out: the model was trained "
                "without padded windows.",
                int((w.padding > 0).sum()),
                window_s,
            )
            known &= w.padding == 0
        kept[name], labels[name] = w.select(known), y[known]
    return kept, labels, unlabelled


def _window_samples(
    ds: Dataset,
    wins: dict[str, Windows],
    labels: dict[str, np.ndarray],
    window_s: float,
    frames: int,
    masked: bool,
    audio: FrameTable | None,
    syncs: dict[str, AudioSync],
    audio_len: int | None,
) -> tuple[dict[str, _Samples], dict[str, SampleIndex]]:
    """Each split's window (or, with `audio`, fusion) samples and where they come from; a split
    without a window is an error."""
    v = ds.video
    samples, index = {}, {}
    for name, w in wins.items():
        if not len(w):
            raise DataError(
                f"{v.source}: the {name} split has no labelled window of {window_s:g} s ({frames} "
                f"frames) in its {len(ds.split.of(name))} videos. Check the labels (`emo data check`)."
            )
        if audio is None:
            samples[name] = WindowSamples(v, w, labels[name], masked=masked)
        else:
            samples[name] = FusionSamples(v, w, labels[name], audio, syncs[name].cut(audio_len), masked=masked)
        start, end = window_span(v, w, ds.fps)
        index[name] = SampleIndex(v.video_ids[w.video], start, end)
    return samples, index


def _check_lengths(v: FrameTable, frames: int, window_s: float, ds: Dataset, splits) -> None:
    """A window longer than every recording of a split would make each of them one padded window, and
    the model would never see a whole one: an error with the lengths. Longer than some: a warning
    with the count (those get one padded window each)."""
    for name in splits:
        chosen = np.isin(v.video_ids, np.asarray(ds.split.of(name), dtype=str))
        n = v.lengths[chosen]
        n = n[n > 0]
        short = n < frames
        if not len(n) or not short.any():
            continue
        seconds = np.sort(n / ds.fps)
        if short.all():
            raise DataError(
                f"{v.source}: the window of {window_s:g} s ({frames} frames) is longer than every "
                f"recording of the {name} split ({len(n)} recordings of {seconds[0]:g}-{seconds[-1]:g} s, "
                f"median {np.median(seconds):g} s), so every window would be one recording padded at "
                f"the start. Use a window of at most {seconds[-1]:g} s."
            )
        log.warning(
            "%s: %d of %d recordings of the %s split are shorter than the %g s window (%g-%g s); each "
            "gives one window, padded at the start and masked.",
            v.source,
            int(short.sum()),
            len(n),
            name,
            window_s,
            seconds[0],
            float(np.max(n[short]) / ds.fps),
        )


def _check_audio(
    v: FrameTable, audio: FrameTable, window_s: float, wins: dict[str, Windows], syncs: dict[str, AudioSync]
) -> None:
    """Fusion windows without audio train the model on video alone, every audio mask False: a split
    with no audio in any window is an error, videos with none are named in a warning."""
    for name, w in wins.items():
        if len(w) and not syncs[name].count.any():
            vid = v.video_ids[w.video[0]]
            raise DataError(
                f"{audio.source}: no audio row falls inside any {window_s:g} s window of the {name} "
                f"split ({len(np.unique(w.video))} videos), so fusion would see no audio at all. Check "
                f"the time bases: audio timestamps must be seconds from the video's start, like the "
                f"video timestamps ({time_ranges(v, audio, vid)}). `emo data check` shows the audio "
                f"coverage of every video."
            )
    with_audio = np.zeros(len(v.video_ids), np.int64)
    has_windows = np.zeros(len(v.video_ids), bool)
    for name, w in wins.items():
        np.add.at(with_audio, w.video, syncs[name].count > 0)
        has_windows[w.video] = True
    silent = v.video_ids[has_windows & (with_audio == 0)]
    if len(silent):
        log.warning(
            "%s: %d video(s) have no audio row inside any %g s window, so their windows carry video "
            "alone: %s%s. Check those videos' audio timestamps (%s).",
            audio.source,
            len(silent),
            window_s,
            ", ".join(map(str, silent[:10])),
            " …" if len(silent) > 10 else "",
            time_ranges(v, audio, silent[0]),
        )


def frame_predictions(
    samples: SequenceSamples, step_preds: np.ndarray, *, labelled_only: bool = True
) -> tuple[SampleIndex, np.ndarray, np.ndarray]:
    """A sequence model's predictions per frame (overlapping segments averaged): where each frame is,
    its labels and the prediction; with `labelled_only`, only the frames that are scored."""
    table = samples.table
    rows, pred = frame_means(samples.segments, step_preds, table.n_rows)
    truth = table.labels[rows]
    if labelled_only:
        keep = ~np.isnan(truth).any(axis=1)
        rows, pred, truth = rows[keep], pred[keep], truth[keep]
    vid = table.video_ids[table.row_video()[rows]]
    return SampleIndex(vid, table.times[rows], table.times[rows] + 1.0 / samples.fps), truth, pred


def window_predictions(
    ds: Dataset, samples: SequenceSamples, step_preds: np.ndarray, window_s: float, label: str, split: str = "test"
) -> tuple[SampleIndex, np.ndarray, np.ndarray]:
    """A sequence model scored like a windowed cell of `window_s` seconds and `label`: on exactly the
    windows and targets that cell has in `split` (stride 1), its prediction at each window's last
    frame (`last`) or its mean over the window's frames (`mean`)."""
    v = ds.video
    frames = window_frames(window_s, ds.fps)
    wins = {split: make_windows(v, frames, stride=1, videos=ds.split.of(split), max_gap=1.5 / ds.fps, pad_short=True)}
    wins, labels, _ = _labelled_windows(v, wins, label, window_s, keep_unlabelled=False, masked=None)
    w = wins[split]
    rows, pred = frame_means(samples.segments, step_preds, v.n_rows)
    per_row = np.full((v.n_rows, 2), np.nan, np.float32)
    per_row[rows] = pred
    p = per_row[w.last] if label == "last" else span_means(per_row, w.starts, w.length - w.padding)
    start, end = window_span(v, w, ds.fps)
    return SampleIndex(v.video_ids[w.video], start, end), labels[split], p


def choose_audio_window(window_s: float, have: list[int]) -> int:
    """The audio table of a fusion window: the one as long as the window, else the longest one shorter
    than it (audio_4s for a 9 s window), else the shortest there is."""
    shorter = [w for w in have if w <= window_s]
    return max(shorter) if shorter else min(have)


def build_inputs(
    ds: Dataset,
    kind: str,
    *,
    window_s: float = 1.0,
    label: str = "mean",
    stride: int = 1,
    audio_window: int | None = None,
    audio_len: int | None = None,
    splits=SPLITS,
    keep_unlabelled: bool = False,
    masked: bool | None = None,
    segment_s: float = 20.0,
    hop_s: float = 10.0,
    modality: str = "video",
) -> Inputs:
    """Samples of `kind` for the `splits` (train/dev/test).

    `frame`: one sample per video frame. `audio`: one per row of the `audio_{audio_window}s` table.
    `window`: windows of `window_s` seconds. `fusion`: those windows with their audio rows from
    `audio_{audio_window}s` (default: see `choose_audio_window`). `sequence`: segments of `segment_s`
    seconds every `hop_s`, of `modality` (video, audio aligned to the frames, or both), a target per frame.
    For prediction, `keep_unlabelled` keeps samples whose label is unknown (NaN), and `masked` says
    whether the model reads `video_mask` (None: whenever a window is padded).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown input kind {kind!r}; choose one of {', '.join(KINDS)}.")
    if kind == "frame":
        return _frame_inputs(ds, splits, keep_unlabelled)
    if kind == "audio":
        return _audio_inputs(ds, int(audio_window or window_s), splits, keep_unlabelled)
    if kind == "sequence":
        return _sequence_inputs(ds, segment_s, hop_s, modality, audio_window, splits, keep_unlabelled)
    if kind == "fusion" and audio_window is None:
        have = ds.audio_windows()
        if not have:
            raise DataError(
                f"{ds.folder}: fusion needs audio tables ({AUDIO_TABLES}), and this dataset has "
                f"none (like AFEW-VA). Use a video model, or add the audio tables."
            )
        audio_window = choose_audio_window(window_s, have)
        if audio_window != window_s:
            log.warning(
                "%s: no audio_%gs table: fusion windows of %g s take their audio rows from audio_%ds "
                "(logged as data_audio_window; set audio_window to choose another of %s).",
                ds.folder,
                window_s,
                window_s,
                audio_window,
                ", ".join(f"{w}" for w in have),
            )
    return _window_inputs(ds, kind, window_s, label, stride, audio_window, audio_len, splits, keep_unlabelled, masked)
