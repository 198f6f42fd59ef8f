"""Windows over frame tables and their synchronisation with audio rows, as integer indices.

A window is `length` consecutive rows of one video, represented by the row index of its
first frame. Nothing here copies features: batches gather them later, so memory stays
O(frames) whatever the number of windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from emo.core.config import LABELS
from emo.core.errors import DataError
from emo.data.tables import FrameTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Windows:
    """Windows of `length` steps whose first real frame is row `starts` of a video table.

    A stretch of frames shorter than the window (an AFEW-VA clip of 1-3 s, say) gives one window
    of its frames preceded by `pad` padding steps, which batches mask out.
    """

    starts: np.ndarray  # (n,) int64 row of each window's first real frame
    video: np.ndarray  # (n,) int64 index into the table's video_ids
    length: int
    skipped_videos: tuple[str, ...] = ()
    pad: np.ndarray | None = None  # (n,) int64 padding steps before the first real frame; None: none

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def padding(self) -> np.ndarray:
        return np.zeros(len(self.starts), np.int64) if self.pad is None else self.pad

    @property
    def last(self) -> np.ndarray:
        """(n,) row of each window's last frame."""
        return self.starts + self.length - 1 - self.padding

    @property
    def padded(self) -> bool:
        return self.pad is not None and bool(self.pad.any())

    def select(self, keep: np.ndarray) -> Windows:
        """The windows where `keep` (a bool mask or indices) holds."""
        return Windows(
            self.starts[keep],
            self.video[keep],
            self.length,
            self.skipped_videos,
            None if self.pad is None else self.pad[keep],
        )


def window_frames(window_s: float, fps: float) -> int:
    """Frames in a window of `window_s` seconds (5, 10, 15, 20 for 1–4 s at 5 fps)."""
    n = int(round(window_s * fps))
    if n < 1 or abs(n - window_s * fps) > 1e-6:
        raise DataError(
            f"a window of {window_s:g} s at {fps:g} fps is {window_s * fps:g} frames; it must be a whole "
            f"number of frames, at least 1. Choose another --window."
        )
    return n


def _segments(table: FrameTable, max_gap: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(first row, video) of every run of frames with no time step above `max_gap` inside one video."""
    starts = table.offsets[:-1][table.lengths > 0]
    if max_gap is not None:
        gaps = np.flatnonzero(np.diff(table.times) > max_gap) + 1
        starts = np.union1d(starts, gaps)
    return starts, np.searchsorted(table.offsets, starts, side="right") - 1


def stretches(table: FrameTable, max_gap: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first row, video, length in frames) of every run of frames without a gap above `max_gap`."""
    start, video = _segments(table, max_gap)
    return start, video, np.diff(np.append(start, table.n_rows))


def make_windows(
    table: FrameTable,
    length: int,
    *,
    stride: int = 1,
    videos=None,
    max_gap: float | None = None,
    pad_short: bool = False,
) -> Windows:
    """All windows of `length` frames, every `stride` frames, within each selected video.

    `videos` is an iterable of video ids (default: all). With `max_gap` (seconds), a window never
    spans a time step longer than that (frames missing where no face was found), so a "1 s"
    window always covers about 1 s. A stretch of fewer than `length` frames gets one window padded
    at the start with `pad_short`; otherwise it has none, and a video left without any window is
    logged and counted in `skipped_videos`, never dropped silently.
    """
    if length < 1 or stride < 1:
        raise DataError(f"window length ({length}) and stride ({stride}) must be at least 1 frame.")
    if videos is None:
        chosen = np.arange(len(table.video_ids))
    else:
        chosen = np.flatnonzero(np.isin(table.video_ids, np.asarray(list(videos), dtype=str)))
    seg_start, seg_video = _segments(table, max_gap)
    seg_len = np.diff(np.append(seg_start, table.n_rows))
    keep = np.isin(seg_video, chosen)
    if max_gap is not None and (n_gaps := int(keep.sum()) - int((table.lengths[chosen] > 0).sum())):
        log.info(
            "%s: %d gap(s) longer than %.2f s between frames; windows do not span them.", table.source, n_gaps, max_gap
        )
    fits = keep & (seg_len >= length)
    short = keep & (seg_len < length) & (seg_len > 0) if pad_short else np.zeros(len(seg_len), bool)
    skipped = _skipped_videos(table, np.setdiff1d(chosen, seg_video[fits | short]), length)
    if short.any():
        log.info(
            "%s: %d stretch(es) shorter than %d frames get one window each, padded at the start and masked.",
            table.source,
            int(short.sum()),
            length,
        )
    counts = np.where(fits, (seg_len - length) // stride + 1, short.astype(np.int64))
    pad = np.where(short, length - seg_len, 0) if pad_short else None
    return _spread(seg_start, seg_video, counts, pad, length, stride, skipped)


def _skipped_videos(table: FrameTable, skipped_idx: np.ndarray, length: int) -> tuple[str, ...]:
    """The ids of the videos at `skipped_idx`, which get no window, logged so none is dropped silently."""
    skipped = tuple(table.video_ids[skipped_idx].tolist())
    if skipped:
        log.warning(
            "%s: %d video(s) without %d consecutive frames were skipped (%s%s).",
            table.source,
            len(skipped),
            length,
            ", ".join(skipped[:5]),
            " …" if len(skipped) > 5 else "",
        )
    return skipped


def _spread(
    seg_start: np.ndarray,
    seg_video: np.ndarray,
    counts: np.ndarray,
    pad: np.ndarray | None,
    length: int,
    stride: int,
    skipped: tuple[str, ...],
) -> Windows:
    """`counts[i]` windows of stretch i, `stride` rows apart from its first row; `pad[i]` padding steps
    before each of them (None: no padding at all)."""
    total = int(counts.sum())
    # position of each window within its stretch: 0, 1, 2, ... restarting at every stretch
    rank = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return Windows(
        starts=np.repeat(seg_start, counts) + rank * stride,
        video=np.repeat(seg_video, counts),
        length=length,
        skipped_videos=skipped,
        pad=None if pad is None else np.repeat(pad, counts),
    )


def window_labels(table: FrameTable, windows: Windows, how: str = "mean") -> np.ndarray:
    """(n, 2) label of each window: the mean of its labelled frames' labels, or its last frame's.

    NaN where that is not known: the last frame is unlabelled, or (mean) fewer than half of the
    window's real frames are labelled.
    """
    if how not in LABELS:
        raise DataError(f"unknown window label {how!r}; choose one of {', '.join(LABELS)}.")
    if how == "last":
        return table.labels[windows.last]
    return _mean_labels(table, windows.starts, windows.length - windows.padding, min_share=0.5)


def _mean_labels(table: FrameTable, first: np.ndarray, count: np.ndarray, *, min_share: float = 0.0) -> np.ndarray:
    """(n, 2) mean label of the labelled rows among first[i] : first[i] + count[i], by cumulative sums;
    NaN where none is labelled, or fewer than `min_share` of them."""
    return span_means(table.labels, first, count, min_share=min_share)


def span_means(values: np.ndarray, first: np.ndarray, count: np.ndarray, *, min_share: float = 0.0) -> np.ndarray:
    """(n, 2) mean of the known (not NaN) rows of `values` among first[i] : first[i] + count[i], by
    cumulative sums; NaN where none is known, or fewer than `min_share` of them."""
    labelled = ~np.isnan(values[:, 0])
    csum = np.zeros((len(values) + 1, 2), np.float64)
    np.cumsum(np.where(labelled[:, None], values, 0.0), axis=0, out=csum[1:])
    ccount = np.zeros(len(values) + 1, np.int64)
    np.cumsum(labelled, out=ccount[1:])
    n = ccount[first + count] - ccount[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[first + count] - csum[first]) / n[:, None]
    out[(n == 0) | (n < min_share * count)] = np.nan
    return out.astype(np.float32)


def _match_ids(ids: np.ndarray, sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each of `ids` in `sorted_ids`, and whether it is there at all."""
    if not len(sorted_ids):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == ids


def window_span(table: FrameTable, windows: Windows, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) seconds of each window: [first frame's time, last frame's time + 1/fps)."""
    return table.times[windows.starts], table.times[windows.last] + 1.0 / fps


def _rows_in_spans(
    video: FrameTable, vid_index: np.ndarray, start: np.ndarray, end: np.ndarray, other: FrameTable
) -> tuple[np.ndarray, np.ndarray]:
    """For spans [start, end) of videos `vid_index` (into `video.video_ids`), the first row of
    `other` of the same video with time in the span, and how many follow."""
    first = np.zeros(len(start), np.int64)
    count = np.zeros(len(start), np.int64)
    pos, has = _match_ids(video.video_ids, other.video_ids)
    # one searchsorted per video (not per window): windows are grouped by video after sorting
    order = np.argsort(vid_index, kind="stable")
    bounds = np.searchsorted(vid_index[order], np.arange(len(video.video_ids) + 1))
    for k in np.flatnonzero(np.diff(bounds)):
        if not has[k]:
            continue
        sel = order[bounds[k] : bounds[k + 1]]
        lo, hi = other.offsets[pos[k]], other.offsets[pos[k] + 1]
        t = other.times[lo:hi]
        a = np.searchsorted(t, start[sel], side="left")
        b = np.searchsorted(t, end[sel], side="left")
        first[sel] = lo + a
        count[sel] = b - a
    return first, count


@dataclass(frozen=True)
class AudioSync:
    """For each video window, the audio rows of its video with time in the window."""

    first: np.ndarray  # (n,) int64 first audio row (in the audio table)
    count: np.ndarray  # (n,) int64 rows used, at most max_len
    max_len: int
    truncated: int = 0  # windows that had more than max_len audio rows

    def cut(self, max_len: int) -> AudioSync:
        """The same pairing with sequences truncated to their first `max_len` rows (and counted)."""
        if max_len < 1:
            raise DataError(f"the audio sequence length must be at least 1 (got {max_len}).")
        truncated = int((self.count > max_len).sum())
        if truncated:
            log.info(
                "%d of %d windows had more than %d audio rows; truncated to the first %d.",
                truncated,
                len(self.count),
                max_len,
                max_len,
            )
        return AudioSync(self.first, np.minimum(self.count, max_len), int(max_len), truncated)


def sync_audio(
    video: FrameTable, windows: Windows, audio: FrameTable, fps: float, max_len: int | None = None
) -> AudioSync:
    """Pair each window with its video's audio rows whose timestamp falls in [start, end).

    Sequences longer than `max_len` are truncated to their first `max_len` rows (and counted);
    shorter ones are padded at batch time with a mask. `max_len=None` takes the longest.
    """
    start, end = window_span(video, windows, fps)
    first, count = _rows_in_spans(video, windows.video, start, end, audio)
    longest = AudioSync(first, count, max(int(count.max()) if len(count) else 0, 1))
    return longest if max_len is None else longest.cut(max_len)


def frames_with_audio(video: FrameTable, audio: FrameTable, span_s: float) -> np.ndarray:
    """(N,) bool: video frames with an audio row of their video timed in [frame time, frame time + span_s),
    i.e. whether a window of `span_s` seconds starting at that frame gets any audio."""
    _, count = _rows_in_spans(video, video.row_video(), video.times, video.times + span_s, audio)
    return count > 0


def time_ranges(video: FrameTable, audio: FrameTable, vid: str) -> str:
    """Video `vid`'s frame times and audio times in words: a mismatch of time bases shows at a glance."""
    parts = []
    for what, table in (("frames", video), ("audio rows", audio)):
        k = np.searchsorted(table.video_ids, vid)
        if k < len(table.video_ids) and table.video_ids[k] == vid and table.lengths[k]:
            t = table.times[table.offsets[k] : table.offsets[k + 1]]
            parts.append(f"{what} from {t[0]:.2f} to {t[-1]:.2f} s")
        else:
            parts.append(f"no {what}")
    return f"video {str(vid)!r} has {' and '.join(parts)}"


def audio_row_labels(audio: FrameTable, video: FrameTable, window_s: float) -> np.ndarray:
    """(n_audio, 2) labels of audio rows: their own, else the mean of the video frames' labels
    in [timestamp, timestamp + window_s). Rows with no frame inside get NaN."""
    if audio.labels is not None:
        return audio.labels
    vid, known = _match_ids(audio.video_ids, video.video_ids)
    row_vid = np.where(known, vid, -1)[audio.row_video()]
    ok = row_vid >= 0
    first, count = np.zeros(audio.n_rows, np.int64), np.zeros(audio.n_rows, np.int64)
    first[ok], count[ok] = _rows_in_spans(video, row_vid[ok], audio.times[ok], audio.times[ok] + window_s, video)
    return _mean_labels(video, first, count)


def frame_audio_rows(video: FrameTable, audio: FrameTable, window_s: float) -> np.ndarray:
    """(N,) the audio row that describes each video frame: of the audio rows of its video whose window
    [t_a, t_a + window_s) holds the frame's time, the latest; -1 where none does (a gap in the audio)."""
    eps = 1e-9  # a frame at exactly t_a + window_s belongs to the next audio window, not this one
    first, count = _rows_in_spans(video, video.row_video(), video.times - window_s + eps, video.times + eps, audio)
    return np.where(count > 0, first + count - 1, -1)
