"""Video model: a GRU over a window of face embeddings, temporally pooled to one prediction.

No ``arch`` setting: the architecture is the thesis's. Its one departure, input standardisation with
train-split statistics, lives outside the model (``normalize.Standardized``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emo.core.config import POOLINGS  # declared once, for the CLI and the model
from emo.core.errors import ConfigError
from emo.core.hyper import HYPER
from emo.models.blocks import Dropout, masked_mean, require, zero_padding
from emo.models.registry import register


@register("video")
class VideoGRU(nn.Module):
    """GRU -> dropout -> temporal pooling (avg | max | conv1d) -> Linear(2) -> tanh, on (B, T, D) windows."""

    def __init__(
        self,
        *,
        input_dim: int,
        frames: int,
        hidden: int = HYPER["video"]["hidden"],
        layers: int = HYPER["video"]["layers"],
        dropout: float = HYPER["video"]["dropout"],
        pooling: str = HYPER["video"]["pooling"],
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r} for the video model; choices: {', '.join(POOLINGS)}")
        self.frames, self.pooling = frames, pooling
        # nn.GRU applies dropout only between stacked layers and warns when there is just one.
        self.gru = nn.GRU(
            input_dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.dropout = Dropout(dropout)
        # As in the thesis: one filter spanning the whole window, so a window of `frames` steps gives one step.
        self.conv = nn.Conv1d(hidden, hidden, kernel_size=frames) if pooling == "conv1d" else None
        self.head = nn.Sequential(nn.Linear(hidden, 2), nn.Tanh())

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        x = require(video, "video", "video model")  # (B, T, D)
        if video_mask is not None and bool(video_mask.all()):
            video_mask = None
        h = self.dropout(self.gru(x)[0] if video_mask is None else self._gru_real_steps(x, video_mask))  # (B, T, H)
        if self.pooling == "avg":
            pooled = masked_mean(h, video_mask)
        elif self.pooling == "max":
            pooled = (h if video_mask is None else h.masked_fill(~video_mask.unsqueeze(-1), float("-inf"))).amax(dim=1)
        else:
            if h.shape[1] < self.frames:
                raise ValueError(
                    f"conv1d pooling needs windows of at least frames={self.frames} steps, got {h.shape[1]}"
                )
            # (B, H, T - frames + 1): one step for a full window; longer windows are averaged.
            pooled = self.conv(h.transpose(1, 2)).mean(dim=2)  # padded steps of h are zeros
        return self.head(pooled)  # (B, 2)

    def _gru_real_steps(self, x: Tensor, mask: Tensor) -> Tensor:
        """GRU over each window's real frames only (padding comes first), as if the padding were not there:
        the real steps are moved to the front, packed, run, and moved back; padded steps of the result are 0."""
        t = x.shape[1]
        pad = (~mask).sum(dim=1)  # (B,)
        steps = torch.arange(t, device=x.device)
        front = (steps + pad[:, None]) % t  # (B, T): real steps first
        x = torch.gather(zero_padding(x, mask), 1, front[..., None].expand(-1, -1, x.shape[2]))
        packed = pack_padded_sequence(x, (t - pad).cpu(), batch_first=True, enforce_sorted=False)
        h = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=t)[0]  # zeros after the real steps
        back = (steps - pad[:, None]) % t
        return torch.gather(h, 1, back[..., None].expand(-1, -1, h.shape[2]))
