"""The one configuration of an experiment, with every default declared once.

Model hyperparameters default to the model constructors' own defaults (the thesis's); a value
given here overrides them. `FAMILIES` holds what differs by family (input kind, window label,
window length); `Config.settings()` names the settings a family's entry point exposes, and
`Config.params()` their resolved values: what `emo train`, `mlflow run` (the MLproject is
generated from them, see `emo.cli.mlproject`) and tuning all log.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from emo.core.errors import ConfigError


@dataclass(frozen=True)
class Family:
    """What differs by model family: its input kind, its models, and the thesis's window and label."""

    kind: str  # frame | audio | window | fusion | sequence
    models: tuple[str, ...]
    window: float | None = None  # seconds; the thesis's best window for the family (SEWA)
    label: str = "mean"
    loss: str = "rmse"  # the thesis's; the sequence models of AVEC and MuSe train on CCC


FAMILIES = {
    "baseline": Family("frame", ()),
    "ffnn": Family("frame", ("ffnn",)),
    "audio": Family("audio", ("audio",), window=1.0),  # the thesis's best audio table
    "video": Family("window", ("video",), window=3.0),  # the thesis's best SEWA video window
    "fusion": Family("fusion", ("fusion1", "fusion2", "fusion3", "fusion4"), window=4.0, label="last"),
    "seq": Family("sequence", ("seq",), loss="ccc"),  # the field's baseline: a GRU over long segments, every frame
}
MODEL_KINDS = {model: family.kind for family in FAMILIES.values() for model in family.models}  # what each model reads
POOLINGS = ("avg", "max", "conv1d")
VARIANTS = ("v1", "v2", "v3")
LOSSES = ("rmse", "ccc")
ARCHS = ("emo", "thesis")
READOUTS = ("mean", "attention")
PRECISIONS = ("fp32", "bf16", "fp16")
MODALITIES = ("video", "audio", "both")  # what a sequence model reads (both: the two concatenated per frame)
LATE_PARTNERS = {"seq": ("seq", "seq"), "window": ("video", "audio")}  # late fusion: the (video, audio) families
LABELS = ("mean", "last")  # a window's label: the mean of its labelled frames, or its last frame's
SPLITS = ("train", "dev", "test")
ALGORITHMS = ("bayesian_ridge", "svr", "tree")  # the baselines (emo.baseline)
METHODS = tuple(range(1, len(FAMILIES["fusion"].models) + 1))  # fusion methods 1-4
AUDIO_WINDOWS = (1, 2, 3, 4)  # seconds: the audio_{N}s tables of the data contract
HEARTBEAT_SECONDS = 10  # a study worker's heartbeat; one silent for 3 beats is taken for dead
DEVICES = ("auto", "cpu", "cuda")  # or cuda:N
# settings whose values are a closed list: the command line offers them as choices
CHOICES = {
    "label": LABELS,
    "pooling": POOLINGS,
    "variant": VARIANTS,
    "loss": LOSSES,
    "arch": ARCHS,
    "readout": READOUTS,
    "precision": PRECISIONS,
    "method": tuple(map(str, METHODS)),
    "audio_window": tuple(map(str, AUDIO_WINDOWS)),
    "modality": MODALITIES,
}
# hyperparameters that are passed to the model constructor when set
MODEL_KEYS = (
    "hidden",
    "layers",
    "dropout",
    "pooling",
    "d_model",
    "heads",
    "ff",
    "depth",
    "repeats",
    "kernel_size",
    "variant",
    "readout",
    "bidirectional",
    "arch",
)
# settings whose default is decided by the data (logged as "auto" until then)
AUTO = ("audio_window", "audio_len", "fps", "label_scale", "id_pattern", "audio_id_pattern")
# settings by input kind, then shared ones (the rest of a family's settings are its models' hyperparameters)
KIND_SETTINGS = {
    "frame": (),
    "audio": ("window",),
    "window": ("window", "label", "stride"),
    "fusion": ("window", "label", "stride", "method", "audio_window", "audio_len"),
    "sequence": ("segment", "hop", "modality", "audio_window"),
}
DATA_SETTINGS = ("data", "fps", "label_scale", "id_pattern", "audio_id_pattern", "split_seed", "label_delay")
TRAIN_SETTINGS = ("arch", "epochs", "patience", "lr", "batch_size", "loss", "seed", "device", "precision", "threads")
BASELINE_SETTINGS = ("algorithms", "svr_exact_max", "seed")


HELP = {
    "data": "Dataset folder, or 'synthetic' / 'synthetic:afew' for a small generated corpus (made on first use).",
    "window": "Window length in seconds (video/fusion: window_s × fps frames; audio: which audio_{N}s table); "
    "the default is the thesis's best for the family.",
    "label": "Window label: the mean of its frames' labels or its last frame's.",
    "stride": "Frames between window starts.",
    "method": "Fusion method 1, 2, 3 or 4.",
    "variant": "Fusion 4 variant: v1 (self-attention), v2 (cross-attention on video), v3 (on audio).",
    "audio_window": "Fusion: which audio table (1-4 s); default: the window's length, else the longest shorter "
    "table (what was chosen is logged as data_audio_window).",
    "audio_len": "Fusion: audio steps per window (longer are truncated); default: the longest.",
    "segment": "Sequence model: segment length in seconds; every frame of a segment is predicted.",
    "hop": "Sequence model: seconds between segment starts; overlapping predictions are averaged per frame.",
    "modality": "Sequence model input: video, audio (the audio rows aligned to frames) or both (concatenated).",
    "bidirectional": "Sequence model: 1 for a bidirectional GRU, 0 for a forward one.",
    "hidden": "Hidden size (ffnn, audio, video GRU, fusion 1).",
    "layers": "GRU layers (video).",
    "dropout": "Dropout rate.",
    "pooling": "Video temporal pooling: avg, max or conv1d.",
    "d_model": "Transformer width (fusion 2-4).",
    "heads": "Attention heads (fusion 2-4).",
    "ff": "Position-wise feed-forward size (fusion 2-4).",
    "depth": "Transformer blocks (fusion 2).",
    "repeats": "Repeated second blocks (fusion 4; with arch=thesis, v1 has one).",
    "readout": "Fusion 4 readout: mean over the window's steps (the thesis) or attention (positional encoding and "
    "learned weights over the steps, so the labelled last step can count most).",
    "arch": "Architecture: 'emo' (standardised inputs and emo's changes, docs/thesis-departures.md) or 'thesis' "
    "(the models as the thesis describes them).",
    "kernel_size": "Conv1d video encoder kernel (fusion 4).",
    "epochs": "Maximum epochs.",
    "patience": "Stop after this many epochs without a better dev loss.",
    "lr": "Adam learning rate.",
    "batch_size": "Mini-batch size.",
    "loss": "Training loss: rmse (RMSE V + RMSE A, the thesis) or ccc (2 - CCC V - CCC A); default: the family's "
    "(ccc for seq, as AVEC and MuSe).",
    "seed": "Seed of weights, shuffling and dropout: same seed, same numbers (CPU).",
    "device": "auto (CUDA when available), cpu or cuda.",
    "precision": "Arithmetic of the forward pass: fp32, bf16 (autocast; CPUs with AVX-512 BF16/AMX, and CUDA) or "
    "fp16 (CUDA only, with a gradient scaler). Weights and the loss stay fp32.",
    "threads": "CPU threads for torch (default: torch's choice, one per core). On a machine shared with other "
    "work, or with several workers, give each process its share of the cores (1 on a busy 2-core box).",
    "algorithms": f"Baseline algorithms (comma-separated): {', '.join(ALGORITHMS)}.",
    "svr_exact_max": "SVR runs exactly (libsvm) up to this many training frames; above, in linear time "
    "(averaged SGD on SVR's loss, Nystroem RBF features).",
    "fps": "Frame rate, when meta.json has none.",
    "label_scale": "Labels lie in [-S, S] (SEWA 1, AFEW-VA 10); default: meta.json, else 1.",
    "id_pattern": "Regex with a named group 'id' deriving the video id from the video table's 'path'.",
    "audio_id_pattern": "Regex with a named group 'id' deriving the video id from an audio 'filename'.",
    "split_seed": "Seed of the video split, used only when the dataset has no split yet.",
    "label_delay": "Annotator lag in seconds: the features at time t are paired with the label at t + delay "
    "(AVEC's CES baseline uses 2 s).",
}


@dataclass
class Config:
    """Everything that decides an experiment's result. `None` means "the model's own default" (model
    hyperparameters) or "decided by the data" (the `AUTO` settings)."""

    family: str = "fusion"
    data: str = "synthetic"
    window: float | None = None  # seconds; default: the family's (FAMILIES); the audio family reads audio_{window}s
    label: str | None = None  # "mean" | "last"; default: the family's (last for fusion, as the thesis)
    stride: int = 1  # frames between window starts
    method: int = 4  # fusion method 1-4
    variant: str | None = None  # fusion 4: v1 | v2 | v3 (default v2)
    audio_window: int | None = None  # fusion: which audio table (default: the window's length)
    audio_len: int | None = None  # fusion: audio steps per window (default: the longest)
    segment: float = 20.0  # sequence: seconds per segment
    hop: float = 10.0  # sequence: seconds between segment starts
    modality: str = "video"  # sequence: video | audio | both
    # model hyperparameters (None: the model's default)
    hidden: int | None = None
    layers: int | None = None
    dropout: float | None = None
    pooling: str | None = None
    d_model: int | None = None
    heads: int | None = None
    ff: int | None = None
    depth: int | None = None
    repeats: int | None = None
    kernel_size: int | None = None
    readout: str | None = None
    bidirectional: int | None = None
    arch: str = "emo"  # "thesis": the models as written, without input standardisation
    # training
    epochs: int = 30
    patience: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    loss: str | None = None  # default: the family's
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None  # torch's own choice
    # baseline family
    algorithms: tuple[str, ...] = ALGORITHMS
    svr_exact_max: int = 2000  # libsvm's linear kernel takes minutes above a few thousand frames
    # dataset reading
    fps: float | None = None
    label_scale: float | None = None
    id_pattern: str | None = None
    audio_id_pattern: str | None = None
    split_seed: int = 0
    label_delay: float = 0.0  # seconds the labels lag the features (annotator reaction time)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        family = FAMILIES.get(self.family)
        if family is not None:
            if self.window is None:
                self.window = family.window or 1.0
            if self.label is None and family.kind in ("window", "fusion"):
                self.label = family.label
            if self.loss is None:
                self.loss = family.loss

    @property
    def model_name(self) -> str:
        return f"fusion{self.method}" if self.family == "fusion" else self.family

    @property
    def input_kind(self) -> str:
        return FAMILIES[self.family].kind

    @property
    def window_label(self) -> str:
        return self.label or FAMILIES[self.family].label

    @property
    def standardize(self) -> bool:
        """emo standardises every torch model's inputs with train statistics; the thesis did not."""
        return self.arch == "emo"

    def data_options(self) -> dict:
        """How this experiment reads its dataset folder: `load_dataset(config.data, **config.data_options())`."""
        return {
            "fps": self.fps,
            "label_scale": self.label_scale,
            "id_pattern": self.id_pattern,
            "audio_id_pattern": self.audio_id_pattern,
            "split_seed": self.split_seed,
            "label_delay": self.label_delay,
        }

    def model_kwargs(self) -> dict:
        """The hyperparameters set explicitly that this family's model takes.

        Entry points pass one parameter set to every method (`hidden` reaches fusion 4 too), so a
        hyperparameter the model has no use for is left out here, and reported by `unused()`.
        """
        if self.family == "baseline":
            return {}
        accepted = _signature(self.model_name)
        kw = {k: getattr(self, k) for k in MODEL_KEYS if getattr(self, k) is not None and k in accepted}
        if "variant" in accepted:
            kw.setdefault("variant", "v2")
        return kw

    def hyperparameters(self) -> dict:
        """The model's hyperparameters as used: the constructor's defaults, overridden by the config."""
        if self.family == "baseline":
            return {}
        return {**model_defaults(self.model_name), **self.model_kwargs()}

    def unused(self) -> list[str]:
        """Hyperparameters set in the config that this family's model does not take."""
        if self.family == "baseline":
            return []
        used = self.model_kwargs()
        return [k for k in MODEL_KEYS if getattr(self, k) is not None and k not in used and k != "arch"]

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def settings(self) -> tuple[str, ...]:
        """The settings that apply to this config's model, as logged and as its MLproject entry point's
        parameters: the family's, less the hyperparameters only the family's other models take
        (`hidden` is Fusion 1's, not Fusion 4's)."""
        if self.family == "baseline":
            return family_settings(self.family)
        accepted = _signature(self.model_name)
        return tuple(k for k in family_settings(self.family) if k not in MODEL_KEYS or k == "arch" or k in accepted)

    def params(self) -> dict[str, str]:
        """Every setting of this config's model with its resolved value, as logged (and as the MLproject's
        defaults): hyperparameters at the value the model uses, data-decided ones "auto"."""
        values = {**self.to_dict(), **self.hyperparameters()}
        return {k: param_str(values[k]) for k in self.settings()}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["algorithms"] = list(self.algorithms)
        return d

    def validate(self) -> Config:
        """Fail with a clear message before any data is read or any training starts."""
        self._check_choices()
        self._check_numbers()
        return self

    def _check_choices(self) -> None:
        """Every closed-list setting holds one of its choices."""
        if self.family not in FAMILIES:
            _bad(f"unknown family {self.family!r}; choose one of {', '.join(FAMILIES)}.")
        if self.pooling is not None and self.pooling not in POOLINGS:
            _bad(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}.")
        if self.family == "fusion" and self.method not in METHODS:
            _bad(f"unknown fusion method {self.method}; choose 1, 2, 3 or 4.")
        if self.variant is not None and self.variant not in VARIANTS:
            _bad(f"unknown fusion 4 variant {self.variant!r}; choose one of {', '.join(VARIANTS)}.")
        if self.label is not None and self.label not in LABELS:
            _bad(f"unknown window label {self.label!r}; choose mean or last.")
        if self.arch not in ARCHS:
            _bad(
                f"unknown arch {self.arch!r}; choose emo (emo's models) or thesis (the models as the thesis "
                f"wrote them)."
            )
        if self.readout is not None and self.readout not in READOUTS:
            _bad(f"unknown readout {self.readout!r}; choose one of {', '.join(READOUTS)}.")
        if self.modality not in MODALITIES:
            _bad(f"unknown modality {self.modality!r}; choose one of {', '.join(MODALITIES)}.")
        if self.loss not in LOSSES:
            _bad(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}.")
        unknown = set(self.algorithms) - set(ALGORITHMS)
        if unknown:
            _bad(f"unknown baseline algorithm(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALGORITHMS)}.")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            _bad(f"unknown device {self.device!r}; choose auto, cpu or cuda.")
        if self.precision not in PRECISIONS:
            _bad(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}.")

    def _check_numbers(self) -> None:
        """Every number is in its range."""
        if not self.window > 0:
            _bad(f"window must be a positive number of seconds (got {self.window:g}); the thesis uses 1, 2, 3 or 4.")
        if self.audio_window is not None and self.audio_window not in AUDIO_WINDOWS:
            _bad(f"audio_window must be 1, 2, 3 or 4 (got {self.audio_window}).")
        if self.family == "audio" and self.window not in AUDIO_WINDOWS:
            _bad(
                f"the audio model reads one of the audio_1s … audio_4s tables: window must be 1, 2, 3 or 4 "
                f"(got {self.window:g})."
            )
        for name in ("epochs", "batch_size", "stride"):
            if getattr(self, name) < 1:
                _bad(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if not self.segment > 0 or not 0 < self.hop <= self.segment:
            _bad(
                f"segments need segment > 0 and 0 < hop <= segment seconds (got segment {self.segment:g}, hop "
                f"{self.hop:g}): a hop longer than the segment would leave frames unpredicted."
            )
        if self.bidirectional not in (None, 0, 1):
            _bad(f"bidirectional must be 0 or 1 (got {self.bidirectional}).")
        if self.patience < 0:
            _bad(f"patience must be 0 or more (got {self.patience}).")
        if not 0 <= self.label_delay < 60:
            _bad(
                f"label_delay must be 0 or more seconds, below a minute (got {self.label_delay:g}); raters react "
                f"about 1-4 s late."
            )
        if not self.lr > 0:
            _bad(f"lr must be positive (got {self.lr:g}).")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            _bad(f"dropout must be in [0, 1) (got {self.dropout:g}).")
        for name in ("hidden", "layers", "d_model", "heads", "ff", "depth", "repeats", "kernel_size", "audio_len"):
            value = getattr(self, name)
            if value is not None and value < 1:
                _bad(f"{name} must be at least 1 (got {value}).")
        if self.d_model is not None and self.heads is not None and self.d_model % self.heads:
            _bad(f"d_model ({self.d_model}) must be divisible by heads ({self.heads}).")
        if self.threads is not None and self.threads < 1:
            _bad(f"threads must be at least 1 (got {self.threads}); leave it unset for torch's choice.")


def _bad(msg: str):
    raise ConfigError(msg)


def param_str(value) -> str:
    """A setting as logged and as written in the MLproject: None is "auto", lists are comma-separated."""
    if value is None:
        return "auto"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


def _signature(model: str) -> dict[str, object]:
    """A registered model's hyperparameters and their defaults (declared in `emo.core.hyper`)."""
    from emo.core.hyper import HYPER

    return HYPER[model]


def model_defaults(model: str) -> dict:
    """A registered model's hyperparameters with their defaults (the settings Config holds)."""
    return {k: v for k, v in _signature(model).items() if k in MODEL_KEYS}


def family_settings(family: str) -> tuple[str, ...]:
    """The settings of `family`, in a stable order: data, inputs, model, training."""
    if family == "baseline":
        return (*DATA_SETTINGS, *BASELINE_SETTINGS)
    models = FAMILIES[family].models
    hyper = [k for k in MODEL_KEYS if k != "arch" and any(k in _signature(m) for m in models)]
    return (*DATA_SETTINGS, *KIND_SETTINGS[FAMILIES[family].kind], *hyper, *TRAIN_SETTINGS)
