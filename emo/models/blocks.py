"""Shared pieces of the models: one attention ``Block`` (self- or cross-attention), masked pooling
(mean, or a learned softmax-weighted sum), sinusoidal positional encoding, a cheaper ``Dropout`` on
the CPU, and the input check every model's ``forward`` uses.

Masks follow one convention throughout: ``True`` = a real step, ``False`` = padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emo.core.errors import ConfigError


def require(tensor: Tensor | None, name: str, model: str) -> Tensor:
    """Return ``tensor``, or fail loudly when the batch lacks an input the model reads."""
    if tensor is None:
        raise ValueError(f"{model} needs the {name!r} input, got None")
    return tensor


class Dropout(nn.Module):
    """``nn.Dropout`` with a cheaper mask on the CPU: 16 random bits per element, drawn 64 at a time.

    torch's CPU dropout draws one Bernoulli variate per element, about a quarter of a Fusion 4
    training step. Here the rate is honoured to 1/65536 and the kept values are scaled by the exact
    keep probability, so the expectation is unchanged. The bits come from torch's global generator:
    same seed, same numbers. On other devices torch's fused dropout is already cheap and is used.
    No parameters: a state dict is the same as with ``nn.Dropout``.
    """

    LEVELS = 1 << 16

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ConfigError(f"dropout must be in [0, 1] (got {p})")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        cut = round(self.p * self.LEVELS)  # bits below the cut are dropped
        if not self.training or cut == 0 or cut == self.LEVELS or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)  # every bit uniform
        keep = bits.view(torch.int16)[:n].view(x.shape) >= cut - self.LEVELS // 2
        return x * keep.to(x.dtype).mul_(self.LEVELS / (self.LEVELS - cut))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def zero_padding(video: Tensor, video_mask: Tensor | None) -> Tensor:
    """(B, T, D) video with padded steps (mask False) set to zero, so their content cannot matter."""
    if video_mask is None:
        return video
    return video.masked_fill(~video_mask.bool().unsqueeze(-1), 0.0)


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over time of the valid steps: (B, T, D), (B, T) -> (B, D); rows with no valid step give zeros."""
    if mask is None:
        return x.mean(dim=1)
    keep = mask.unsqueeze(-1)  # (B, T, 1)
    # where(), not x * mask: padding may hold inf/NaN, and 0 * inf is NaN.
    total = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=1)  # (B, D)
    count = keep.sum(dim=1).clamp(min=1).to(x.dtype)  # (B, 1); clamp makes all-padding rows 0 / 1 = 0
    return total / count


class AttentionPool(nn.Module):
    """Softmax-weighted sum over time with scores from a learned ``Linear(d_model, 1)``: (B, T, D) -> (B, D).

    Padded steps (mask False) get weight exactly 0; a row with no valid step gives zeros, as ``masked_mean``.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = nn.Linear(d_model, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            return (self.score(x).softmax(dim=1) * x).sum(dim=1)  # (B, T, 1) weights -> (B, D)
        mask = mask.bool()
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # padding values (even NaN) reach neither output nor gradients
        empty = ~mask.any(dim=1, keepdim=True)  # (B, 1): all padding; softmax over every step, then discard
        scores = self.score(x).squeeze(-1).masked_fill(~(mask | empty), float("-inf"))  # (B, T)
        weights = scores.softmax(dim=1).masked_fill(~mask, 0.0)  # padding (and empty rows): weight exactly 0
        return (weights.unsqueeze(-1) * x).sum(dim=1)  # (B, D)


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding of "Attention is all you need" to a (B, T, D) sequence.

    Computed per call for the actual length, so there is no maximum length and nothing in the state dict.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, x: Tensor) -> Tensor:
        steps, d = x.shape[1], self.d_model
        position = torch.arange(steps, device=x.device, dtype=torch.float32).unsqueeze(1)  # (T, 1)
        rate = torch.exp(torch.arange(0, d, 2, device=x.device, dtype=torch.float32) * (-math.log(10000.0) / d))
        pe = torch.zeros(steps, d, device=x.device)  # (T, D)
        pe[:, 0::2] = torch.sin(position * rate)
        pe[:, 1::2] = torch.cos(position * rate[: d // 2])  # odd d: one fewer cosine column
        return x + pe.to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention; by default with a learned always-attendable null key/value (emo's choice).

    The null slot keeps the softmax defined when every context step is padding (a silent sample):
    the query then reads a learned "no audio" value instead of NaN. With ``null_kv=False`` (the
    thesis's plain attention) such a query reads nothing: its output is exactly zero, so a block's
    residual passes it through unchanged, and neither the output nor the gradients are NaN.
    """

    def __init__(self, d_model: int, heads: int, dropout: float, null_kv: bool = True) -> None:
        super().__init__()
        if d_model % heads:
            raise ConfigError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.heads = heads
        self.to_q = nn.Linear(d_model, d_model)
        self.to_kv = nn.Linear(d_model, 2 * d_model)
        # (k|v, 1, 1, D); None without the slot: then absent from the parameters and the state dict
        self.null_kv = nn.Parameter(torch.randn(2, 1, 1, d_model) * 0.02) if null_kv else None
        self.dropout = Dropout(dropout)
        self.to_out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor | None = None) -> Tensor:
        b, t, d = x.shape
        if context_mask is not None:
            context_mask = context_mask.bool()
            # Zero padded steps before projecting, so padding values (even NaN) cannot reach the output.
            context = context.masked_fill(~context_mask.unsqueeze(-1), 0.0)
        k, v = self.to_kv(context).chunk(2, dim=-1)  # (B, S, D) each
        if self.null_kv is not None:
            k = torch.cat([self.null_kv[0].expand(b, 1, d), k], dim=1)  # (B, 1 + S, D)
            v = torch.cat([self.null_kv[1].expand(b, 1, d), v], dim=1)
        h, hs = self.heads, d // self.heads
        q = self.to_q(x).view(b, t, h, hs).transpose(1, 2)  # (B, h, T, hs)
        k = k.view(b, -1, h, hs).transpose(1, 2)  # (B, h, [1 +] S, hs)
        v = v.view(b, -1, h, hs).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, h, T, [1 +] S)
        empty = None  # (B,) True where no context step is valid (only without the null slot)
        if context_mask is not None:
            if self.null_kv is not None:
                valid = torch.cat([context_mask.new_ones(b, 1), context_mask], dim=1)  # null always valid
            else:
                empty = ~context_mask.any(dim=1)
                # An all-padding row would softmax over only -inf (NaN, and NaN gradients): let it see
                # every (zeroed) step instead, and discard what it reads below.
                valid = context_mask | empty.unsqueeze(1)
            scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))  # padding gets weight exactly 0
        weights = self.dropout(scores.softmax(dim=-1))
        out = self.to_out((weights @ v).transpose(1, 2).reshape(b, t, d))  # (B, T, D)
        if empty is not None:
            out = out.masked_fill(empty[:, None, None], 0.0)  # nothing to attend to: nothing read
        return out


class Block(nn.Module):
    """Post-norm transformer block (attention, add & norm, feed-forward, add & norm), as in the thesis.

    ``forward(x)`` is self-attention; ``forward(x, context)`` is cross-attention with queries from ``x``
    and keys/values from ``context``. ``context_mask`` (True = valid) masks the keys: those of
    ``context``, or of ``x`` itself in self-attention. ``null_kv``: see ``Attention``.
    """

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float, null_kv: bool = True) -> None:
        super().__init__()
        self.attn = Attention(d_model, heads, dropout, null_kv)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.ReLU(), Dropout(dropout), nn.Linear(ff, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None) -> Tensor:
        kv = x if context is None else context  # (B, S, D)
        x = self.norm1(x + self.dropout(self.attn(x, kv, context_mask)))  # (B, T, D)
        return self.norm2(x + self.dropout(self.ff(x)))
