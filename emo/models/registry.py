"""Model registry: a name -> constructor table, filled by ``@register`` when ``emo.models`` is imported.

Contract of ``create_model(name, **kwargs)``: every constructor takes keyword-only arguments; the
structural keys in ``STRUCTURAL_KEYS`` (input sizes and window length, which the data decides) are
dropped when a constructor does not take them, so a caller may pass the same structural kwargs to
every model; any other keyword the constructor does not take is a ``ConfigError``, never ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from emo.core.errors import ConfigError

# Sizes fixed by the data rather than chosen by the user; silently dropped where a model has no use for them.
STRUCTURAL_KEYS = frozenset({"input_dim", "video_dim", "audio_dim", "frames", "audio_len", "video_mask"})

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make ``constructor`` buildable as ``create_model(name, ...)``."""

    def decorator(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:  # a second registration would silently shadow the first
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = constructor
        return constructor

    return decorator


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model registered as ``name``; unknown names or hyperparameters raise ``ConfigError``."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    constructor = MODELS[name]
    params = inspect.signature(constructor).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in params or k not in STRUCTURAL_KEYS}
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(f"model {name!r} has no hyperparameter(s) {', '.join(unknown)}; allowed: {', '.join(params)}")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in kwargs]
    if missing:
        raise ConfigError(f"model {name!r} needs {', '.join(missing)}")
    return constructor(**kwargs)
