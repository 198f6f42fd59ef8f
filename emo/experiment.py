"""One experiment, `config → metrics`: `train(config, tracker)` reads the data, builds the inputs and the
model, trains, evaluates and logs to the tracker it is handed; `run_experiment` opens the MLflow run
around it (the function behind the CLI, the MLproject entry points, tuning and the matrix).

tables → inputs → model → trainer → metrics → tracking. Training and early stopping see train and
dev only; the test set is evaluated once, with the best-on-dev weights, after training.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from emo.core.compute import check_precision, pick_device, set_threads
from emo.core.config import AUDIO_WINDOWS, LABELS, Config
from emo.core.errors import ConfigError
from emo.core.metrics import evaluate, target_mean
from emo.data.dataset import Dataset, load_dataset
from emo.data.inputs import Inputs, SampleIndex, build_inputs, frame_predictions, window_predictions
from emo.models import build_model
from emo.runs.bundle import EstimatorBundle, NetworkBundle
from emo.runs.checkpoints import load_checkpoint
from emo.runs.lifecycle import default_experiment, launched_run, tracked_run
from emo.runs.naming import dataset_params, final_metrics, model_description, model_label, run_tags
from emo.runs.naming import run_name as default_run_name
from emo.runs.resume import RESUME_MAY_CHANGE, check_resumable
from emo.runs.tracker import MemoryTracker, Tracker
from emo.trainer import TrainState, checkpoint, predict, predict_steps
from emo.trainer import train as fit

log = logging.getLogger(__name__)


@dataclass
class Result:
    """What an experiment produced: best-on-dev metrics, test metrics, and where it is tracked."""

    config: Config
    dev: dict[str, float]
    test: dict[str, float]
    mean_predictor_dev: dict[str, float]
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    run_id: str | None = None
    model_uri: str | None = None
    children: dict[str, Result] = field(default_factory=dict)

    @property
    def objective(self) -> float:
        """Mean dev RMSE over valence and arousal: what tuning and model selection minimise."""
        return target_mean(self.dev, "dev/rmse")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _mean_predictor(inputs: Inputs) -> dict[str, float]:
    y_train = inputs.samples["train"].scored_labels()
    y_dev = inputs.samples["dev"].scored_labels()
    return evaluate(y_dev, np.broadcast_to(y_train.mean(axis=0), y_dev.shape), "dev/")


def _log_figures(
    tracker,
    idx: SampleIndex,
    y_dev: np.ndarray,
    p_dev: np.ndarray,
    history: list[dict] | None,
    prefix: str = "",
    loss: str = "rmse",
) -> None:
    from emo.report import plots

    # at the top level: MLflow's run comparison shows only top-level files that every run has
    figures = {
        f"{prefix}dev_traces.png": plots.traces(idx.video_id, idx.start, y_dev, p_dev),
        f"{prefix}dev_predicted_vs_true.png": plots.predicted_vs_true(y_dev, p_dev, split="dev"),
    }
    if history:
        figures[f"{prefix}learning_curves.png"] = plots.learning_curves(history, loss=loss)
    for path, fig in figures.items():
        tracker.log_figure(fig, path)
        plots.close(fig)


def _input_example(inputs: Inputs) -> dict:
    batch = inputs.samples["dev"].__getitems__(list(range(min(2, len(inputs.samples["dev"])))))
    return {k: v.numpy() for k, v in batch.inputs().items()}


def input_spec(config: Config, inputs: Inputs) -> dict:
    """How to rebuild a model's samples from a dataset folder (for `emo predict`)."""
    return {
        "kind": inputs.kind,
        "window": float(config.window),
        "label": config.window_label,
        "stride": int(config.stride),
        "audio_window": int(inputs.notes.get("audio_window", 0)),
        "label_delay": float(config.label_delay),
        "audio_len": int(inputs.dims.get("audio_len", 0)),
        **(
            {"segment": config.segment, "hop": config.hop, "modality": config.modality}
            if inputs.kind == "sequence"
            else {}
        ),
    }


def _log_torch_model(tracker, config: Config, inputs: Inputs, model: torch.nn.Module) -> str | None:
    from emo.runs.pyfunc import signature

    bundle = NetworkBundle(
        model_name=config.model_name,
        model_kwargs=config.model_kwargs(),
        dims=inputs.dims,
        kind=inputs.kind,
        standardized=list(inputs.stats),
        inputs=input_spec(config, inputs),
        weights={k: v.cpu() for k, v in model.state_dict().items()},
    )
    name = model_label(config)
    return tracker.log_model(
        bundle,
        signature(inputs.kind, inputs.dims),
        _input_example(inputs),
        name=name,
        description=model_description(config, name),
    )


def _build_network(
    config: Config, inputs: Inputs, tracker, resume: dict | None
) -> tuple[torch.nn.Module, torch.device]:
    """The seeded network for `inputs` and the device it trains on; a checkpoint to resume must be of it."""
    seed_everything(config.seed)
    model = build_model(config.model_name, config.model_kwargs(), inputs.dims, tuple(inputs.stats))
    model.set_stats(inputs.stats)  # empty for arch=thesis: no standardisation
    device = pick_device(config.device)
    tracker.log_params(
        {
            "device_used": device.type,
            "threads_used": torch.get_num_threads(),
            "n_parameters": sum(p.numel() for p in model.parameters()),
        }
    )
    if resume is not None and (resume.get("model_name") != config.model_name or resume.get("dims") != inputs.dims):
        raise ConfigError(
            f"the checkpoint to resume is a {resume.get('model_name')} on inputs "
            f"{resume.get('dims')}, but this run builds a {config.model_name} on {inputs.dims}. "
            f"Resume with the same family, window and data as the original run."
        )
    return model, device


def _epoch_logger(config: Config, inputs: Inputs, tracker, on_epoch: Callable | None) -> Callable:
    """What the trainer calls after each epoch: the epoch's metrics and a checkpoint go to the run."""

    def epoch_end(state: TrainState, net, optimizer, generator) -> None:
        record = state.history[-1]
        tracker.log_metrics({k: v for k, v in record.items() if k not in ("epoch", "improved")}, step=state.epoch)
        body = checkpoint(
            state, net, optimizer, generator, config=config.to_dict(), model_name=config.model_name, dims=inputs.dims
        )
        tracker.log_checkpoint(body)
        if on_epoch is not None:
            on_epoch(state)

    return epoch_end


def _run_torch(
    config: Config,
    ds: Dataset,
    inputs: Inputs,
    tracker,
    *,
    resume: dict | None,
    on_epoch: Callable | None,
    progress: bool,
    evaluate_test: bool,
) -> Result:
    model, device = _build_network(config, inputs, tracker, resume)
    state = fit(
        model,
        inputs.samples["train"],
        inputs.samples["dev"],
        epochs=config.epochs,
        patience=config.patience,
        lr=config.lr,
        batch_size=config.batch_size,
        loss=config.loss,
        seed=config.seed,
        device=device,
        precision=config.precision,
        on_epoch=_epoch_logger(config, inputs, tracker, on_epoch),
        resume=resume,
        progress=progress,
    )
    at_dev, y_dev, p_dev = _split_predictions(model, inputs, "dev", device, config.precision)
    test = {}
    if evaluate_test:  # once, after every decision
        test = _evaluate_split(tracker, *_split_predictions(model, inputs, "test", device, config.precision), "test")
        if inputs.kind == "sequence":
            _score_like_windows(tracker, ds, model, inputs, device, config.precision)
    result = Result(
        config=config,
        dev=_evaluate_split(tracker, at_dev, y_dev, p_dev, "dev"),
        test=test,
        mean_predictor_dev=_mean_predictor(inputs),
        history=state.history,
        best_epoch=state.best_epoch,
        run_id=tracker.run_id,
    )
    _log_results(tracker, result, epochs_run=state.epoch, stopped_early=state.stopped_early)
    _log_figures(tracker, at_dev, y_dev, p_dev, state.history, loss=config.loss)
    result.model_uri = _log_torch_model(tracker, config, inputs, model.cpu())
    if result.model_uri:
        tracker.set_tags({"emo.model_uri": result.model_uri})
    return result


def _split_predictions(
    model, inputs: Inputs, split: str, device, precision: str
) -> tuple[SampleIndex, np.ndarray, np.ndarray]:
    """Where each scored sample of `split` is, its targets and the model's predictions: a window per
    sample, or for a sequence model a frame per sample (overlapping segments averaged)."""
    samples = inputs.samples[split]
    if inputs.kind == "sequence":
        return frame_predictions(samples, predict_steps(model, samples, device=device, precision=precision))
    return inputs.index[split], *predict(model, samples, device=device, precision=precision)


def _score_like_windows(tracker, ds: Dataset, model, inputs: Inputs, device, precision: str) -> None:
    """A sequence model's test predictions scored on the test windows and targets of every windowed cell
    (the thesis's windows × both label rules), logged as `predictions/test_{W}s_{LABEL}.parquet` with
    metrics `test_{W}s_{LABEL}/…`: what the report's like-for-like comparisons join on."""
    from emo.predict import predictions_table

    samples = inputs.samples["test"]
    steps = predict_steps(model, samples, device=device, precision=precision)
    for window in AUDIO_WINDOWS:
        for label in LABELS:
            index, y, p = window_predictions(ds, samples, steps, float(window), label)
            if not len(y):
                continue
            name = f"test_{window}s_{label}"
            tracker.log_table(predictions_table(index, y, p), f"predictions/{name}.parquet")
            scores = evaluate(y, p, f"{name}/", groups=index.video_id)
            tracker.log_metrics({k: v for k, v in scores.items() if k.split("/")[1].startswith(("rmse_", "ccc_"))})


def _evaluate_split(tracker, index: SampleIndex, y: np.ndarray, p: np.ndarray, split: str) -> dict[str, float]:
    """The split's metrics (pooled and per recording); the per-window predictions are logged beside them
    (`predictions/SPLIT.parquet`), so a report can compare two models on the same windows."""
    from emo.predict import predictions_table

    tracker.log_table(predictions_table(index, y, p), f"predictions/{split}.parquet")
    return evaluate(y, p, f"{split}/", groups=index.video_id)


def _log_results(tracker, result: Result, **tags) -> None:
    tracker.log_metrics(final_metrics(result.dev, result.test, result.mean_predictor_dev, result.best_epoch))
    tracker.set_tags(tags)


def _fit_baseline(config: Config, inputs: Inputs, child, algorithm: str, x: dict, y: dict) -> Result:
    """One scikit-learn baseline trained, evaluated and logged to its own (nested) run `child`."""
    from emo.models.baselines import fit_baseline, predict_baseline  # scikit-learn loads only when needed
    from emo.runs.pyfunc import signature

    child.log_params({"family": "baseline", "algorithm": algorithm, "seed": config.seed})
    estimators, notes = fit_baseline(
        algorithm, x["train"], y["train"], x["dev"], y["dev"], seed=config.seed, svr_exact_max=config.svr_exact_max
    )
    child.log_params(notes)
    p_dev, p_test = predict_baseline(estimators, x["dev"]), predict_baseline(estimators, x["test"])
    result = Result(
        config=config,
        dev=_evaluate_split(child, inputs.index["dev"], y["dev"], p_dev, "dev"),
        test=_evaluate_split(child, inputs.index["test"], y["test"], p_test, "test"),
        mean_predictor_dev=_mean_predictor(inputs),
        run_id=child.run_id,
    )
    _log_results(child, result)
    _log_figures(child, inputs.index["dev"], y["dev"], p_dev, None)
    name = model_label(config, algorithm)
    result.model_uri = child.log_model(
        EstimatorBundle(estimators, inputs.dims, input_spec(config, inputs)),
        signature("frame", inputs.dims),
        {"video": x["dev"][:2]},
        name=name,
        description=model_description(config, name),
    )
    return result


def _run_baseline(config: Config, inputs: Inputs, tracker, children: Callable) -> Result:
    """Every baseline algorithm in a child run of its own; the parent holds the best on dev."""
    x = {name: s.features[s.rows].numpy() for name, s in inputs.samples.items()}
    y = {name: s.labels.numpy() for name, s in inputs.samples.items()}
    results = {}
    for algorithm in config.algorithms:
        log.info("baseline %s on %d train frames", algorithm, len(x["train"]))
        with children(algorithm) as child:
            results[algorithm] = _fit_baseline(config, inputs, child, algorithm, x, y)
    best_algorithm = min(results, key=lambda a: results[a].objective)
    best = results[best_algorithm]
    summary = Result(
        config=config,
        dev=best.dev,
        test=best.test,
        mean_predictor_dev=best.mean_predictor_dev,
        run_id=tracker.run_id,
        model_uri=best.model_uri,
        children=results,
    )
    tracker.log_text(
        "\n".join(
            f"{a}: dev RMSE V {r.dev['dev/rmse_valence']:.4f} A {r.dev['dev/rmse_arousal']:.4f}; "
            f"test RMSE V {r.test['test/rmse_valence']:.4f} A {r.test['test/rmse_arousal']:.4f}"
            for a, r in results.items()
        ),
        "baseline_summary.txt",
    )
    _log_results(tracker, summary, best_algorithm=best_algorithm)
    return summary


def prepare_inputs(config: Config, dataset: Dataset | None = None) -> tuple[Dataset, Inputs]:
    """The dataset (`dataset`, else read from `config.data`) and the model inputs `config` asks for."""
    ds = dataset or load_dataset(config.data, **config.data_options())
    inputs = build_inputs(
        ds,
        config.input_kind,
        window_s=config.window,
        label=config.window_label,
        stride=config.stride,
        audio_window=config.audio_window,
        audio_len=config.audio_len,
        segment_s=config.segment,
        hop_s=config.hop,
        modality=config.modality,
    )
    if not config.standardize:
        inputs.stats = {}
    return ds, inputs


def train(
    config: Config,
    tracker: Tracker,
    *,
    data: tuple[Dataset, Inputs] | Dataset | None = None,
    resume: dict | None = None,
    children: Callable | None = None,
    on_epoch: Callable[[TrainState], None] | None = None,
    progress: bool = True,
    evaluate_test: bool = True,
) -> Result:
    """Train and evaluate `config`'s model, logging to `tracker`: the data (`data`: a dataset or its
    prepared inputs, else read from `config.data`), the model, training from the checkpoint `resume`,
    dev and (with `evaluate_test`) test. `children(algorithm)` opens a baseline algorithm's own
    tracker (default: in memory)."""
    ds, inputs = data if isinstance(data, tuple) else prepare_inputs(config, data)
    params = {**config.params(), "family": config.family, "model": config.model_name, **dataset_params(ds, inputs)}
    tracker.log_params(params)
    tracker.log_dataset(ds)
    if resume is not None:  # the run's own params stay; what changed is logged beside them
        tracker.log_params({f"resumed_{k}": v for k, v in params.items() if k in RESUME_MAY_CHANGE})
    if config.family != "baseline" and config.unused():
        log.warning("%s does not use %s: ignored, and not logged.", config.model_name, ", ".join(config.unused()))
    tracker.set_tags({"emo.synthetic_data": ds.synthetic})
    log.info("%s on %s: %s samples (train/dev/test), dims %s", config.model_name, ds.name, inputs.sizes(), inputs.dims)
    if config.family == "baseline":
        return _run_baseline(config, inputs, tracker, children or (lambda _: contextlib.nullcontext(MemoryTracker())))
    return _run_torch(
        config, ds, inputs, tracker, resume=resume, on_epoch=on_epoch, progress=progress, evaluate_test=evaluate_test
    )


def run_experiment(
    config: Config,
    *,
    track: bool = True,
    run_name: str | None = None,
    experiment: str | None = None,
    resume: str | None = None,
    on_epoch: Callable[[TrainState], None] | None = None,
    progress: bool = True,
    parent_run_id: str | None = None,
    dataset: Dataset | None = None,
    evaluate_test: bool = True,
    tags: dict | None = None,
    on_start: Callable[[str | None], None] | None = None,
) -> Result:
    """Run one experiment: `train` inside its MLflow run. With `track`, everything goes to that run
    (reused under `mlflow run`, resumed with `resume=RUN_ID`, nested under `parent_run_id`); without,
    nothing leaves the process. `evaluate_test=False` leaves the test set unseen (tuning trials);
    `on_start(run_id)` is called once the run exists.

    A new top-level run starts only once the data are read and the inputs built: a dataset error
    leaves no FAILED run behind. A run that exists already (resumed, or made by `mlflow run`) and
    a nested run (a trial or a matrix cell, whose run records why it failed) read them inside it."""
    config.validate()
    if config.family != "baseline":  # refused before a run exists: a GPU or a precision this machine lacks
        check_precision(config.precision, pick_device(config.device))
    set_threads(config.threads)
    body = load_checkpoint(resume) if resume else None
    if body is not None:
        check_resumable(config, body, resume)  # before the run is reopened
    run = dict(data=dataset, resume=body, on_epoch=on_epoch, progress=progress, evaluate_test=evaluate_test)
    if not track:
        if on_start is not None:
            on_start(None)
        return train(config, MemoryTracker(), **run)
    if not resume and parent_run_id is None and not launched_run():
        run["data"] = prepare_inputs(config, dataset)
    tags = run_tags(config, tags)
    with tracked_run(
        run_name=run_name or default_run_name(config),
        experiment=default_experiment(f"emo-{config.family}", experiment),
        resume_run_id=resume,
        tags=tags,
        nested=parent_run_id is not None,
        parent_run_id=parent_run_id,
    ) as tracker:
        if on_start is not None:
            on_start(tracker.run_id)
        if tracker.experiment_id == "0" and launched_run():
            log.warning(
                "`mlflow run` put this run in MLflow's Default experiment; `mlflow run --experiment-name "
                "emo-%s` (or MLFLOW_EXPERIMENT_NAME) keeps the family's runs together, as `emo train` does.",
                config.family,
            )

        def children(algorithm: str):
            tagged = {**tags, "emo.algorithm": algorithm}
            return tracked_run(run_name=f"baseline-{algorithm}", nested=True, parent_run_id=tracker.run_id, tags=tagged)

        return train(config, tracker, children=children, **run)
