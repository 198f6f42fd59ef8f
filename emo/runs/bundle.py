"""The saved-model format: what an emo model's MLflow artifacts hold, written by training and read by
the pyfunc model, and what a fresh environment needs to load it.

A network is a plain checkpoint (`model.pt`, read with `torch.load(weights_only=True)`) from which it
is rebuilt, so a model loads in a fresh process with only emo installed; the scikit-learn baselines
are joblib files (`estimators.joblib`), one regressor per target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class NetworkBundle:
    """A torch network: how to build it (`model_name`, `model_kwargs`, `dims`, `standardized`), its
    weights, its input `kind` and `inputs`, how to rebuild its samples from a dataset folder."""

    model_name: str
    model_kwargs: dict
    dims: dict
    kind: str
    standardized: list[str]
    inputs: dict
    weights: dict

    ARTIFACT = "checkpoint"

    def save(self, folder: str | Path) -> dict[str, str]:
        """Write the bundle under `folder`; returns the artifacts MLflow logs with the model."""
        import torch

        path = Path(folder) / "model.pt"
        torch.save(asdict(self), path)
        return {self.ARTIFACT: str(path)}

    @classmethod
    def load(cls, file: str | Path) -> NetworkBundle:
        import torch

        body = torch.load(file, weights_only=True, map_location="cpu")
        return cls(**{k: body[k] for k in cls.__dataclass_fields__})

    def network(self):
        """The network in eval mode, with its weights."""
        from emo.models import build_model

        net = build_model(self.model_name, self.model_kwargs, self.dims, tuple(self.standardized)).eval()
        net.load_state_dict(self.weights)
        return net


@dataclass
class EstimatorBundle:
    """scikit-learn regressors, one per target, on frame features of `dims`."""

    estimators: list
    dims: dict
    inputs: dict

    ARTIFACT = "estimators"
    kind = "frame"

    def save(self, folder: str | Path) -> dict[str, str]:
        import joblib

        path = Path(folder) / "estimators.joblib"
        joblib.dump(asdict(self), path)
        return {self.ARTIFACT: str(path)}

    @classmethod
    def load(cls, file: str | Path) -> EstimatorBundle:
        import joblib

        body = joblib.load(file)
        return cls(**{k: body[k] for k in cls.__dataclass_fields__})


@dataclass
class LateBundle:
    """Two networks, one reading video and one audio, whose predictions of the same targets are mixed with
    the video network's `weights` per target (see `emo.models.late`): two sequence networks (a prediction
    per frame), or a windowed video network and a per-row audio network read as a fusion model's inputs
    (`spec`: those inputs' `dims` and `inputs`, as a NetworkBundle holds them)."""

    video: NetworkBundle
    audio: NetworkBundle
    weights: list[float]
    spec: dict | None = None  # windows: {"dims": ..., "inputs": ...}; None: sequence networks

    ARTIFACT = "late"

    @property
    def kind(self) -> str:
        return "fusion" if self.spec else "sequence"

    @property
    def dims(self) -> dict:
        return self.spec["dims"] if self.spec else {**self.video.dims, **self.audio.dims}

    @property
    def inputs(self) -> dict:
        if self.spec:
            return self.spec["inputs"]
        return {**self.video.inputs, "modality": "both"}  # what `emo predict` builds: both inputs per frame

    def network(self):
        """Both networks behind the mix, in eval mode."""
        from emo.models.late import late_network

        parts = self.video.network(), self.audio.network()
        return late_network(*parts, self.weights, per_row=self.spec is not None)

    def save(self, folder: str | Path) -> dict[str, str]:
        import torch

        path = Path(folder) / "late.pt"
        body = {"video": asdict(self.video), "audio": asdict(self.audio), "weights": list(self.weights)}
        torch.save({**body, **({"spec": self.spec} if self.spec else {})}, path)
        return {self.ARTIFACT: str(path)}

    @classmethod
    def load(cls, file: str | Path) -> LateBundle:
        import torch

        body = torch.load(file, weights_only=True, map_location="cpu")
        fields = NetworkBundle.__dataclass_fields__
        part = lambda d: NetworkBundle(**{k: d[k] for k in fields})  # noqa: E731
        return cls(part(body["video"]), part(body["audio"]), [float(w) for w in body["weights"]], body.get("spec"))


Bundle = NetworkBundle | EstimatorBundle | LateBundle


def load_bundle(artifacts: dict[str, str]) -> Bundle:
    """The bundle a logged model's artifacts hold (MLflow's `context.artifacts`)."""
    if NetworkBundle.ARTIFACT in artifacts:
        return NetworkBundle.load(artifacts[NetworkBundle.ARTIFACT])
    if LateBundle.ARTIFACT in artifacts:
        return LateBundle.load(artifacts[LateBundle.ARTIFACT])
    return EstimatorBundle.load(artifacts[EstimatorBundle.ARTIFACT])


def pip_requirements() -> list[str]:
    """What a fresh environment needs to load an emo model (stated, not inferred: inference is slow).

    torch comes from PyTorch's CPU index, as in the Dockerfile and conda.yaml: a bare `torch==X` from
    PyPI is the multi-GB CUDA build on Linux. With that index `torch==X` resolves to X+cpu on Linux
    (the local label sorts higher) and to plain X on macOS. The README's team setup says how to get a
    CUDA build instead.
    """
    from importlib.metadata import PackageNotFoundError, version

    reqs = ["--extra-index-url https://download.pytorch.org/whl/cpu"]  # MLflow copies it into requirements.txt
    for name in ("mlflow", "torch", "numpy", "pandas", "scikit-learn"):
        try:
            reqs.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            reqs.append(name)
    return reqs
