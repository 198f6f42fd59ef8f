"""The thesis's experiment matrix as data: every cell a named experiment that `reproduce` runs and
`report` puts back in its table.

A cell is a family with the settings that make it that cell (window, pooling, method, variant,
label rule, arch); everything else comes from `Config`. Each thesis cell exists twice: `arch=thesis`
(the models as the thesis describes them) and `arch=emo` (emo's defaults), so the report shows
whether each of emo's changes earns its place (docs/thesis-departures.md lists them). Two kinds of
extra cells answer questions the thesis leaves open: video models with last-frame labels (the
like-for-like partner of fusion, which the thesis labels by the last frame and video by the mean),
and Fusion 4 v2 with the attention readout. Adding an experiment means adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emo.core.config import ARCHS, AUDIO_WINDOWS, MODALITIES, POOLINGS, VARIANTS, Config
from emo.core.errors import ConfigError

WINDOWS = AUDIO_WINDOWS  # the thesis's windows, 1-4 s: the lengths of its audio tables
TABLES = ("baseline", "ffnn", "video", "audio", "fusion", "field")  # field: the AVEC/MuSe baselines

# The thesis's published test values (SYSTEM.md), by corpus and cell row: MAE/RMSE per target.
PUBLISHED: dict[tuple[str, str], dict[str, float]] = {
    ("afew", "bayesian_ridge"): {"rmse_valence": 0.09, "rmse_arousal": 0.13},
    ("afew", "svr"): {"rmse_valence": 0.09, "rmse_arousal": 0.13},
    ("afew", "tree"): {"rmse_valence": 0.15, "rmse_arousal": 0.19},
    ("sewa", "bayesian_ridge"): {"rmse_valence": 0.10, "rmse_arousal": 0.10},
    ("sewa", "svr"): {"rmse_valence": 0.11, "rmse_arousal": 0.10},
    ("sewa", "tree"): {"rmse_valence": 0.17, "rmse_arousal": 0.14},
    ("afew", "ffnn"): {"mae_valence": 0.07, "rmse_valence": 0.09, "mae_arousal": 0.08, "rmse_arousal": 0.13},
    ("sewa", "ffnn"): {"mae_valence": 0.09, "rmse_valence": 0.12, "mae_arousal": 0.08, "rmse_arousal": 0.10},
    ("afew", "video-4s-max"): {"mae_valence": 0.07, "rmse_valence": 0.10, "mae_arousal": 0.06, "rmse_arousal": 0.08},
    ("sewa", "video-3s-avg"): {"mae_valence": 0.07, "rmse_valence": 0.10, "mae_arousal": 0.08, "rmse_arousal": 0.11},
    ("sewa", "audio-1s"): {"mae_valence": 0.13, "rmse_valence": 0.16, "mae_arousal": 0.13, "rmse_arousal": 0.17},
    ("sewa", "fusion1-2s"): {
        "mae_valence": 0.0893,
        "rmse_valence": 0.1145,
        "mae_arousal": 0.0930,
        "rmse_arousal": 0.1183,
    },
    ("sewa", "fusion2-4s"): {
        "mae_valence": 0.0902,
        "rmse_valence": 0.1174,
        "mae_arousal": 0.0988,
        "rmse_arousal": 0.1284,
    },
    ("sewa", "fusion3-1s"): {
        "mae_valence": 0.0928,
        "rmse_valence": 0.1206,
        "mae_arousal": 0.1025,
        "rmse_arousal": 0.1355,
    },
    ("sewa", "fusion4-v2-4s"): {
        "mae_valence": 0.0815,
        "rmse_valence": 0.1035,
        "mae_arousal": 0.0956,
        "rmse_arousal": 0.1239,
    },
}


@dataclass(frozen=True)
class Cell:
    """One named experiment of the matrix."""

    name: str  # e.g. "video-3s-avg/thesis": unique, stable (resuming and the report key on it)
    family: str
    table: str  # the report table it belongs to
    row: str  # its row there, e.g. "fusion 4 v2"; the cell's "thesis row" for published values
    settings: dict = field(default_factory=dict)  # Config fields that make this cell
    fuses: tuple[str, ...] = ()  # a late-fusion cell: the video and audio cells whose runs (same seed) it fuses

    @property
    def window(self) -> float | None:
        return self.settings.get("window")

    @property
    def arch(self) -> str:
        return self.settings.get("arch", "emo")

    @property
    def needs_audio(self) -> bool:
        """Whether the cell reads audio tables (a dataset without them cannot run it)."""
        return self.family in ("audio", "fusion", "late") or self.settings.get("modality", "video") != "video"

    @property
    def published_key(self) -> str:
        """The name under which the thesis published this cell (its name without the arch)."""
        return self.name.split("/")[0]

    def config(self, **common) -> Config:
        """The cell's Config: `common` settings (data, epochs, seed …) under the cell's own."""
        return Config(family=self.family, **{**common, **self.settings}).validate()


def _both(name: str, family: str, table: str, row: str, **settings) -> list[Cell]:
    return [Cell(f"{name}/{arch}", family, table, row, {**settings, "arch": arch}) for arch in ARCHS]


def _matrix() -> list[Cell]:
    cells = [Cell("baseline", "baseline", "baseline", "baseline")]
    cells += _both("ffnn", "ffnn", "ffnn", "ffnn")
    for w in WINDOWS:
        for pooling in POOLINGS:
            cells += _both(
                f"video-{w}s-{pooling}", "video", "video", f"video {pooling}", window=float(w), pooling=pooling
            )
        cells.append(
            Cell(
                f"video-{w}s-avg-last/emo",
                "video",
                "video",
                "video avg, last-frame label",
                {"window": float(w), "pooling": "avg", "label": "last", "arch": "emo"},
            )
        )
    for w in WINDOWS:
        cells += _both(f"audio-{w}s", "audio", "audio", "audio", window=float(w))
    for w in WINDOWS:
        for method in (1, 2, 3):
            cells += _both(
                f"fusion{method}-{w}s", "fusion", "fusion", f"fusion {method}", window=float(w), method=method
            )
        for variant in VARIANTS:
            cells += _both(
                f"fusion4-{variant}-{w}s",
                "fusion",
                "fusion",
                f"fusion 4 {variant}",
                window=float(w),
                method=4,
                variant=variant,
            )
        cells.append(
            Cell(
                f"fusion4-v2-{w}s-attention/emo",
                "fusion",
                "fusion",
                "fusion 4 v2, attention readout",
                {"window": float(w), "method": 4, "variant": "v2", "readout": "attention", "arch": "emo"},
            )
        )
    # the field's sequence baseline (AVEC 2019, MuSe): every frame of long segments, each modality and both
    cells += [Cell(f"seq-{m}/emo", "seq", "field", f"seq {m}", {"modality": m, "arch": "emo"}) for m in MODALITIES]
    # and late fusion (MuSe-Wilder's best valence), once both partners of a seed have finished: of the seq
    # models, and of each window's video and audio models on the fusion cells' targets (last-frame labels)
    cells.append(
        Cell(
            "late-seq/emo",
            "late",
            "field",
            "late fusion of seq video and audio",
            {"arch": "emo"},
            fuses=("seq-video/emo", "seq-audio/emo"),
        )
    )
    for w in WINDOWS:
        cells.append(
            Cell(
                f"late-{w}s/emo",
                "late",
                "field",
                "late fusion of video avg and audio, last-frame label",
                {"window": float(w), "label": "last", "arch": "emo"},
                fuses=(f"video-{w}s-avg-last/emo", f"audio-{w}s/emo"),
            )
        )
    return cells


MATRIX: tuple[Cell, ...] = tuple(_matrix())
CELLS: dict[str, Cell] = {c.name: c for c in MATRIX}


def find(name: str) -> Cell:
    """The cell named `name`, or a clear error listing where to look."""
    if name not in CELLS:
        near = [c for c in CELLS if c.startswith(name.split("/")[0])][:6]
        raise ConfigError(
            f"no experiment {name!r} in the matrix"
            + (f"; did you mean {', '.join(near)}?" if near else "; `emo reproduce --list` lists them.")
        )
    return CELLS[name]


def select(only: str | None = None, windows: str | None = None, archs: str | None = None) -> list[Cell]:
    """The cells of the families or report tables in `only` ("video,fusion"), of the `windows`
    ("1,2"; cells without a window always stay) and the `archs` ("emo"); None: all."""

    def parse(text: str | None, what: str, allowed) -> set | None:
        if not text:
            return None
        items = {t.strip() for t in str(text).split(",") if t.strip()}
        bad = sorted(i for i in items if i not in allowed)
        if bad:
            raise ConfigError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(map(str, allowed))}.")
        return items

    tables = parse(only, "family", TABLES)
    wins = parse(windows, "window", [str(w) for w in WINDOWS])
    arch = parse(archs, "arch", ARCHS)
    chosen = [
        c
        for c in MATRIX
        if (tables is None or c.table in tables)
        and (wins is None or c.window is None or f"{c.window:g}" in wins)
        and (arch is None or c.family == "baseline" or c.arch in arch)
    ]
    if not chosen:
        raise ConfigError("no cell of the matrix matches --only/--windows/--arch.")
    return chosen
