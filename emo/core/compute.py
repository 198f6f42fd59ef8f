"""Where and how the arithmetic runs: the device, the precision and the CPU threads.

Precision is autocast: weights, optimizer state and the loss stay fp32; matmuls and convolutions run
in bf16 (CPUs with AVX-512 BF16 / AMX, and CUDA) or fp16 (CUDA only, with a gradient scaler).
"""

from __future__ import annotations

import torch

from emo.core.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str = "auto") -> torch.device:
    """`auto` is CUDA when torch sees a GPU, else the CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} was asked for, but this torch ({torch.__version__}) sees no CUDA GPU. "
            f"Use device auto or cpu, or install a CUDA build of torch."
        )
    return device


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run, before any training starts."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            "precision fp16 needs a CUDA GPU (it trains with a gradient scaler there); on the CPU "
            "use bf16 (CPUs with AVX-512 BF16 or AMX) or fp32."
        )
    if precision == "bf16" and not bf16_supported(device):
        raise ConfigError(
            f"precision bf16 is not supported on this {device.type} (it needs AVX-512 on a CPU, or "
            f"a GPU of compute capability 8.0 or later); use precision fp32."
        )


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The forward pass's autocast context: a no-op for fp32."""
    return torch.autocast(device.type, dtype=DTYPES.get(precision, torch.bfloat16), enabled=precision in DTYPES)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """fp16's loss scaling (gradients would underflow otherwise); disabled, a pass-through, for the rest."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def adam(parameters, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one: one pass over all parameters instead of a loop
    of small per-tensor ops (on the CPU the loop was ~5% of a Fusion 4 step)."""
    return torch.optim.Adam(parameters, lr=lr, fused=device.type in ("cpu", "cuda"))


def set_threads(threads: int | None) -> int:
    """Use `threads` CPU threads (None: torch's own choice); returns the number in use."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
