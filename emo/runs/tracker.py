"""What an experiment logs to: the `Tracker` protocol, kept in memory (`MemoryTracker`, for tests and
library use without a server) or in the active MLflow run (`MlflowTracker`)."""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path
from typing import Protocol

from emo.core.signals import shielded
from emo.runs.bundle import Bundle, pip_requirements
from emo.runs.checkpoints import CHECKPOINT, save_local
from emo.runs.store import is_duplicate_key


class Tracker(Protocol):
    """Where a run's params, metrics, tags and artifacts go."""

    run_id: str | None
    experiment_id: str | None

    def log_params(self, params: dict) -> None: ...
    def log_metrics(self, metrics: dict, step: int | None = None) -> None: ...
    def set_tags(self, tags: dict) -> None: ...
    def log_checkpoint(self, body: dict, path: str = CHECKPOINT) -> None: ...
    def log_figure(self, fig, path: str) -> None: ...
    def log_text(self, text: str, path: str) -> None: ...
    def log_table(self, table, path: str) -> None: ...
    def log_dataset(self, ds) -> None: ...
    def log_model(
        self, bundle: Bundle, signature, input_example, name: str = "model", description: str = ""
    ) -> str | None:
        """Log `bundle` as a pyfunc model named `name`; returns its URI (None where nothing is stored)."""
        ...


class MemoryTracker:
    """Keeps params, metrics and artifacts in memory: for tests and library use without a server."""

    run_id: str | None = None
    experiment_id: str | None = None

    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.metrics: dict[str, list[tuple[int | None, float]]] = {}
        self.artifacts: dict[str, object] = {}
        self.tags: dict[str, str] = {}

    def log_params(self, params: dict) -> None:
        self.params.update({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        for k, v in metrics.items():
            self.metrics.setdefault(k, []).append((step, float(v)))

    def set_tags(self, tags: dict) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_checkpoint(self, body: dict, path: str = CHECKPOINT) -> None:
        self.artifacts[path] = body

    def log_figure(self, fig, path: str) -> None:
        self.artifacts[path] = fig

    def log_text(self, text: str, path: str) -> None:
        self.artifacts[path] = text

    def log_table(self, table, path: str) -> None:
        self.artifacts[path] = table

    def log_dataset(self, ds) -> None:
        self.artifacts["dataset"] = ds.fingerprint

    def log_model(self, bundle: Bundle, signature, input_example, name: str = "model", description: str = "") -> None:
        self.artifacts[name] = bundle


NullTracker = MemoryTracker  # its name before 0.2


class MlflowTracker:
    """Logs to the active MLflow run; a stop signal waits until a call has finished (`emo.core.signals`)."""

    def __init__(self, run) -> None:
        import mlflow

        self._mlflow = mlflow
        self.run_id, self.experiment_id = run.info.run_id, run.info.experiment_id
        self._existing = dict(run.data.params)

    @shielded
    def log_params(self, params: dict) -> None:
        # `mlflow run` has logged its -P values already; logging one again with another spelling
        # ("0.001" after "1e-3") is an error, so only new keys are logged.
        fresh = {k: str(v)[:6000] for k, v in params.items() if k not in self._existing}
        if fresh:
            self._mlflow.log_params(fresh)
            self._existing.update(fresh)

    @shielded
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    @shielded
    def set_tags(self, tags: dict) -> None:
        self._mlflow.set_tags({k: str(v) for k, v in tags.items()})

    @shielded
    def log_checkpoint(self, body: dict, path: str = CHECKPOINT) -> None:
        # kept locally too, so a run whose server went away can still be resumed
        local = save_local(body, self.run_id, path)
        self._mlflow.log_artifact(str(local), str(Path(path).parent))

    @shielded
    def log_figure(self, fig, path: str) -> None:
        self._mlflow.log_figure(fig, path)

    @shielded
    def log_text(self, text: str, path: str) -> None:
        self._mlflow.log_text(text, path)

    @shielded
    def log_table(self, table, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            table.to_parquet(local, index=False)
            self._mlflow.log_artifact(str(local), str(Path(path).parent))

    @shielded
    def log_dataset(self, ds) -> None:
        """The dataset folder as the run's input, its fingerprint as digest: the UI shows which data a run used."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "can be interpreted in multiple ways": both are the local folder
            source = resolve_dataset_source(str(ds.folder.resolve()))
        dataset = MetaDataset(source, name=ds.name, digest=ds.fingerprint[:36])
        tags = {"synthetic": str(ds.synthetic).lower(), "split_hash": ds.split.hash}
        for attempt in range(3):
            try:
                self._mlflow.log_input(dataset, context="training", tags=tags)
                return
            except Exception as exc:
                # runs started together log the same dataset at once: MLflow looks it up, finds none, and
                # each inserts it; all inserts but the first break the store's unique key. A retry finds the
                # first one's row and only links this run to it.
                if attempt == 2 or not is_duplicate_key(exc):
                    raise
                time.sleep(0.2 * (attempt + 1))

    @shielded
    def log_model(self, bundle: Bundle, signature, input_example, name: str = "model", description: str = "") -> str:
        """Log `bundle` as a pyfunc model named `name` (what the UI's model lists show); `description` is its
        Description there. The model carries the emo code it was trained with."""
        import emo
        from emo.runs import pyfunc_model

        with tempfile.TemporaryDirectory() as tmp:
            info = self._mlflow.pyfunc.log_model(
                name=name,
                python_model=pyfunc_model.__file__,
                artifacts=bundle.save(tmp),
                signature=signature,
                input_example=input_example,
                pip_requirements=pip_requirements(),
                tags={"mlflow.note.content": description} if description else None,
                code_paths=[str(Path(emo.__file__).parent)],
            )
        return info.model_uri
