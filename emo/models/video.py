"""Video model: a GRU over a window of face embeddings, temporally pooled to one prediction."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from emo.errors import ConfigError
from emo.models.blocks import require
from emo.models.registry import register

POOLINGS = ("avg", "max", "conv1d")


@register("video")
class VideoGRU(nn.Module):
    """GRU -> dropout -> temporal pooling (avg | max | conv1d) -> Linear(2) -> tanh, on (B, T, D) windows."""

    input_kind: ClassVar[str] = "window"

    def __init__(
        self,
        *,
        input_dim: int,
        frames: int,
        hidden: int = 128,
        layers: int = 1,
        dropout: float = 0.2,
        pooling: str = "avg",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r} for the video model; choices: {', '.join(POOLINGS)}")
        self.frames, self.pooling = frames, pooling
        # nn.GRU applies dropout only between stacked layers and warns when there is just one.
        self.gru = nn.GRU(input_dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        # As in the thesis: one filter spanning the whole window, so a window of `frames` steps gives one step.
        self.conv = nn.Conv1d(hidden, hidden, kernel_size=frames) if pooling == "conv1d" else None
        self.head = nn.Sequential(nn.Linear(hidden, 2), nn.Tanh())

    def forward(
        self, video: Tensor | None = None, audio: Tensor | None = None, audio_mask: Tensor | None = None
    ) -> Tensor:
        x = require(video, "video", "video model")  # (B, T, D)
        h = self.dropout(self.gru(x)[0])  # (B, T, H)
        if self.pooling == "avg":
            pooled = h.mean(dim=1)
        elif self.pooling == "max":
            pooled = h.amax(dim=1)
        else:
            if h.shape[1] < self.frames:
                raise ValueError(f"conv1d pooling needs windows of at least frames={self.frames} steps, got {h.shape[1]}")
            # (B, H, T - frames + 1): one step for a full window; longer windows are averaged.
            pooled = self.conv(h.transpose(1, 2)).mean(dim=2)
        return self.head(pooled)  # (B, 2)
