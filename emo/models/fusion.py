"""The thesis's four audio-visual fusion methods, all built from the one ``Block`` in ``blocks.py``.

Inputs: ``video`` (B, T, Dv), ``audio`` (B, Ta, Da) and ``audio_mask`` (B, Ta), True = a real audio step.
Ta and T may differ, and a sample may have no valid audio step at all. Padded audio steps never get
attention weight nor enter an average, so their values cannot change the output; a silent sample
attends only to each block's learned null key/value (see ``blocks.Attention``) and stays finite.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from emo.errors import ConfigError
from emo.models.blocks import Block, PositionalEncoding, masked_mean, require, zero_padding
from emo.models.registry import register

VARIANTS = ("v1", "v2", "v3")


def _fusion_inputs(
    video: Tensor | None, audio: Tensor | None, audio_mask: Tensor | None, model: str,
    video_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Check the inputs a fusion model reads; a missing mask means every audio step is real.
    Padded video steps (`video_mask` False) are zeroed, and every model also masks them wherever
    it attends or pools."""
    video = zero_padding(require(video, "video", model), video_mask)  # (B, T, Dv)
    audio = require(audio, "audio", model)  # (B, Ta, Da)
    if audio_mask is None:
        audio_mask = torch.ones(audio.shape[:2], dtype=torch.bool, device=audio.device)
    if audio_mask.shape != audio.shape[:2]:
        raise ValueError(f"{model}: audio_mask shape {tuple(audio_mask.shape)} != audio (B, Ta) {tuple(audio.shape[:2])}")
    return video, audio, audio_mask.bool()


@register("fusion1")
class Fusion1(nn.Module):
    """Average video and (valid) audio over time, concatenate, dense (ReLU), output."""

    input_kind: ClassVar[str] = "fusion"

    def __init__(
        self, *, video_dim: int, audio_dim: int, hidden: int = 128, dropout: float = 0.1, frames: int | None = None
    ) -> None:
        super().__init__()
        self.head = nn.Sequential(
            nn.Linear(video_dim + audio_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2), nn.Tanh()
        )

    def forward(
        self, video: Tensor | None = None, audio: Tensor | None = None, audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        video, audio, audio_mask = _fusion_inputs(video, audio, audio_mask, "fusion1", video_mask)
        pooled = torch.cat([masked_mean(video, video_mask), masked_mean(audio, audio_mask)], dim=-1)  # (B, Dv + Da)
        return self.head(pooled)  # (B, 2)


@register("fusion2")
class Fusion2(nn.Module):
    """Video and audio tokens in one sequence -> ``depth`` self-attention blocks -> masked avg pool -> output."""

    input_kind: ClassVar[str] = "fusion"

    def __init__(
        self,
        *,
        video_dim: int,
        audio_dim: int,
        d_model: int = 128,
        heads: int = 4,
        ff: int = 256,
        depth: int = 2,
        dropout: float = 0.1,
        frames: int | None = None,
    ) -> None:
        super().__init__()
        self.video_proj = nn.Linear(video_dim, d_model)
        self.audio_proj = nn.Linear(audio_dim, d_model)  # audio "to the video width"
        self.pos = PositionalEncoding(d_model)
        # Each modality counts its own positions (their rates differ), so a learned embedding tells them apart.
        self.modality = nn.Parameter(torch.randn(2, d_model) * 0.02)  # (video|audio, D)
        self.blocks = nn.ModuleList(Block(d_model, heads, ff, dropout) for _ in range(depth))
        self.head = nn.Sequential(nn.Linear(d_model, 2), nn.Tanh())

    def forward(
        self, video: Tensor | None = None, audio: Tensor | None = None, audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        video, audio, audio_mask = _fusion_inputs(video, audio, audio_mask, "fusion2", video_mask)
        v = self.pos(self.video_proj(video)) + self.modality[0]  # (B, T, D)
        a = self.pos(self.audio_proj(audio)) + self.modality[1]  # (B, Ta, D)
        x = torch.cat([v, a], dim=1)  # (B, T + Ta, D)
        vmask = audio_mask.new_ones(video.shape[:2]) if video_mask is None else video_mask.bool()
        mask = torch.cat([vmask, audio_mask], dim=1)  # (B, T + Ta)
        for block in self.blocks:
            x = block(x, context_mask=mask)
        return self.head(masked_mean(x, mask))  # (B, 2)


@register("fusion3")
class Fusion3(nn.Module):
    """Cross-attention (query video, key/value audio) -> self-attention -> avg pool over video steps -> output.

    The thesis padded the projected audio to the video's T; attention needs no equal lengths, so the
    audio keeps its own Ta and its mask, and no padding is mixed into valid steps by resampling.
    """

    input_kind: ClassVar[str] = "fusion"

    def __init__(
        self,
        *,
        video_dim: int,
        audio_dim: int,
        d_model: int = 128,
        heads: int = 4,
        ff: int = 256,
        dropout: float = 0.1,
        frames: int | None = None,
    ) -> None:
        super().__init__()
        self.video_proj = nn.Linear(video_dim, d_model)
        self.audio_proj = nn.Linear(audio_dim, d_model)
        self.pos = PositionalEncoding(d_model)
        self.cross = Block(d_model, heads, ff, dropout)
        self.self_attn = Block(d_model, heads, ff, dropout)
        self.head = nn.Sequential(nn.Linear(d_model, 2), nn.Tanh())

    def forward(
        self, video: Tensor | None = None, audio: Tensor | None = None, audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        video, audio, audio_mask = _fusion_inputs(video, audio, audio_mask, "fusion3", video_mask)
        v = self.pos(self.video_proj(video))  # (B, T, D)
        a = self.pos(self.audio_proj(audio))  # (B, Ta, D)
        x = self.cross(v, context=a, context_mask=audio_mask)  # (B, T, D): one row per video step
        x = self.self_attn(x, context_mask=video_mask)
        return self.head(masked_mean(x, video_mask))  # (B, 2)


@register("fusion4")
class Fusion4(nn.Module):
    """Linear audio encoder, Conv1d video encoder, cross-attention (query video, key/value audio), then
    ``depth`` second blocks: v1 self-attention, v2 cross-attention to the encoded video, v3 cross-attention
    to the encoded audio; avg pool over video steps -> Linear + ReLU -> Linear(2) -> tanh.
    """

    input_kind: ClassVar[str] = "fusion"

    def __init__(
        self,
        *,
        video_dim: int,
        audio_dim: int,
        variant: str = "v2",
        d_model: int = 128,
        heads: int = 4,
        ff: int = 256,
        depth: int = 3,
        dropout: float = 0.1,
        kernel_size: int = 3,
        frames: int | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"unknown fusion4 variant {variant!r}; choices: {', '.join(VARIANTS)}")
        self.variant = variant
        self.audio_encoder = nn.Linear(audio_dim, d_model)
        self.video_encoder = nn.Conv1d(video_dim, d_model, kernel_size, padding="same")  # keeps length T
        self.first = Block(d_model, heads, ff, dropout)
        self.blocks = nn.ModuleList(Block(d_model, heads, ff, dropout) for _ in range(depth))  # "second" blocks
        self.head = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, 2), nn.Tanh())

    def forward(
        self, video: Tensor | None = None, audio: Tensor | None = None, audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        video, audio, audio_mask = _fusion_inputs(video, audio, audio_mask, "fusion4", video_mask)
        a = self.audio_encoder(audio)  # (B, Ta, D)
        v = self.video_encoder(video.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        x = self.first(v, context=a, context_mask=audio_mask)  # (B, T, D)
        for block in self.blocks:
            if self.variant == "v1":
                x = block(x, context_mask=video_mask)
            elif self.variant == "v2":
                x = block(x, context=v, context_mask=video_mask)
            else:
                x = block(x, context=a, context_mask=audio_mask)
        return self.head(masked_mean(x, video_mask))  # (B, 2)
