"""A run's training checkpoint: written atomically beside the run (for `--resume` when the server is
gone) and logged to it, and read back as data only.

Checkpoints are read with `torch.load(weights_only=True)`: whoever can write to the tracking server
could otherwise run code on every machine that resumes one of its runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
from pathlib import Path

import torch

from emo.core.errors import CheckpointError, TrackingError, short_error
from emo.runs.store import prepare_store, store_name

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/checkpoint.pt"
CHECKPOINT_DIR_ENV = "EMO_CHECKPOINT_DIR"


def local_checkpoint(run_id: str, path: str = CHECKPOINT) -> Path:
    """Where a run's checkpoint is kept on this machine: $EMO_CHECKPOINT_DIR (default ./checkpoints)/RUN_ID/."""
    return Path(os.environ.get(CHECKPOINT_DIR_ENV, "checkpoints")) / run_id / Path(path).name


def save_local(body: dict, run_id: str, path: str = CHECKPOINT) -> Path:
    """Write `body` as run `run_id`'s local checkpoint and return its file. It is written aside and renamed:
    a process killed mid-write leaves the previous epoch's checkpoint whole."""
    local = local_checkpoint(run_id, path)
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
    try:
        torch.save(body, tmp)
        os.replace(tmp, local)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return local


def drop_local(run_id: str) -> None:
    """Remove a finished run's local checkpoint folder: the tracking store holds its checkpoint, and a
    matrix would otherwise leave a copy of every run's model and optimizer state behind."""
    import shutil

    folder = local_checkpoint(run_id).parent
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # only when no other run's copy is left there


class _Unreadable(Exception):
    """A checkpoint file that is cut short or damaged (not one that was refused)."""


def _read_checkpoint(file, run_id: str, where: str) -> dict:
    """A checkpoint as data only: tensors, numbers, strings, lists and dicts; anything else is refused
    (a pickle can run any code while it is read, and a tracking server may hold anyone's file).
    `where` names the copy in messages."""
    try:
        # on the CPU: a run trained on a GPU may be resumed on a machine without one (--device)
        body = torch.load(file, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        found = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed| Please use|$)", str(exc), re.M)
        reason = found.group(1).strip() if found else short_error(exc)
        raise CheckpointError(
            f"run {run_id}'s checkpoint {where} is not a plain emo checkpoint: it holds objects "
            f"other than tensors and plain values ({reason[:300]}), and reading those can run "
            f"code, so it was not read. emo writes only plain data there: someone who can write "
            f"to it replaced the file. Do not resume this run; start a new one."
        ) from None
    except Exception as exc:  # a zip cut short, an empty file, a read error
        raise _Unreadable(short_error(exc)) from None
    if not isinstance(body, dict) or not {"model", "state"} <= set(body):
        held = f"the keys {', '.join(map(str, list(body)[:8]))}" if isinstance(body, dict) else type(body).__name__
        raise CheckpointError(
            f"run {run_id}'s checkpoint {where} is not a plain emo checkpoint: it holds {held}, "
            f"not the model and training state emo writes."
        )
    return body


def load_checkpoint(run_id: str, path: str = CHECKPOINT) -> dict:
    """The checkpoint a run logged, for `--resume RUN_ID`: the local copy when there is one and it is whole,
    else the tracking store's. Either is read as data only (see `_read_checkpoint`)."""
    local = local_checkpoint(run_id, path)
    damaged = None
    if local.exists():
        try:
            return _read_checkpoint(local, run_id, str(local))
        except _Unreadable as exc:
            damaged = f"the local copy {local} is unreadable ({exc})"
            log.warning(
                "%s, probably cut short when a training was stopped; using the checkpoint of run %s on the "
                "MLflow %s instead.",
                damaged,
                run_id,
                store_name(),
            )
    return _load_logged(run_id, path, damaged)


def _load_logged(run_id: str, path: str, damaged: str | None) -> dict:
    """The checkpoint the tracking store holds for `run_id`; `damaged` says why the local copy was not used."""
    import mlflow

    prepare_store()
    also = f"{damaged}, and " if damaged else ""
    try:
        downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    except Exception as exc:
        raise TrackingError(
            f"{also}run {run_id} has no checkpoint {path} to resume from ({short_error(exc)}). Check "
            f"the run id (mlflow ui shows it) and that MLFLOW_TRACKING_URI points at the same "
            f"store."
        ) from None
    where = f"{path} in the MLflow {store_name()}"
    try:
        return _read_checkpoint(downloaded, run_id, where)
    except _Unreadable as exc:
        raise TrackingError(
            f"{also}run {run_id}'s checkpoint {where} is unreadable{' too' if damaged else ''} "
            f"({exc}); the run cannot be resumed: start a new one."
        ) from None
