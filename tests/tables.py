"""Small hand-made tables in the contract's layout, for tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def video_frame(
    lengths: dict[str, int], *, dim: int = 3, fps: float = 5.0, seed: int = 0, shuffle: bool = True
) -> pd.DataFrame:
    """A video frame table with `lengths[vid]` frames per video, random features and labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for vid, n in lengths.items():
        rows.append(pd.DataFrame({"video_id": vid, "timestamp": np.arange(n) / fps}))
    df = pd.concat(rows, ignore_index=True)
    df["valence"] = rng.uniform(-1, 1, len(df)).round(3)
    df["arousal"] = rng.uniform(-1, 1, len(df)).round(3)
    for j in range(dim):
        df[f"emb_{j}"] = rng.normal(size=len(df)).astype(np.float32)
    return df.sample(frac=1, random_state=seed).reset_index(drop=True) if shuffle else df


def audio_frame(durations: dict[str, float], *, hop: float = 0.5, dim: int = 2, seed: int = 1) -> pd.DataFrame:
    """An audio table with a row every `hop` seconds per video, eGeMAPS-like feature names."""
    rng = np.random.default_rng(seed)
    rows = [pd.DataFrame({"filename": f"{vid}.wav", "timestamp": np.arange(0, d, hop)}) for vid, d in durations.items()]
    df = pd.concat(rows, ignore_index=True)
    for j in range(dim):
        df[f"feat{j}_amean"] = rng.normal(size=len(df))
    return df


def write_dataset(
    folder: Path,
    video: pd.DataFrame,
    audio: dict[int, pd.DataFrame] | None = None,
    meta: dict | None = None,
    fmt: str = "csv",
) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write = (lambda df, p: df.to_csv(p, index=False)) if fmt == "csv" else (lambda df, p: df.to_parquet(p))
    write(video, folder / f"video.{fmt}")
    for w, df in (audio or {}).items():
        write(df, folder / f"audio_{w}s.{fmt}")
    (folder / "meta.json").write_text(json.dumps(meta or {"name": "tiny", "fps": 5, "label_scale": 1}))
    return folder
