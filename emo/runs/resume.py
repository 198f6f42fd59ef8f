"""Continuing a run (`--resume RUN_ID`): only the stopping rule and the machine may change."""

from __future__ import annotations

from emo.core.config import Config
from emo.core.errors import ConfigError
from emo.runs.checkpoints import load_checkpoint

RESUME_MAY_CHANGE = {"epochs", "patience", "device", "threads", "extra"}


def resume_config(run_id: str, overrides: dict) -> Config:
    """The config of run `run_id`'s checkpoint, with `overrides` (only epochs, patience, device, threads)."""
    saved = load_checkpoint(run_id).get("config")
    if not saved:
        raise ConfigError(f"run {run_id}'s checkpoint holds no config to resume from.")
    saved = {**saved, "algorithms": tuple(saved.get("algorithms", ()))}
    config = Config(**saved)
    check_resumable(config.replace(**overrides), {"config": config.to_dict()}, run_id)
    return config.replace(**overrides)


def check_resumable(config: Config, body: dict, run_id: str) -> None:
    """Refuse to continue run `run_id` (its checkpoint `body`) with settings other than its own."""
    saved, now = body.get("config") or {}, config.to_dict()
    changed = sorted(k for k in now if k not in RESUME_MAY_CHANGE and k in saved and saved[k] != now[k])
    if changed:
        shown = lambda v: "default" if v is None else repr(v)  # noqa: E731
        diffs = ", ".join(f"{k} {shown(saved[k])} -> {shown(now[k])}" for k in changed)
        raise ConfigError(
            f"run {run_id} was trained with other settings ({diffs}); a resumed run continues with "
            f"its own settings (only epochs, patience, device and threads may change). Drop those options, "
            f"or start a new run."
        )
