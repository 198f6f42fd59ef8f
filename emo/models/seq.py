"""The field's sequence baseline (AVEC 2019, MuSe 2021-2024): a GRU over a long segment of frames that
predicts every frame, rather than one prediction per short window.

Inputs are the frames' video features, the audio rows aligned to them, or both concatenated per frame
(early fusion). Padding sits at a segment's end; a bidirectional GRU reads only the real steps.
"""

from __future__ import annotations

from torch import Tensor, cat, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emo.core.errors import ConfigError
from emo.core.hyper import HYPER
from emo.models.blocks import Dropout, require
from emo.models.registry import register


@register("seq")
class SequenceGRU(nn.Module):
    """GRU (optionally bidirectional) -> dropout -> Linear(2) -> tanh at every step: (B, T, D) -> (B, T, 2)."""

    def __init__(
        self,
        *,
        video_dim: int | None = None,
        audio_dim: int | None = None,
        hidden: int = HYPER["seq"]["hidden"],
        layers: int = HYPER["seq"]["layers"],
        dropout: float = HYPER["seq"]["dropout"],
        bidirectional: int = HYPER["seq"]["bidirectional"],
    ) -> None:
        super().__init__()
        self.reads = tuple(name for name, dim in (("video", video_dim), ("audio", audio_dim)) if dim)
        if not self.reads:
            raise ConfigError("the sequence model needs video_dim, audio_dim or both")
        width = (video_dim or 0) + (audio_dim or 0)
        self.gru = nn.GRU(
            width,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
            bidirectional=bool(bidirectional),
        )
        self.dropout = Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(hidden * (2 if bidirectional else 1), 2), nn.Tanh())

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        given = {"video": video, "audio": audio}
        x = cat([require(given[name], name, "sequence model") for name in self.reads], dim=-1)  # (B, T, D)
        if video_mask is None or bool(video_mask.all()) or not self.gru.bidirectional:
            h = self.gru(x)[0]  # forward only: padding at the end cannot reach an earlier step
        else:
            lengths = video_mask.sum(dim=1).clamp(min=1).cpu()
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            h = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        return self.head(self.dropout(h))  # (B, T, 2)
