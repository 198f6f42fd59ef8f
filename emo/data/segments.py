"""Segments for sequence models: long runs of a video's frames, as indices, and the per-frame mean of
the predictions of overlapping segments.

A segment is `length` consecutive rows of one video in the frame table, starting every `hop` rows;
the last one of a video ends at its last frame, so every frame is in at least one segment. A video
shorter than `length` is one segment padded at the end (its mask says which steps are real).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emo.data.tables import FrameTable


@dataclass(frozen=True)
class Segments:
    """Rows `starts[i] … starts[i] + lengths[i] - 1` of the frame table, padded at the end to `length`."""

    starts: np.ndarray  # (n,) int64 first row
    lengths: np.ndarray  # (n,) int64 real steps, at most `length`
    video: np.ndarray  # (n,) int64 index into the table's video_ids
    length: int

    def __len__(self) -> int:
        return len(self.starts)

    def real(self) -> np.ndarray:
        """(n, length) bool: the steps that are frames (not padding)."""
        return np.arange(self.length) < self.lengths[:, None]

    def rows(self) -> np.ndarray:
        """(n, length) the frame-table row of every step (a padded step repeats the segment's first row)."""
        return np.where(self.real(), self.starts[:, None] + np.arange(self.length), self.starts[:, None])

    def select(self, keep: np.ndarray) -> Segments:
        return Segments(self.starts[keep], self.lengths[keep], self.video[keep], self.length)


def make_segments(table: FrameTable, length: int, hop: int, videos=None) -> Segments:
    """Every video of `videos` (default: all) cut into segments of `length` frames every `hop` frames."""
    if length < 1 or not 1 <= hop <= length:
        raise ValueError(f"segments need length >= 1 and 1 <= hop <= length (got {length}, {hop})")
    chosen = np.arange(len(table.video_ids))
    if videos is not None:
        chosen = np.flatnonzero(np.isin(table.video_ids, np.asarray(list(videos), dtype=str)))
    n = table.lengths[chosen]
    chosen, n = chosen[n > 0], n[n > 0]
    over = np.maximum(n - length, 0)
    # the segments that fit every hop, and one more ending at the last frame when they do not reach it
    counts = np.where(n <= length, 1, over // hop + 1 + (over % hop > 0))
    video = np.repeat(chosen, counts)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # index within its video
    local = np.minimum(j * hop, np.repeat(over, counts))
    return Segments(table.offsets[video] + local, np.minimum(length, table.lengths[video]), video, length)


def frame_means(segments: Segments, values: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame rows the segments cover, and per row the mean of `values` (n, length, C) over the
    segments' real steps on it: overlapping predictions of one frame are averaged."""
    real = segments.real()
    rows = segments.rows()[real]
    counts = np.bincount(rows, minlength=n_rows)
    covered = np.flatnonzero(counts)
    picked = values[real].astype(np.float64)
    means = np.stack([np.bincount(rows, picked[:, c], minlength=n_rows) for c in range(picked.shape[1])], axis=1)
    return covered, (means[covered] / counts[covered, None]).astype(np.float32)
