"""One trainer for every torch model: mini-batch Adam, early stopping on the dev loss, best weights kept.

Nothing here knows a model family: models take `model(**batch.inputs())` and return (B, 2).
Tracking, checkpoints and pruning plug in through the `on_epoch` callback. The test set never
enters this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from emo.core.compute import adam, autocast, check_precision, grad_scaler
from emo.core.metrics import evaluate
from emo.data.samples import _Samples, loader

log = logging.getLogger(__name__)


def rmse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """RMSE(valence) + RMSE(arousal), the thesis's loss."""
    return torch.sqrt(((pred - target) ** 2).mean(dim=0) + 1e-12).sum()


def ccc_loss(pred: Tensor, target: Tensor) -> Tensor:
    """(1 - CCC(valence)) + (1 - CCC(arousal)), the field's standard loss."""
    pm, tm = pred.mean(dim=0), target.mean(dim=0)
    cov = ((pred - pm) * (target - tm)).mean(dim=0)
    ccc = 2 * cov / (pred.var(dim=0, unbiased=False) + target.var(dim=0, unbiased=False) + (pm - tm) ** 2 + 1e-8)
    return (1 - ccc).sum()


EPOCH_BAR = {"desc": "epochs", "unit": "epoch", "dynamic_ncols": True}
EARLY_STOP = "early stop after epoch %d: no dev improvement for %d epochs (best epoch %d)"
LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"rmse": rmse_loss, "ccc": ccc_loss}


def scored(pred: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """The (n, 2) predictions and targets that count: all of them, or a sequence's steps `mask` keeps
    (labelled frames; never padding), so that nothing else can change a loss or a score."""
    if mask is None:
        return pred, target
    return pred[mask], target[mask]


@dataclass
class TrainState:
    """Where training stands; everything needed to resume it exactly."""

    epoch: int = 0  # epochs completed
    best_loss: float = float("inf")
    best_epoch: int = 0
    best_weights: dict | None = None
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False


def _outputs(model: nn.Module, samples: _Samples, batch_size: int, device: torch.device | str, precision: str):
    """Each batch's target, target mask and the model's output on the CPU, in sample order."""
    device = torch.device(device)
    model.eval()
    for batch in loader(samples, batch_size, pin_memory=device.type == "cuda"):
        target, mask = batch.target, batch.target_mask  # taken before the copy: no round trip from the device
        batch = batch.to(device, non_blocking=True)
        with autocast(device, precision):
            out = model(**batch.inputs()).float().cpu()
        yield target, mask, out


@torch.no_grad()
def predict(
    model: nn.Module,
    samples: _Samples,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """(targets, predictions), both (n, 2) fp32, in sample order; a sequence model's scored steps in
    sample and step order (see `predict_steps` for every step)."""
    pairs = [scored(out, target, mask) for target, mask, out in _outputs(model, samples, batch_size, device, precision)]
    return torch.cat([t for _, t in pairs]).numpy(), torch.cat([p for p, _ in pairs]).numpy()


@torch.no_grad()
def predict_steps(
    model: nn.Module,
    samples: _Samples,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> np.ndarray:
    """(n, T, 2) fp32: a sequence model's prediction at every step of every sample, padding included."""
    return torch.cat([out for _, _, out in _outputs(model, samples, batch_size, device, precision)]).numpy()


def train(
    model: nn.Module,
    train_set: _Samples,
    dev_set: _Samples,
    *,
    epochs: int = 30,
    patience: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    loss: str = "rmse",
    seed: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    on_epoch: Callable[[TrainState, nn.Module, torch.optim.Optimizer, torch.Generator], None] | None = None,
    resume: dict | None = None,
    progress: bool = True,
) -> TrainState:
    """Train `model` on `train_set`, stopping when the dev loss has not improved for `patience` epochs.

    The best-on-dev weights are loaded into `model` at the end. `resume` is a checkpoint written
    from an earlier `on_epoch` call (see `checkpoint`); training continues after its epoch.
    `precision` autocasts the forward pass (see `emo.core.compute`); the loss is always computed in fp32.
    """
    device = torch.device(device)
    check_precision(precision, device)
    model.to(device)
    criterion = LOSSES[loss]
    optimizer = adam(model.parameters(), lr, device)
    scaler = grad_scaler(device, precision)  # fp16 only; its scale is re-learnt in a few steps after a resume
    generator = torch.Generator().manual_seed(seed)
    state = TrainState() if resume is None else _restore(resume, model, optimizer, generator, patience)
    batches = loader(train_set, batch_size, shuffle=True, generator=generator, pin_memory=device.type == "cuda")
    bar = tqdm(range(state.epoch + 1, epochs + 1), total=epochs, initial=state.epoch, disable=not progress, **EPOCH_BAR)
    for epoch in bar:
        if state.stopped_early:
            break
        t0 = time.perf_counter()
        train_loss = _fit_epoch(model, batches, criterion, optimizer, scaler, device, precision)
        y_dev, p_dev = predict(model, dev_set, batch_size=max(batch_size, 512), device=device, precision=precision)
        record = _score_epoch(state, epoch, model, criterion, train_loss, y_dev, p_dev, t0)
        bar.set_postfix(train=f"{train_loss:.4f}", dev=f"{record['dev/loss']:.4f}", best=state.best_epoch)
        if not progress:
            improved = " (best)" if record["improved"] else ""
            log.info("epoch %d: train loss %.4f, dev loss %.4f%s", epoch, train_loss, record["dev/loss"], improved)
        state.stopped_early = not record["improved"] and state.bad_epochs >= patience
        if on_epoch is not None:
            on_epoch(state, model, optimizer, generator)
        if state.stopped_early:
            log.info(EARLY_STOP, epoch, state.bad_epochs, state.best_epoch)
            break
    bar.close()
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    return state


def _restore(resume: dict, model: nn.Module, optimizer, generator: torch.Generator, patience: int) -> TrainState:
    """Put the model, the optimizer and every random generator back where checkpoint `resume` left them."""
    model.load_state_dict(resume["model"])
    optimizer.load_state_dict(resume["optimizer"])
    generator.set_state(resume["generator"])
    torch.set_rng_state(resume["torch_rng"])  # dropout draws from the global generator
    if torch.cuda.is_available() and resume.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(resume["cuda_rng"])
    state = TrainState(**resume["state"])
    # the stopping rule is the caller's: a run that stopped early goes on when resumed with more patience
    state.stopped_early = state.bad_epochs >= patience
    log.info("resuming after epoch %d (best dev loss %.4f at epoch %d)", state.epoch, state.best_loss, state.best_epoch)
    return state


def _fit_epoch(model: nn.Module, batches, criterion, optimizer, scaler, device: torch.device, precision: str) -> float:
    """One pass over the training batches; returns the mean training loss."""
    model.train()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0  # summed on the device: no sync per batch
    for batch in batches:
        batch = batch.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            output = model(**batch.inputs())
        value = criterion(*scored(output.float(), batch.target, batch.target_mask))
        scaler.scale(value).backward()
        scaler.step(optimizer)
        scaler.update()
        total += value.detach() * len(batch)
        count += len(batch)
    return total.item() / max(count, 1)


def _score_epoch(
    state: TrainState, epoch: int, model: nn.Module, criterion, train_loss: float, y_dev, p_dev, t0: float
) -> dict:
    """The epoch's dev loss and metrics, recorded in `state`; the best weights so far are kept."""
    dev_loss = float(criterion(torch.from_numpy(p_dev), torch.from_numpy(y_dev)))
    improved = dev_loss < state.best_loss
    if improved:
        state.best_loss, state.best_epoch, state.bad_epochs = dev_loss, epoch, 0
        state.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    else:
        state.bad_epochs += 1
    state.epoch = epoch
    record = {
        "epoch": epoch,
        "train/loss": train_loss,
        "dev/loss": dev_loss,
        "train/seconds": time.perf_counter() - t0,
        "improved": improved,
        **evaluate(y_dev, p_dev, "dev/"),
    }
    state.history.append(record)
    return record


def _plain(value):
    """`value` with numpy scalars and arrays turned into Python numbers and tensors, recursively.

    Checkpoints are loaded with `torch.load(weights_only=True)`, which refuses numpy objects (they
    are pickled as calls); a metric or a dimension that is a numpy number would make a run unresumable.
    """
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    return value


def checkpoint(
    state: TrainState, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator, **extra
) -> dict:
    """Everything `train(resume=...)` needs, plus `extra` (e.g. the config), as one torch.save-able dict
    of tensors and plain values only (see `_plain`)."""
    body = {k: v for k, v in vars(state).items()}
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "state": _plain(body),
        **_plain(extra),
    }
