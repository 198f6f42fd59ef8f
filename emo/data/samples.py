"""Torch datasets of frame, window and fusion samples, gathered a whole batch at a time.

Each dataset holds references to one contiguous feature array and integer indices; its
`__getitems__` gathers a batch with one fancy-indexing call per input, so a `DataLoader`
built by `loader()` does no per-sample Python work.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from emo.data.segments import Segments
from emo.data.tables import FrameTable
from emo.data.windows import AudioSync, Windows


@dataclass
class Batch:
    """What every torch model takes: `model(**batch.inputs())`; `target` is (B, 2) in [-1, 1], or (B, T, 2)
    for a sequence model, whose `target_mask` says which steps are scored (labelled frames, not padding)."""

    target: torch.Tensor  # (B, 2) or (B, T, 2)
    video: torch.Tensor | None = None  # (B, D) frames or (B, T, D) windows
    audio: torch.Tensor | None = None  # (B, Da) audio rows or (B, Ta, Da) sequences
    audio_mask: torch.Tensor | None = None  # (B, Ta) bool, True = a real audio step
    video_mask: torch.Tensor | None = None  # (B, T) bool, True = a real frame (windows padded at the start)
    target_mask: torch.Tensor | None = None  # (B, T) bool, True = a step whose target counts

    def inputs(self) -> dict[str, torch.Tensor]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("target", "target_mask") and getattr(self, f.name) is not None
        }

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Page-locked copies, so that `to(cuda, non_blocking=True)` overlaps the copy with compute
        (a DataLoader with `pin_memory=True` calls this)."""
        return self._map(torch.Tensor.pin_memory)

    def _map(self, fn) -> Batch:
        return Batch(
            **{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name)) for f in fields(self)}
        )

    def __len__(self) -> int:
        return len(self.target)


class _Samples(Dataset):
    """Base: `__getitem__(i)` is `__getitems__([i])` so single samples and batches agree."""

    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Batch:
        return self.__getitems__([i])

    def scored_labels(self) -> np.ndarray:
        """(n, 2): the labels the samples are scored on (the mean predictor's, for one)."""
        return self.labels.numpy()

    def __getitems__(self, idx) -> Batch:  # pragma: no cover - abstract
        raise NotImplementedError


class FrameSamples(_Samples):
    """One sample per table row (per frame, or per audio row for the audio model)."""

    def __init__(self, table: FrameTable, rows: np.ndarray, labels: np.ndarray, *, modality: str = "video"):
        self.features = torch.from_numpy(table.features)
        self.rows = torch.as_tensor(rows, dtype=torch.long)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)
        self.modality = modality

    def __getitems__(self, idx) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Batch(target=self.labels[idx], **{self.modality: self.features[self.rows[idx]]})


class WindowSamples(_Samples):
    """One sample per video window: (T, D) consecutive frames.

    With `masked`, every batch carries `video_mask`; padded steps (before a short stretch's first
    frame) are zeros there and False in the mask.
    """

    def __init__(self, table: FrameTable, windows: Windows, labels: np.ndarray, *, masked: bool = False):
        self.features = torch.from_numpy(table.features)
        self.starts = torch.as_tensor(windows.starts, dtype=torch.long)
        self.pad = torch.as_tensor(windows.padding, dtype=torch.long)
        self.offsets = torch.arange(windows.length)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)
        self.masked = masked

    def _video(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.masked:
            return {"video": self.features[self.starts[idx, None] + self.offsets]}  # (B, T, D)
        step = self.offsets - self.pad[idx, None]  # (B, T): < 0 on padding
        mask = step >= 0
        rows = self.starts[idx, None] + step.clamp(min=0)
        return {"video": self.features[rows] * mask[..., None], "video_mask": mask}

    def __getitems__(self, idx) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Batch(target=self.labels[idx], **self._video(idx))


class FusionSamples(WindowSamples):
    """A video window with the audio rows of its video inside it, padded to `max_len` with a mask."""

    def __init__(
        self,
        video: FrameTable,
        windows: Windows,
        labels: np.ndarray,
        audio: FrameTable,
        sync: AudioSync,
        *,
        masked: bool = False,
    ):
        super().__init__(video, windows, labels, masked=masked)
        self.audio_features = torch.from_numpy(audio.features)
        self.audio_first = torch.as_tensor(sync.first, dtype=torch.long)
        self.audio_count = torch.as_tensor(sync.count, dtype=torch.long)
        self.steps = torch.arange(sync.max_len)

    def __getitems__(self, idx) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        mask = self.steps < self.audio_count[idx, None]  # (B, Ta)
        rows = torch.where(mask, self.audio_first[idx, None] + self.steps, 0)
        audio = self.audio_features[rows] * mask[..., None]  # padded steps are zeros
        return Batch(target=self.labels[idx], **self._video(idx), audio=audio, audio_mask=mask)


class SequenceSamples(_Samples):
    """One sample per segment: its frames' video features, audio rows (aligned to the frames) or both,
    and a target per frame; padding and unlabelled frames are False in `target_mask`."""

    def __init__(
        self,
        video: FrameTable,
        segments: Segments,
        *,
        modality: str = "video",
        audio: FrameTable | None = None,
        audio_rows: np.ndarray | None = None,
        fps: float = 1.0,
    ):
        self.segments, self.table, self.fps = segments, video, fps
        self.features = torch.from_numpy(video.features) if modality != "audio" else None
        self.frame_labels = torch.from_numpy(video.labels)
        self.starts = torch.as_tensor(segments.starts, dtype=torch.long)
        self.lengths = torch.as_tensor(segments.lengths, dtype=torch.long)
        self.steps = torch.arange(segments.length)
        self.audio = None if modality == "video" else torch.from_numpy(audio.features)
        self.audio_rows = None if modality == "video" else torch.as_tensor(audio_rows, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.starts)

    def scored_labels(self) -> np.ndarray:
        """(n_frames, 2): the labels of the labelled frames the segments cover, each frame once."""
        rows = np.unique(self.segments.rows()[self.segments.real()])
        y = self.frame_labels.numpy()[rows]
        return y[~np.isnan(y).any(axis=1)]

    def __getitems__(self, idx) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        real = self.steps < self.lengths[idx, None]  # (B, T)
        rows = self.starts[idx, None] + torch.where(real, self.steps, 0)
        target = self.frame_labels[rows]
        labelled = real & ~target.isnan().any(dim=-1)
        inputs = {"video_mask": real}
        if self.features is not None:
            inputs["video"] = self.features[rows] * real[..., None]
        if self.audio is not None:
            arow = self.audio_rows[rows]
            has = real & (arow >= 0)  # a frame with no audio row gets zeros
            inputs["audio"] = self.audio[arow.clamp(min=0)] * has[..., None]
        return Batch(target=target.nan_to_num(0.0), target_mask=labelled, **inputs)


def _whole_batch(batch: Batch) -> Batch:
    return batch


def loader(
    samples: _Samples,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    generator: torch.Generator | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader that gathers each batch in one call (no per-sample collation).

    Shuffling draws from `generator` (whose state a checkpoint can keep), else from `seed`.
    `pin_memory` (for a CUDA device) hands out batches in page-locked memory."""
    if shuffle and generator is None:
        generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        samples,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=_whole_batch,
        pin_memory=pin_memory,
    )
