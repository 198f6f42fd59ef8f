"""What a tuning study searches: one space per tunable family (`SPACES`, `TUNABLE`), a user's
override of it, and the objectives it can optimise (`METRICS`). Light to import (no Optuna): the
command line offers these as choices."""

from __future__ import annotations

import json
from pathlib import Path

from emo.core.config import AUDIO_WINDOWS, POOLINGS, Config
from emo.core.errors import ConfigError

# one search space per family: name -> {"choices": [...]} or {"low", "high"[, "log", "step"]}
SPACES: dict[str, dict[str, dict]] = {
    "fusion": {
        "d_model": {"choices": [32, 64, 128]},
        "heads": {"choices": [2, 4]},
        "ff": {"choices": [64, 128, 256]},
        "repeats": {"low": 1, "high": 3},
        "dropout": {"low": 0.0, "high": 0.3},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "window": {"choices": list(AUDIO_WINDOWS)},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
    "video": {
        "hidden": {"choices": [32, 64, 128, 256]},
        "layers": {"low": 1, "high": 2},
        "dropout": {"low": 0.0, "high": 0.5},
        "pooling": {"choices": list(POOLINGS)},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "window": {"choices": list(AUDIO_WINDOWS)},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
    "audio": {
        "hidden": {"choices": [32, 64, 128, 256]},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "window": {"choices": list(AUDIO_WINDOWS)},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
    "ffnn": {
        "hidden": {"choices": [32, 64, 128, 256]},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "patience": {"low": 2, "high": 8},
        "label_delay": {"choices": [0.0, 1.0, 2.0, 3.0]},
    },
}
TUNABLE = tuple(SPACES)  # the families a study can tune
METRICS = {"rmse": "minimize", "ccc": "maximize"}  # objective -> its direction


def search_space(family: str, override: str | Path | dict | None = None, fixed=()) -> dict[str, dict]:
    """The family's space without the `fixed` settings (a matrix cell's own), updated with `override`
    (a dict, or a JSON file of the same shape)."""
    if family not in SPACES:
        raise ConfigError(f"no search space for family {family!r}; tunable: {', '.join(TUNABLE)}.")
    space = {k: dict(v) for k, v in SPACES[family].items() if k not in fixed}
    if override is None:
        return space
    if not isinstance(override, dict):
        try:
            override = json.loads(Path(override).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{override}: cannot read the search space ({exc}); write JSON like "
                f'{{"lr": {{"low": 1e-4, "high": 1e-2, "log": true}}, "depth": {{"choices": [1, 2]}}}}.'
            ) from None
    fields = set(Config.__dataclass_fields__)
    for name, spec in override.items():
        if name not in fields:
            raise ConfigError(f"search space: {name!r} is not a setting of emo (see `emo train --help`).")
        if spec is None:
            space.pop(name, None)  # {"window": null} fixes the base value again
        elif not _valid_spec(spec):
            raise ConfigError(
                f'search space: {name!r} needs {{"choices": [non-empty list]}} or '
                f'{{"low": number, "high": number (>= low)[, "log": true]}}; got {spec!r}.'
            )
        else:
            space[name] = spec
    return space


def _valid_spec(spec) -> bool:
    if not isinstance(spec, dict):
        return False
    if "choices" in spec:
        return isinstance(spec["choices"], list) and len(spec["choices"]) > 0
    numbers = all(isinstance(spec.get(k), int | float) and not isinstance(spec.get(k), bool) for k in ("low", "high"))
    return numbers and spec["low"] <= spec["high"] and not (spec.get("log") and spec["low"] <= 0)
