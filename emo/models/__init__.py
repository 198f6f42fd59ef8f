"""Torch models of emo; importing this package registers every model family with the registry."""

from emo.models import ffnn, fusion, seq, video  # noqa: F401  (imported for their @register side effect)
from emo.models.normalize import Standardized, build_model
from emo.models.registry import MODELS, create_model, list_models

__all__ = ["MODELS", "Standardized", "build_model", "create_model", "list_models"]
