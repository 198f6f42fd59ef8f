"""emo models as MLflow pyfunc models: load with `mlflow.pyfunc.load_model(uri)` and predict from a dict
of named arrays (`video`, and for fusion `audio` and `audio_mask`), returning valence and arousal.

The network is rebuilt from a checkpoint (`torch.load(weights_only=True)`) rather than pickled,
so a model loads in a fresh process with only emo installed. A malformed input raises an
MlflowException with INVALID_PARAMETER_VALUE and a one-line message naming the input, which
`mlflow models serve` answers with a 400. The per-input shapes are in the model's signature
(`model.metadata.get_input_schema()`) and its logged input example (`model.input_example`).

A batch larger than $EMO_MAX_BATCH windows (read when the model loads; default 4096) is refused the
same way: one request must not hold a server's CPU and memory for as long as it likes.
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

MAX_BATCH_ENV = "EMO_MAX_BATCH"
MAX_BATCH = 4096


def input_shapes(kind: str, dims: dict) -> dict[str, tuple]:
    """The per-sample shape of each named input of a model fed `kind` samples."""
    if kind == "frame":
        return {"video": (dims["input_dim"],)}
    if kind == "audio":
        return {"audio": (dims["input_dim"],)}
    if kind == "sequence":  # a segment's frames; its output is a prediction per step, (B * T) rows
        shapes = {name: (dims["frames"], dims[f"{name}_dim"]) for name in ("video", "audio") if f"{name}_dim" in dims}
        return {**shapes, "video_mask": (dims["frames"],)}
    shapes = {"video": (dims["frames"], dims["video_dim"])}
    if dims.get("video_mask"):  # trained on windows padded at the start (clips shorter than the window)
        shapes["video_mask"] = (dims["frames"],)
    if kind == "fusion":
        shapes.update(audio=(dims["audio_len"], dims["audio_dim"]), audio_mask=(dims["audio_len"],))
    return shapes


def signature(kind: str, dims: dict) -> ModelSignature:
    """Float32 tensors of fixed per-sample shape, masks as untyped tensors; marked so that MLflow
    leaves checking the input to the model (`as_arrays`) rather than enforcing the specs itself.

    MLflow's own refusal of a wrong shape or dtype prints the whole input (about 1,500 characters
    for two windows) and does not say which input is wrong; `as_arrays` says so in one line ("input
    'video' has shape (2, 15, 32); expected (batch, 20, 32)."). Specs of shape (-1,) would let the
    input through too, but the UI and `get_input_schema()` would no longer state any shape; the mark
    keeps every shape in the signature. It is the one MLflow gives a signature inferred from type
    hints (a private attribute, stored in MLmodel as `is_signature_from_type_hint`), and it makes
    the scoring server hand the model a request's "inputs" as parsed JSON (other request formats
    get a 400). Should a release stop honouring it, MLflow enforces the specs again: bad input is
    still refused, with MLflow's long message (tests/test_logged_model.py would fail).

    The masks stay untyped for that case: MLflow's scoring server would cast JSON for a bool spec
    with numpy's truth rules ("false", "no", 0.5 and 2 all become True), while an object spec of
    shape (-1,) passes values as they came, and `as_arrays` checks each value and the shape (the
    audio input's spec states its length).
    """
    specs = [
        TensorSpec(np.dtype(object), (-1,), name)
        if name.endswith("_mask")
        else TensorSpec(np.dtype(np.float32), (-1, *shape), name)
        for name, shape in input_shapes(kind, dims).items()
    ]
    sig = ModelSignature(inputs=Schema(specs), outputs=Schema([ColSpec("double", t) for t in TARGETS]))
    sig._is_signature_from_type_hint = True  # MLflow stops enforcing the specs; emo checks (see above)
    return sig


class InputError(MlflowException):
    """A malformed input (INVALID_PARAMETER_VALUE: a 400 when served) that keeps its one-line message.

    MLflow's scoring server prefixes a model's error with the whole request ("Failed to predict data
    '{...}'. Error: ..."): the request as parsed JSON, megabytes for a large batch, sent back to the
    client that sent it. A new message that merely ends with this one is such a prefix and is dropped.
    """

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if getattr(self, "_message", None) and value.endswith(self._message):
            return
        self._message = value


def bad_request(message: str) -> MlflowException:
    return InputError(message, error_code=INVALID_PARAMETER_VALUE)


def max_batch() -> int:
    """The largest batch a model serves: $EMO_MAX_BATCH, default 4096."""
    import os

    text = os.environ.get(MAX_BATCH_ENV, "").strip()
    if not text:
        return MAX_BATCH
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise MlflowException(
            f"{MAX_BATCH_ENV}={text!r}: give the largest batch (windows per request) the model "
            f"serves, a whole number >= 1 (default {MAX_BATCH})."
        )
    return value


def as_arrays(model_input, kind: str, dims: dict, limit: int | None = None) -> dict[str, np.ndarray]:
    """Named float32/bool arrays from a dict, or from a DataFrame of flat features (frame models);
    a batch over `limit` samples is refused."""
    shapes = input_shapes(kind, dims)
    if isinstance(model_input, pd.DataFrame) and len(shapes) == 1:
        model_input = {next(iter(shapes)): model_input.to_numpy()}
    if isinstance(model_input, np.ndarray | list) and len(shapes) == 1:  # {"inputs": [[...], ...]} when served
        model_input = {next(iter(shapes)): model_input}
    if not isinstance(model_input, dict):
        raise bad_request(f"expected a dict of named arrays {sorted(shapes)}, got {type(model_input).__name__}.")
    out = {}
    for name, shape in shapes.items():
        if name not in model_input:
            raise bad_request(
                f"missing input {name!r}; this model takes {', '.join(shapes)} with per-sample "
                f"shapes {', '.join(f'{k} {v}' for k, v in shapes.items())}."
            )
        value = model_input[name]
        if limit is not None and _length(value) > limit:  # before any work on it
            raise bad_request(
                f"input {name!r} holds {len(value)} samples; this server takes at most {limit} per "
                f"request ({MAX_BATCH_ENV}): split the batch."
            )
        if name.endswith("_mask"):
            out[name] = _mask(value, name, shape)
            continue
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as exc:
            raise bad_request(f"input {name!r} is not a numeric array ({exc}).") from None
        if arr.shape[1:] != shape:
            raise bad_request(f"input {name!r} has shape {arr.shape}; expected (batch, {', '.join(map(str, shape))}).")
        if not np.isfinite(arr).all():
            raise bad_request(f"input {name!r} holds NaN or infinite values (or numbers beyond float32).")
        out[name] = arr
    sizes = {len(a) for a in out.values()}
    if len(sizes) > 1:
        raise bad_request(f"inputs have different batch sizes: {', '.join(f'{k} {len(v)}' for k, v in out.items())}.")
    return out


def _length(value) -> int:
    try:
        return len(value) if not isinstance(value, str | bytes) else 0
    except TypeError:  # a scalar
        return 0


def _mask(value, name: str, shape: tuple) -> np.ndarray:
    """A mask as bools: true/false, or the integers 0 and 1. Anything else (the strings "false" or
    "no", 0.5, 2, null) is refused rather than read by its truth value, which makes almost
    everything True: a padded step taken for a real one."""
    try:
        # JSON lists as objects: [true, "false"] as strings would hide which value was not a boolean
        arr = value if isinstance(value, np.ndarray) else np.array(value, dtype=object)
    except (TypeError, ValueError) as exc:  # ragged nesting numpy cannot hold
        raise bad_request(f"input {name!r} is not an array of booleans ({exc}).") from None
    if arr.shape[1:] != shape:
        raise bad_request(
            f"input {name!r} has shape {arr.shape}; expected (batch, {', '.join(map(str, shape))}) booleans."
        )
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "iu" or arr.dtype == object:
        flat = arr.ravel().tolist()  # Python objects: a JSON true is a bool, 1 an int, 1.0 a float
        for i, v in enumerate(flat):
            if not (isinstance(v, bool | np.bool_) or (isinstance(v, int | np.integer) and v in (0, 1))):
                where = np.unravel_index(i, arr.shape)
                raise bad_request(
                    f"input {name!r} must hold booleans (true/false) or 0/1; got {v!r} "
                    f"({type(v).__name__}) at {list(map(int, where))}."
                )
        return np.asarray(flat, dtype=np.bool_).reshape(arr.shape)
    raise bad_request(f"input {name!r} must hold booleans (true/false) or 0/1, not {arr.dtype} values.")


def _frame(pred: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({t: pred[:, j].astype(np.float64) for j, t in enumerate(TARGETS)})


class EmoModel(PythonModel):
    """A trained emo model rebuilt from its artifacts (an `emo.runs.bundle` bundle): a torch network, or
    scikit-learn regressors, one per target."""

    def load_context(self, context) -> None:
        from emo.runs.bundle import LateBundle, NetworkBundle, load_bundle

        bundle = load_bundle(context.artifacts)
        self.kind, self.dims, self.inputs = bundle.kind, bundle.dims, bundle.inputs
        if isinstance(bundle, NetworkBundle | LateBundle):
            self.network, self.estimators = bundle.network(), None
        else:
            self.estimators = bundle.estimators
        self.max_batch = max_batch()

    # `model_input` is a dict of named arrays (or a DataFrame for frame models; served: parsed JSON
    # lists). The DataFrame hint means "no schema from hints" to MLflow, so the logged signature stays.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        arrays = as_arrays(model_input, self.kind, self.dims, getattr(self, "max_batch", MAX_BATCH))
        if self.estimators is not None:
            pred = np.column_stack([np.clip(est.predict(arrays["video"]), -1, 1) for est in self.estimators])
            return _frame(pred)
        import torch

        with torch.no_grad():
            pred = self.network(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
        return _frame(pred.numpy().reshape(-1, 2))  # a sequence model's (B, T, 2): one row per step
