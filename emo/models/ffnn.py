"""Per-frame feed-forward network, the thesis's neural baseline; on audio features it is the audio model.

No ``arch`` setting: the architecture is the thesis's. Its one departure, input standardisation with
train-split statistics, lives outside the model (``normalize.Standardized``).
"""

from __future__ import annotations

from torch import Tensor, nn

from emo.core.errors import ConfigError
from emo.core.hyper import HYPER
from emo.models.blocks import require
from emo.models.registry import register

MODALITIES = ("video", "audio")


@register("ffnn")
class FFNN(nn.Module):
    """input -> Linear -> ReLU -> Linear(2) -> tanh, on one frame (``video``) or one audio window (``audio``)."""

    def __init__(
        self, *, input_dim: int, hidden: int = HYPER["ffnn"]["hidden"], modality: str = HYPER["ffnn"]["modality"]
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            raise ConfigError(f"unknown modality {modality!r} for ffnn; choices: {', '.join(MODALITIES)}")
        self.modality = modality
        self.net = nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2), nn.Tanh())

    def forward(
        self,
        video: Tensor | None = None,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        video_mask: Tensor | None = None,
    ) -> Tensor:
        x = require(video if self.modality == "video" else audio, self.modality, "ffnn")  # (B, D)
        return self.net(x)  # (B, 2)


@register("audio")
def audio_model(*, input_dim: int, hidden: int = HYPER["audio"]["hidden"]) -> FFNN:
    """The thesis's audio model: the ffnn architecture on one audio table's features."""
    return FFNN(input_dim=input_dim, hidden=hidden, modality="audio")
