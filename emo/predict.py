"""Predictions of a logged emo model on a dataset folder's split, with metrics where labels exist."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.core.errors import ConfigError
from emo.core.metrics import evaluate
from emo.data.dataset import load_dataset
from emo.data.inputs import build_inputs, frame_predictions

log = logging.getLogger(__name__)


def predict_split(
    model,
    data: str,
    *,
    split: str = "test",
    batch_size: int = 512,
    dataset=None,
    stride: int | None = None,
    **data_options,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-sample predictions of `model` (a loaded emo pyfunc) on `split` of dataset `data`.

    `split="all"` predicts every recording of the folder, labelled or not (such as the test
    recordings an import wrote to `unlabelled/`). Returns a table (video_id, start, end, valence,
    arousal, and true_valence/true_arousal, empty where unknown) and the metrics over the samples
    with labels, named like `test/rmse_valence` (none when no sample has labels). `stride` overrides
    the model's window stride (1: a window ending at every frame).
    """
    emo_model = model.unwrap_python_model()
    spec = emo_model.inputs
    whole = split == "all"
    ds = dataset or load_dataset(data, label_delay=spec.get("label_delay", 0.0), whole=whole, **data_options)
    part = "test" if whole else split
    masked = bool(emo_model.dims.get("video_mask")) if spec["kind"] in ("window", "fusion") else None
    inputs = build_inputs(
        ds,
        spec["kind"],
        window_s=spec["window"],
        label=spec["label"],
        stride=stride or spec["stride"],
        audio_window=spec["audio_window"] or None,
        audio_len=spec["audio_len"] or None,
        splits=(part,),
        keep_unlabelled=whole,
        masked=masked,
        segment_s=spec.get("segment", 20.0),
        hop_s=spec.get("hop", 10.0),
        modality=spec.get("modality", "video"),
    )
    if inputs.dims != emo_model.dims:
        raise ConfigError(
            f"the model was trained on inputs {emo_model.dims} but {ds.folder} gives {inputs.dims}: "
            f"the feature widths or window differ, so this model cannot predict on this dataset."
        )
    samples, index = inputs.samples[part], inputs.index[part]
    preds = []
    for lo in range(0, len(samples), batch_size):
        batch = samples.__getitems__(list(range(lo, min(lo + batch_size, len(samples)))))
        preds.append(model.predict({k: v.numpy() for k, v in batch.inputs().items()}).to_numpy())
    pred = np.concatenate(preds) if preds else np.zeros((0, 2))
    if inputs.kind == "sequence":  # a row per step: averaged per frame over the overlapping segments
        steps = pred.reshape(len(samples), -1, 2)
        index, truth, pred = frame_predictions(samples, steps, labelled_only=not whole)
    else:
        truth = samples.labels.numpy()
    known = np.isfinite(truth).all(axis=1)
    metrics = evaluate(truth[known], pred[known], f"{split}/", groups=index.video_id[known]) if known.any() else {}
    return predictions_table(index, truth, pred), metrics


def predictions_table(index, truth: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """One row per sample: video_id, start, end, predicted valence/arousal, true_valence/true_arousal."""
    table = pd.DataFrame({"video_id": index.video_id, "start": index.start, "end": index.end})
    for j, target in enumerate(TARGETS):
        table[target] = pred[:, j]
    for j, target in enumerate(TARGETS):
        table[f"true_{target}"] = truth[:, j]
    return table


def write_predictions(table: pd.DataFrame, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        table.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        table.to_csv(out, index=False)
    else:
        raise ConfigError(f"{out}: write predictions to a .csv or .parquet file.")
    return out
