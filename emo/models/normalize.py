"""Input standardisation with train-split statistics, carried inside the model.

Real feature tables (eGeMAPS functionals especially) have wildly different scales. The mean and
standard deviation are computed on the training videos only (no leakage from dev or test) and
stored as buffers, so a saved or served model standardises raw features itself.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from emo.models.registry import create_model


class Standardized(nn.Module):
    """`model` behind per-feature standardisation of its `video` and/or `audio` input."""

    def __init__(self, model: nn.Module, *, video_dim: int | None = None, audio_dim: int | None = None) -> None:
        super().__init__()
        self.model = model
        for name, dim in (("video", video_dim), ("audio", audio_dim)):
            if dim is not None:
                self.register_buffer(f"{name}_mean", torch.zeros(dim))
                self.register_buffer(f"{name}_std", torch.ones(dim))

    def set_stats(self, stats: dict[str, tuple]) -> Standardized:
        """`stats[name] = (mean, std)` per input name, as arrays of the feature width."""
        for name, (mean, std) in stats.items():
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(mean))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(std))
        return self

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        if video is not None and hasattr(self, "video_mean"):
            video = (video - self.video_mean) / self.video_std
        if audio is not None and hasattr(self, "audio_mean"):
            audio = (audio - self.audio_mean) / self.audio_std  # padded steps stay masked downstream
        return self.model(video=video, audio=audio, audio_mask=audio_mask, video_mask=video_mask)


def build_model(name: str, kwargs: dict, dims: dict, stat_names: tuple[str, ...]) -> Standardized:
    """The registered model `name` behind standardisation of the inputs in `stat_names`."""
    widths = {
        "video": dims.get("video_dim", dims.get("input_dim")),
        "audio": dims.get("audio_dim", dims.get("input_dim")),
    }
    return Standardized(create_model(name, **kwargs, **dims), **{f"{n}_dim": widths[n] for n in stat_names})
