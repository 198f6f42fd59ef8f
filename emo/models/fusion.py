"""The thesis's four audio-visual fusion methods, all built from the one ``Block`` in ``blocks.py``.

Inputs: ``video`` (B, T, Dv), ``audio`` (B, Ta, Da) and ``audio_mask`` (B, Ta), True = a real audio step.
Ta and T may differ, and a sample may have no valid audio step at all. Padded audio steps never get
attention weight nor enter an average, so their values cannot change the output.

Every model takes ``arch``: ``"emo"`` (the default) is emo's version, ``"thesis"`` the architecture as
the thesis's experiments chapter describes it; docs/thesis-departures.md lists each difference. A
silent sample stays finite in both: with ``"emo"`` its queries read each block's learned null
key/value, with ``"thesis"`` they read nothing (see ``blocks.Attention``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from emo.core.config import ARCHS, READOUTS, VARIANTS  # the choices, declared once (torch-free) for the CLI too
from emo.core.errors import ConfigError
from emo.core.hyper import HYPER
from emo.models.blocks import AttentionPool, Block, Dropout, PositionalEncoding, masked_mean, require, zero_padding
from emo.models.registry import register


def _check_arch(arch: str, model: str) -> bool:
    """Whether ``arch`` asks for the thesis's architecture; an unknown one is a ``ConfigError``."""
    if arch not in ARCHS:
        raise ConfigError(
            f"unknown arch {arch!r} for {model}; choices: emo (emo's version, the default), "
            f"thesis (the architecture as the thesis describes it)"
        )
    return arch == "thesis"


def _thesis_width(video_dim: int, heads: int, model: str) -> int:
    """The thesis's transformer width, the video feature width, checked against ``heads``."""
    if video_dim % heads:
        suggestion = max(h for h in range(1, heads + 1) if video_dim % h == 0)
        raise ConfigError(
            f"{model} with arch='thesis' attends at the video feature width ({video_dim}), which "
            f"heads={heads} does not divide; use heads={suggestion} (a divisor of {video_dim}), "
            f"or arch='emo', which projects the video to d_model"
        )
    return video_dim


def _fusion_inputs(
    video: Tensor | None,
    audio: Tensor | None,
    audio_mask: Tensor | None,
    model: str,
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
        raise ValueError(
            f"{model}: audio_mask shape {tuple(audio_mask.shape)} != audio (B, Ta) {tuple(audio.shape[:2])}"
        )
    return video, audio, audio_mask.bool()


@register("fusion1")
class Fusion1(nn.Module):
    """Average video and (valid) audio over time, concatenate, dense (ReLU), output.

    ``arch="emo"``: Linear -> ReLU -> Dropout -> Linear(2) -> tanh. ``arch="thesis"``: Linear -> ReLU ->
    Linear(2), no dropout (``dropout`` is ignored) and an unbounded output.
    """

    def __init__(
        self,
        *,
        video_dim: int,
        audio_dim: int,
        hidden: int = HYPER["fusion1"]["hidden"],
        dropout: float = HYPER["fusion1"]["dropout"],
        arch: str = HYPER["fusion1"]["arch"],
        frames: int | None = None,
    ) -> None:
        super().__init__()
        if _check_arch(arch, "fusion1"):
            self.head = nn.Sequential(nn.Linear(video_dim + audio_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        else:
            self.head = nn.Sequential(
                nn.Linear(video_dim + audio_dim, hidden),
                nn.ReLU(),
                Dropout(dropout),
                nn.Linear(hidden, 2),
                nn.Tanh(),
            )

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        video, audio, audio_mask = _fusion_inputs(video, audio, audio_mask, "fusion1", video_mask)
        pooled = torch.cat([masked_mean(video, video_mask), masked_mean(audio, audio_mask)], dim=-1)  # (B, Dv + Da)
        return self.head(pooled)  # (B, 2)


@register("fusion2")
class Fusion2(nn.Module):
    """Video and audio tokens in one sequence -> ``depth`` self-attention blocks -> masked avg pool -> output.

    ``arch="emo"``: video and audio are projected to ``d_model``, each gets positional encoding plus a
    learned modality embedding, and every block has a null key/value. ``arch="thesis"``: the width is
    the video feature width (``d_model`` is ignored; ``heads`` must divide it), audio is linearly
    projected to it, positional encoding is kept, and there is no modality embedding nor null key/value.
    """

    def __init__(
        self,
        *,
        video_dim: int,
        audio_dim: int,
        d_model: int = HYPER["fusion2"]["d_model"],
        heads: int = HYPER["fusion2"]["heads"],
        ff: int = HYPER["fusion2"]["ff"],
        depth: int = HYPER["fusion2"]["depth"],
        dropout: float = HYPER["fusion2"]["dropout"],
        arch: str = HYPER["fusion2"]["arch"],
        frames: int | None = None,
    ) -> None:
        super().__init__()
        thesis = _check_arch(arch, "fusion2")
        width = _thesis_width(video_dim, heads, "fusion2") if thesis else d_model
        self.video_proj = nn.Identity() if thesis else nn.Linear(video_dim, width)
        self.audio_proj = nn.Linear(audio_dim, width)  # audio "to the video width"
        self.pos = PositionalEncoding(width)
        # Each modality counts its own positions (their rates differ), so a learned embedding tells them apart.
        self.modality = None if thesis else nn.Parameter(torch.randn(2, width) * 0.02)  # (video|audio, D)
        self.blocks = nn.ModuleList(Block(width, heads, ff, dropout, null_kv=not thesis) for _ in range(depth))
        self.head = nn.Sequential(nn.Linear(width, 2), nn.Tanh())

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        video, audio, audio_mask = _fusion_inputs(video, audio, audio_mask, "fusion2", video_mask)
        v = self.pos(self.video_proj(video))  # (B, T, D)
        a = self.pos(self.audio_proj(audio))  # (B, Ta, D)
        if self.modality is not None:
            v, a = v + self.modality[0], a + self.modality[1]
        x = torch.cat([v, a], dim=1)  # (B, T + Ta, D)
        vmask = audio_mask.new_ones(video.shape[:2]) if video_mask is None else video_mask.bool()
        mask = torch.cat([vmask, audio_mask], dim=1)  # (B, T + Ta)
        for block in self.blocks:
            x = block(x, context_mask=mask)
        return self.head(masked_mean(x, mask))  # (B, 2)


@register("fusion3")
class Fusion3(nn.Module):
    """Cross-attention (query video, key/value audio) -> self-attention -> avg pool over video steps -> output.

    ``arch="emo"``: video and audio are projected to ``d_model`` and get positional encoding; both
    blocks have a null key/value. ``arch="thesis"``: the width is the video feature width (``d_model``
    is ignored; ``heads`` must divide it), audio is linearly projected to it, and there is neither
    positional encoding nor null key/value.

    In both, the audio keeps its own length Ta and its mask. The thesis padded the projected audio to
    the video's T instead; under masking that is equivalent (padded steps get no attention weight), and
    attention needs no equal lengths.
    """

    def __init__(
        self,
        *,
        video_dim: int,
        audio_dim: int,
        d_model: int = HYPER["fusion3"]["d_model"],
        heads: int = HYPER["fusion3"]["heads"],
        ff: int = HYPER["fusion3"]["ff"],
        dropout: float = HYPER["fusion3"]["dropout"],
        arch: str = HYPER["fusion3"]["arch"],
        frames: int | None = None,
    ) -> None:
        super().__init__()
        thesis = _check_arch(arch, "fusion3")
        width = _thesis_width(video_dim, heads, "fusion3") if thesis else d_model
        self.video_proj = nn.Identity() if thesis else nn.Linear(video_dim, width)
        self.audio_proj = nn.Linear(audio_dim, width)
        self.pos = nn.Identity() if thesis else PositionalEncoding(width)
        self.cross = Block(width, heads, ff, dropout, null_kv=not thesis)
        self.self_attn = Block(width, heads, ff, dropout, null_kv=not thesis)
        self.head = nn.Sequential(nn.Linear(width, 2), nn.Tanh())

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
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
    second blocks: v1 self-attention, v2 cross-attention to the encoded video, v3 cross-attention to the
    encoded audio; pool over the video steps -> head.

    ``arch="emo"``: ``repeats`` second blocks for every variant, null key/value in every block, head
    Linear -> ReLU -> Linear(2) -> tanh. ``arch="thesis"``: v1 has exactly one self-attention second
    block (``repeats`` is ignored), v2/v3 ``repeats`` cross-attention second blocks (the thesis applies
    the second cross-attention three times), no null key/value, head one Linear(d_model, 2).

    ``readout="mean"`` (the thesis) averages the valid video steps; nothing in the model then tells the
    steps apart, so it cannot single out the last (labelled) one. ``readout="attention"`` adds
    sinusoidal positional encoding to the encoded video before the first block, counted back from the
    last step (so the last step has the same code whatever the window's length or start padding), and
    pools with softmax weights from a learned Linear(d_model, 1) over the valid video steps.
    """

    def __init__(
        self,
        *,
        video_dim: int,
        audio_dim: int,
        variant: str = HYPER["fusion4"]["variant"],
        d_model: int = HYPER["fusion4"]["d_model"],
        heads: int = HYPER["fusion4"]["heads"],
        ff: int = HYPER["fusion4"]["ff"],
        repeats: int = HYPER["fusion4"]["repeats"],
        dropout: float = HYPER["fusion4"]["dropout"],
        kernel_size: int = HYPER["fusion4"]["kernel_size"],
        arch: str = HYPER["fusion4"]["arch"],
        readout: str = HYPER["fusion4"]["readout"],
        frames: int | None = None,
    ) -> None:
        super().__init__()
        thesis = _check_arch(arch, "fusion4")
        if variant not in VARIANTS:
            raise ConfigError(f"unknown fusion4 variant {variant!r}; choices: {', '.join(VARIANTS)}")
        if readout not in READOUTS:
            raise ConfigError(
                f"unknown fusion4 readout {readout!r}; choices: mean (average of the video steps, "
                f"the thesis), attention (positions + learned weights per step)"
            )
        self.variant = variant
        self.audio_encoder = nn.Linear(audio_dim, d_model)
        self.video_encoder = nn.Conv1d(video_dim, d_model, kernel_size, padding="same")  # keeps length T
        self.pos = PositionalEncoding(d_model) if readout == "attention" else None
        self.first = Block(d_model, heads, ff, dropout, null_kv=not thesis)
        second = 1 if thesis and variant == "v1" else repeats
        self.blocks = nn.ModuleList(Block(d_model, heads, ff, dropout, null_kv=not thesis) for _ in range(second))
        self.pool = AttentionPool(d_model) if readout == "attention" else None
        if thesis:
            self.head = nn.Linear(d_model, 2)
        else:
            self.head = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, 2), nn.Tanh())

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        video, audio, audio_mask = _fusion_inputs(video, audio, audio_mask, "fusion4", video_mask)
        a = self.audio_encoder(audio)  # (B, Ta, D)
        v = self.video_encoder(video.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        if self.pos is not None:
            v = self.pos(v.flip(1)).flip(1)  # position 0 = the last step
        x = self.first(v, context=a, context_mask=audio_mask)  # (B, T, D)
        for block in self.blocks:
            if self.variant == "v1":
                x = block(x, context_mask=video_mask)
            elif self.variant == "v2":
                x = block(x, context=v, context_mask=video_mask)
            else:
                x = block(x, context=a, context_mask=audio_mask)
        pooled = masked_mean(x, video_mask) if self.pool is None else self.pool(x, video_mask)  # (B, D)
        return self.head(pooled)  # (B, 2)
