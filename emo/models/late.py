"""Late fusion: a video model's and an audio model's predictions of the same targets, mixed per target
with a weight fitted on dev predictions only (the way MuSe-Wilder's best valence was reached).

The weight is the least-squares one of a convex mix, w·video + (1 − w)·audio with w in [0, 1]: one
number per target, so it cannot overfit a dev set the way a free regression on two highly correlated
predictions can, and the mix never leaves the models' [-1, 1] range. Either model alone (w = 1 or 0)
is a candidate, so on dev the mix is never worse than the better of the two.
"""

from __future__ import annotations

import numpy as np


def fit_weights(video: np.ndarray, audio: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(C,) the video model's weight per target: argmin over w in [0, 1] of the squared error of
    w·video + (1 − w)·audio against `truth`, all (n, C) dev arrays."""
    diff = video - audio
    denom = (diff**2).sum(axis=0)
    w = np.divide(((truth - audio) * diff).sum(axis=0), denom, out=np.full(diff.shape[1], 0.5), where=denom > 0)
    return np.clip(w, 0.0, 1.0)


def mix(video: np.ndarray, audio: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The fused (n, C) predictions."""
    return weights * video + (1.0 - weights) * audio


def late_network(video_net, audio_net, weights, *, per_row: bool = False):
    """A torch module mixing a video network's and an audio network's predictions of the same targets: what
    the logged model runs. Sequence networks predict every step of a segment (`per_row` False); a windowed
    video network predicts a window, and the audio network (one audio row in, one prediction out) then
    predicts each of the window's audio rows, the rows a fusion model of that window reads, and their mean
    is its prediction for the window (`per_row` True)."""
    import torch
    from torch import nn

    from emo.models.blocks import masked_mean

    class LateFusion(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.video_net, self.audio_net = video_net, audio_net
            self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))

        def forward(self, video=None, audio=None, audio_mask=None, video_mask=None):
            v = self.video_net(video=video, video_mask=video_mask)
            if not per_row:
                a = self.audio_net(audio=audio, video_mask=video_mask)
            else:
                b, rows, dim = audio.shape  # (B, A, D): each row alone through the audio network, then their mean
                a = self.audio_net(audio=audio.reshape(b * rows, dim)).view(b, rows, -1)
                mask = audio_mask.bool() if audio_mask is not None else None
                a = masked_mean(a, mask)
            return self.weights * v + (1.0 - self.weights) * a

    return LateFusion().eval()
