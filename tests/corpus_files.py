"""Writers of small, format-faithful corpus files (AVEC/SEWA, AFEW-VA, Aff-Wild2, MuSe, RECOLA, openSMILE),
so that the import tests run without the shared fixtures too. Each follows the layout documented in
the fixtures' PROVENANCE.md: delimiters, headers, quoting, units and rates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _rows(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def avec_labels(
    path: Path, name: str, times: np.ndarray, valence: np.ndarray, arousal: np.ndarray, header: bool = True
) -> None:
    """`name;timestamp;arousal;valence;liking`, quoted name, seconds with 6 decimals."""
    lines = ["name;timestamp;arousal;valence;liking"] if header else []
    lines += [f"'{name}';{t:.6f};{a:.6f};{v:.6f};0.000000" for t, a, v in zip(times, arousal, valence)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_rows(lines))


def avec_features(
    path: Path, name: str, times: np.ndarray, x: np.ndarray, header: bool = False, sep: str = ";"
) -> None:
    """`name;timestamp;<features>` (AVEC 2018 ships them without a header)."""
    lines = [sep.join(["name", "timestamp"] + [f"feat{j}" for j in range(x.shape[1])])] if header else []
    lines += [sep.join([f"'{name}'", f"{t:.6f}"] + [f"{v:.6f}" for v in row]) for t, row in zip(times, x)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_rows(lines))


def opensmile_csv(path: Path, times: np.ndarray, x: np.ndarray, names: list[str] | None = None) -> None:
    """openSMILE CSV: `name;frameTime;…`, `'unknown'` instance name, seconds."""
    names = names or [f"F{j}_sma3_amean" for j in range(x.shape[1])]
    lines = [";".join(["name", "frameTime"] + names)]
    lines += [";".join(["'unknown'", f"{t:.6f}"] + [f"{v:.6e}" for v in row]) for t, row in zip(times, x)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_rows(lines))


def opensmile_arff(path: Path, times: np.ndarray, x: np.ndarray, time_attr: str = "frameTime") -> None:
    """openSMILE ARFF: `@attribute name string`, numeric attributes, a `class` of `?`, CRLF lines."""
    lines = ["@relation openSMILE_features", "", "@attribute name string", f"@attribute {time_attr} numeric"]
    lines += [f"@attribute feat{j}_amean numeric" for j in range(x.shape[1])]
    lines += ["@attribute class numeric", "", "@data", ""]
    lines += [",".join(["'unknown'", f"{t:g}"] + [f"{v:.6e}" for v in row] + ["?"]) for t, row in zip(times, x)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())


def recola_gold(path: Path, name: str, times: np.ndarray, values: np.ndarray) -> None:
    """AVEC 2016 gold standard: ARFF, CRLF, `Instance_name, frameTime, GoldStandard`, 25 Hz."""
    lines = [
        "@relation GOLDSTANDARD",
        "",
        "@attribute Instance_name string",
        "@attribute frameTime numeric",
        "@attribute GoldStandard numeric",
        "",
        "",
        "@data",
        "",
    ]
    lines += [f"{name},{t:g},{v:.6f}" for t, v in zip(times, values)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())


def muse_challenge(path: Path, times_ms: np.ndarray, values: np.ndarray) -> None:
    """MuSe challenge labels: `timestamp,value,segment_id`, integer milliseconds."""
    lines = ["timestamp,value,segment_id"] + [f"{int(t)},{v:.4f},1" for t, v in zip(times_ms, values)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_rows(lines))


def muse_raw(path: Path, times_s: np.ndarray, ratings: np.ndarray) -> None:
    """Raw MuSe ratings: `timestamp,<annotator ids>`, seconds."""
    lines = ["timestamp," + ",".join(str(j + 1) for j in range(ratings.shape[1]))]
    lines += [f"{t:.2f}," + ",".join(f"{v:.4f}" for v in row) for t, row in zip(times_s, ratings)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_rows(lines))


def muse_features(path: Path, times_ms: np.ndarray, x: np.ndarray) -> None:
    """MuSe feature segments: `timestamp,segment_id,<features>`, milliseconds."""
    lines = ["timestamp,segment_id," + ",".join(f"f{j}" for j in range(x.shape[1]))]
    lines += [f"{int(t)},1," + ",".join(f"{v:.6f}" for v in row) for t, row in zip(times_ms, x)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_rows(lines))


def affwild2_annotation(path: Path, valence: np.ndarray, arousal: np.ndarray) -> None:
    """`valence,arousal` header, line i = frame i; -5 marks an unlabelled frame."""
    lines = ["valence,arousal"] + [f"{v:.3f},{a:.3f}" for v, a in zip(valence, arousal)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_rows(lines))


def afew_clip(folder: Path, clip: str, frames: dict[int, tuple[float, float, np.ndarray]]) -> Path:
    """`<clip>/<clip>.json`: frames keyed by 5-digit frame number with valence, arousal, landmarks."""
    body = {
        "video_id": clip,
        "actor": "someone",
        "emotion": "Neutral",
        "frames": {
            f"{k:05d}": {"valence": float(v), "arousal": float(a), "landmarks": pts.tolist()}
            for k, (v, a, pts) in frames.items()
        },
    }
    path = folder / clip / f"{clip}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))
    return path
