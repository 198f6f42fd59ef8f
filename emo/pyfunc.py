"""emo models as MLflow pyfunc models: load with `mlflow.pyfunc.load_model(uri)` and predict from a dict
of named arrays (`video`, and for fusion `audio` and `audio_mask`), returning valence and arousal.

The network is rebuilt from a checkpoint (`torch.load(weights_only=True)`) rather than pickled,
so a model loads in a fresh process with only emo installed. A malformed input raises an
MlflowException with INVALID_PARAMETER_VALUE, which `mlflow models serve` answers with a 400.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from emo import TARGETS

def input_shapes(kind: str, dims: dict) -> dict[str, tuple]:
    """The per-sample shape of each named input of a model fed `kind` samples."""
    if kind == "frame":
        return {"video": (dims["input_dim"],)}
    if kind == "audio":
        return {"audio": (dims["input_dim"],)}
    shapes = {"video": (dims["frames"], dims["video_dim"])}
    if dims.get("video_mask"):  # trained on windows padded at the start (clips shorter than the window)
        shapes["video_mask"] = (dims["frames"],)
    if kind == "fusion":
        shapes.update(audio=(dims["audio_len"], dims["audio_dim"]), audio_mask=(dims["audio_len"],))
    return shapes


def signature(kind: str, dims: dict) -> ModelSignature:
    specs = [TensorSpec(np.dtype(np.bool_) if name.endswith("_mask") else np.dtype(np.float32), (-1, *shape), name)
             for name, shape in input_shapes(kind, dims).items()]
    return ModelSignature(inputs=Schema(specs), outputs=Schema([ColSpec("double", t) for t in TARGETS]))


def bad_request(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def as_arrays(model_input, kind: str, dims: dict) -> dict[str, np.ndarray]:
    """Named float32/bool arrays from a dict, or from a DataFrame of flat features (frame models)."""
    shapes = input_shapes(kind, dims)
    if isinstance(model_input, pd.DataFrame) and len(shapes) == 1:
        model_input = {next(iter(shapes)): model_input.to_numpy()}
    if isinstance(model_input, np.ndarray) and len(shapes) == 1:
        model_input = {next(iter(shapes)): model_input}
    if not isinstance(model_input, dict):
        raise bad_request(f"expected a dict of named arrays {sorted(shapes)}, got {type(model_input).__name__}.")
    out = {}
    for name, shape in shapes.items():
        if name not in model_input:
            raise bad_request(f"missing input {name!r}; this model takes {', '.join(shapes)} with per-sample "
                              f"shapes {', '.join(f'{k} {v}' for k, v in shapes.items())}.")
        try:
            arr = np.asarray(model_input[name], dtype=np.bool_ if name.endswith("_mask") else np.float32)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"input {name!r} is not a numeric array ({exc}).") from None
        if arr.shape[1:] != shape:
            raise bad_request(f"input {name!r} has shape {arr.shape}; expected (batch, {', '.join(map(str, shape))}).")
        if not name.endswith("_mask") and not np.isfinite(arr).all():
            raise bad_request(f"input {name!r} holds NaN or infinite values.")
        out[name] = arr
    sizes = {len(a) for a in out.values()}
    if len(sizes) > 1:
        raise bad_request(f"inputs have different batch sizes: {', '.join(f'{k} {len(v)}' for k, v in out.items())}.")
    return out


def _frame(pred: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({t: pred[:, j].astype(np.float64) for j, t in enumerate(TARGETS)})


class EmoModel(PythonModel):
    """A trained emo model rebuilt from its artifacts: a torch network from `checkpoint`
    ({"model_name", "model_kwargs", "dims", "kind", "standardized", "weights"}), or scikit-learn regressors, one
    per target, from `estimators` (joblib)."""

    def load_context(self, context) -> None:
        if "checkpoint" in context.artifacts:
            import torch

            from emo.models import build_model

            ckpt = torch.load(context.artifacts["checkpoint"], weights_only=True, map_location="cpu")
            self.kind, self.dims, self.inputs = ckpt["kind"], ckpt["dims"], ckpt["inputs"]
            self.network = build_model(ckpt["model_name"], ckpt["model_kwargs"], ckpt["dims"],
                                       tuple(ckpt["standardized"])).eval()
            self.network.load_state_dict(ckpt["weights"])
            self.estimators = None
        else:
            import joblib

            body = joblib.load(context.artifacts["estimators"])
            self.kind, self.dims, self.estimators = "frame", body["dims"], body["estimators"]
            self.inputs = body["inputs"]

    # `model_input` is a dict of named arrays (or a DataFrame for frame models); MLflow takes a
    # DataFrame hint as "no schema from hints", which leaves validation to the logged signature.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        arrays = as_arrays(model_input, self.kind, self.dims)
        if self.estimators is not None:
            pred = np.column_stack([np.clip(est.predict(arrays["video"]), -1, 1) for est in self.estimators])
            return _frame(pred)
        import torch

        with torch.no_grad():
            pred = self.network(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
        return _frame(pred.numpy())
