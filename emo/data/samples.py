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

from emo.data.tables import FrameTable
from emo.data.windows import AudioSync, Windows


@dataclass
class Batch:
    """What every torch model takes: `model(**batch.inputs())`; `target` is (B, 2) in [-1, 1]."""

    target: torch.Tensor  # (B, 2)
    video: torch.Tensor | None = None  # (B, D) frames or (B, T, D) windows
    audio: torch.Tensor | None = None  # (B, Da) audio rows or (B, Ta, Da) sequences
    audio_mask: torch.Tensor | None = None  # (B, Ta) bool, True = a real audio step
    video_mask: torch.Tensor | None = None  # (B, T) bool, True = a real frame (windows padded at the start)

    def inputs(self) -> dict[str, torch.Tensor]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "target" and getattr(self, f.name) is not None
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
