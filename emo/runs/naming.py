"""How a run reads in MLflow: its name, its tags, its logged model's name and description, and the
layout of its params and final metrics (what the UI's columns, the report and the champion read)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo import __version__
from emo.core.config import Config
from emo.core.metrics import target_mean

if TYPE_CHECKING:
    from emo.data.dataset import Dataset
    from emo.data.inputs import Inputs

OBJECTIVE = "best_dev/rmse_mean"  # the mean dev RMSE of the best epoch: what tuning and selection minimise


def run_name(config: Config) -> str:
    """What the run is, readable in the UI's run list: model, variant, window, the settings that set it
    apart from the default, and the seed (e.g. `fusion4-v2 4s seed0`, `video 3s max thesis seed1`)."""
    parts = [config.model_name + (f"-{config.model_kwargs().get('variant')}" if config.model_name == "fusion4" else "")]
    if config.input_kind == "sequence":
        parts.append(f"{config.modality} {config.segment:g}s")
    elif config.input_kind != "frame":
        parts.append(f"{config.window:g}s")
    parts += [str(getattr(config, k)) for k in ("pooling", "readout") if getattr(config, k) not in (None, "mean")]
    parts += [
        v
        for v, on in (
            ("thesis", config.arch == "thesis"),
            ("ccc", config.loss == "ccc"),
            (config.precision, config.precision != "fp32"),
        )
        if on
    ]
    return " ".join([*parts, f"seed{config.seed}"])


def run_tags(config: Config, extra: dict | None = None) -> dict:
    """The emo.* tags that say what a run trained (the UI filters on them), with `extra` (a cell's)."""
    return {
        "emo.family": config.family,
        "emo.model": config.model_name,
        "emo.arch": config.arch,
        "emo.seed": config.seed,
        **({"emo.window": f"{config.window:g}"} if config.input_kind not in ("frame", "sequence") else {}),
        **({"emo.modality": config.modality} if config.input_kind == "sequence" else {}),
        **({"emo.variant": config.model_kwargs()["variant"]} if config.model_name == "fusion4" else {}),
        **(extra or {}),
    }


def model_label(config: Config, algorithm: str | None = None) -> str:
    """A logged model's name, saying what it is: its run's name with dashes (`fusion4-v2-4s-seed0`,
    `video-3s-max-seed1`), or `baseline-svr-seed0`."""
    name = run_name(config).replace(" ", "-")
    return name if algorithm is None else name.replace("baseline", f"baseline-{algorithm}", 1)


def model_description(config: Config, what: str) -> str:
    """The logged model's description in the UI: what it is, on which data, where its settings are."""
    return (
        f"{what}: emo {config.family} model trained on `{config.data}`, seed {config.seed}, arch {config.arch}. "
        f"Its settings are the run's parameters; its inputs, the signature."
    )


def dataset_params(ds: Dataset, inputs: Inputs) -> dict:
    """What the data decided, under keys of their own (a setting's key holds the setting as given)."""
    params = {
        "data_folder": str(ds.folder.resolve()),
        "data_name": ds.name,
        "data_fingerprint": ds.fingerprint,
        "data_synthetic": ds.synthetic,
        "split_hash": ds.split.hash,
        "data_fps": ds.fps,
        "data_label_scale": ds.label_scale,
        "emo_version": __version__,
        "input_kind": inputs.kind,
        "data_source": "synthetic" if ds.synthetic else str(ds.meta.get("source_format", "unknown")),
    }
    params.update({f"n_{name}": n for name, n in inputs.sizes().items()})
    params.update({f"dim_{k}": v for k, v in inputs.dims.items()})
    params.update({f"data_{k}" if k in Config.__dataclass_fields__ else k: v for k, v in inputs.notes.items()})
    return params


def test_metrics(test: dict[str, float]) -> dict[str, float]:
    """Test metrics with their mean RMSE, as logged (empty when the test set was not evaluated)."""
    if not test:
        return {}
    return {**test, "test/rmse_mean": target_mean(test, "test/rmse")}


def final_metrics(dev: dict, test: dict, mean_predictor_dev: dict, best_epoch: int) -> dict[str, float]:
    """A finished run's metrics: the best epoch's dev metrics (`best_dev/…`), the test metrics, the mean
    predictor's dev RMSE, the objective and the best epoch."""
    final = {f"best_{k}": v for k, v in dev.items()}
    final.update(test_metrics(test))
    final.update({f"dev/mean_predictor_{k.split('/', 1)[1]}": v for k, v in mean_predictor_dev.items() if "rmse" in k})
    final[OBJECTIVE] = target_mean(dev, "dev/rmse")
    final["best_epoch"] = best_epoch
    return final
