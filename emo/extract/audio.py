"""eGeMAPS (v02) functionals over sliding windows, computed by openSMILE itself.

Each recording is decoded to 16 kHz mono first (eGeMAPS's rate; PyAV resamples), then openSMILE's
functionals run in its own fixed frame mode: one row per window start, every `hop` seconds, for
each window length (1-4 s: the thesis's audio tables). The rows are keyed by the window's start
time, as the data contract's audio tables are. ComParE 2016 functionals are offered too.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emo.core.errors import ConfigError, DataError
from emo.extract.media import AUDIO_RATE, decode_audio

if TYPE_CHECKING:
    from emo.extract.batch import Parts

FEATURE_SETS = ("egemaps", "compare")


@dataclass
class AudioFeatures:
    """One window length's functionals of one recording: start times (s) and (n, F) features."""

    times: np.ndarray
    features: np.ndarray
    names: list[str]


def _smile(feature_set: str, window: float, hop: float):
    import opensmile

    if feature_set not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {feature_set!r}; choose one of {', '.join(FEATURE_SETS)}.")
    sets = {"egemaps": opensmile.FeatureSet.eGeMAPSv02, "compare": opensmile.FeatureSet.ComParE_2016}
    fd, conf = tempfile.mkstemp(suffix=".conf", prefix="emo-frames-")
    with os.fdopen(fd, "w") as f:  # openSMILE's own sliding-window mode for its functionals
        f.write(f"frameMode = fixed\nframeSize = {window:g}\nframeStep = {hop:g}\nframeCenterSpecial = left\n")
    try:
        return opensmile.Smile(
            feature_set=sets[feature_set],
            feature_level=opensmile.FeatureLevel.Functionals,
            options={"frameModeFunctionalsConf": conf},
        ), conf
    except Exception:
        os.unlink(conf)
        raise


def functionals(signal: np.ndarray, path, *, windows, hop: float, feature_set: str) -> dict[int, AudioFeatures]:
    """Functionals of a decoded 16 kHz mono signal over windows of each length in `windows` (seconds),
    every `hop` seconds; `path` names it in messages."""
    if not hop > 0:
        raise ConfigError(f"--hop must be a positive number of seconds (got {hop:g}).")
    out = {}
    for w in windows:
        if len(signal) < w * AUDIO_RATE:
            raise DataError(f"{path}: {len(signal) / AUDIO_RATE:.2f} s of audio, shorter than a {w} s window.")
        smile, conf = _smile(feature_set, w, hop)
        try:
            df = smile.process_signal(signal, AUDIO_RATE)
        finally:
            os.unlink(conf)
        starts = df.index.get_level_values("start").total_seconds().to_numpy()
        out[int(w)] = AudioFeatures(starts, df.to_numpy(np.float32), [str(c) for c in df.columns])
    return out


def audio_table(window: int) -> str:
    return f"audio_{window}s"


def audio_options(*, windows, hop: float, feature_set: str) -> dict[str, dict]:
    """The options each `audio_{N}s` table's parts are made with: a part made with others is re-made."""
    return {audio_table(int(w)): {"window": int(w), "hop": hop, "feature_set": feature_set} for w in windows}


def audio_job(
    path: Path, parts: Parts, vid: str, *, windows, hop: float, feature_set: str, progress: bool = False
) -> tuple[int, float]:
    """One recording -> its `audio_{N}s` parts (see `emo.extract.batch`); (rows, seconds of audio)."""
    signal = decode_audio(path, AUDIO_RATE)
    feats = functionals(signal, path, windows=windows, hop=hop, feature_set=feature_set)
    for w, f in feats.items():
        parts.write(audio_table(w), vid, f.times, f.features, f.names)
    return sum(len(f.times) for f in feats.values()), len(signal) / AUDIO_RATE
