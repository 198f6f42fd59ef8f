"""Synthetic SEWA-like and AFEW-VA-like datasets with a known generating process.

SEWA and AFEW-VA are licensed and cannot be shipped, so emo generates data in
*exactly* their on-disk layout (docs: data-contract) from a process whose best
achievable error is known.  Nothing produced here is SEWA or AFEW-VA data; every
folder says so in its ``meta.json`` (``"synthetic": true``).

Usage::

    from emo.data.synth import SCALES, SynthConfig, synthesize
    synthesize("data/synth", SynthConfig())                     # small, for tests
    synthesize("data/sewa-size", SynthConfig(**SCALES["sewa"]))  # SEWA's real size

The generating process (the science of the synthetic benchmark)
================================================================

Time.  Every video lasts ``duration_s`` seconds and has ``floor(duration_s * fps)``
frames at ``t_k = k / fps``.

Latent affect.  Per video, two smooth latent signals in [-0.9, 0.9]::

    x(t) = o + sum_{k=1..3} A_k sin(2 pi t / P_k + phi_k)
           o ~ N(0, 0.35^2) (per-video offset), A_k ~ U(0.25, 0.6),
           P_k ~ U(15, 60) s, phi_k ~ U(0, 2 pi)
    v(t) = 0.9 tanh(x_v(t))
    a(t) = 0.9 tanh(0.3 x_v(t) + sqrt(1 - 0.3^2) x_a(t))   (mildly correlated with v)

Labels.  What a rater writes is the latent plus i.i.d. rater noise, clipped and
scaled::

    label(t) = clip(latent(t) + N(0, rater_noise^2), -1, 1) * label_scale

so the best achievable per-frame RMSE (in [-1, 1] units) is ``rater_noise`` --
``meta.json``'s ``noise_floor``.  (A target that averages n frames' labels, like a
window-mean label, has a lower floor, about ``rater_noise / sqrt(n)``.)

Face embeddings (``emb_0 .. emb_{dim-1}``, the video table).  The face carries
mostly valence::

    e(t) = mu + b_video + 6.0 v(t) u_v + 1.5 a(t) u_a
           + 1.0 sum_{h=1..4} tanh(g_h . [v(t), a(t)] + c_h) m_h + 1.0 eps(t)

``mu ~ N(0, 0.5^2 I)`` is a global mean, ``b_video ~ N(0, 0.3^2 I)`` a per-video
identity offset, ``u_v, u_a, m_h`` orthonormal directions (random, fixed by the
seed), ``g_h ~ N(0, 1.5^2)``, ``c_h ~ N(0, 0.5^2)`` and ``eps`` i.i.d. N(0, I)
per frame.  The signal's norm does not grow with ``dim``, so the problem is
about equally hard at 32 and 512 dimensions.  Read along ``u_v``, one frame
gives valence to within about 1/6 ~ 0.17, so a per-frame linear model is far
better than the mean but well above the noise floor, and a temporal model that
averages a few seconds of frames can approach the floor; arousal is visible in
the face only weakly (1/1.5 per frame).

Voice features (the ``audio_Ns`` tables, SEWA only).  Speech alternates with
silence: per video, speech stretches of U(5, 15) s and silent stretches of
U(1.5, 4.5) s (about 23% of the time silent), starting at a random phase; ``s(t)``
is 1 while speaking.  The voice at frame time t is::

    z(t) = s(t) (delta + 5.0 a(t) w_a + 0.5 v(t) w_v
                 + 1.0 sum_{h=1..3} tanh(g'_h . [a(t), v(t)] + c'_h) m'_h)
           + 2.0 eps'(t)

and the features of the window [t0, t0 + N) (N = 1, 2, 3, 4 s; a row every
``audio_hop_s`` seconds; only whole windows, so the last window ends at or before
the video's end) are::

    feature = scale_j * (mean of z over the window's frames + c_video + 0.5 eps'') + loc_j

with a per-video speaker offset ``c_video ~ N(0, 0.3^2 I)``, i.i.d. window noise
``eps''``, and per-feature location/scale (``loc_j ~ N(0, 5^2)``, ``scale_j`` log-
uniform in [0.1, 10]) so that features need standardising, as real eGeMAPS
functionals do.  ``delta ~ N(0, I)`` marks speech versus silence.  The voice
carries mostly arousal; longer windows average more noise away.  A window that
falls mostly in silence carries only noise -- no affect.  The
``loudness_sma3_amean`` column is in sone-like units::

    loudness = mean over the window of
               [0.06 + s(t) g_video (0.75 + 0.35 a(t) + 0.05 v(t) + 0.15 eps'''(t)) + 0.01 eps''''(t)]
               + 0.005 eps''''' , at least 0.01

with a per-video speaker gain ``g_video = exp(N(0, 0.2^2))``, so silent windows sit
near the silence level 0.06 and speech around 0.75, louder when aroused.

Feature columns are named like openSMILE's eGeMAPSv02 functionals
(``loudness_sma3_amean``, ``F0semitoneFrom27.5Hz_sma3nz_amean``,
``mfcc1_sma3_amean``, ...; 88 names, then ``mfcc5_sma3_amean`` ... beyond 88),
the most familiar ones first, so a small ``audio_dim`` still has loudness, pitch
and MFCCs.  The audio tables carry no labels: per the contract a window's label
is the mean of the frame labels inside [timestamp, timestamp + N).

Files.  ``video.csv|parquet`` (sewa: ``path``, ``timestamp``; afew: ``path``,
``frame``, no timestamp, so readers take the frame / fps path), ``valence``,
``arousal``, ``emb_*`` (float32); sewa also ``audio_1s`` .. ``audio_4s``
(``filename``, ``timestamp``, features, float32); ``meta.json``.  Video ids are
the folder holding each frame (``clips/S0007/00012.png`` -> ``S0007``; AFEW-VA
style ``clips/007/00012.png`` -> ``007``) and the wav stem (``S0007.wav``).
Rows are shuffled (the contract allows any order; readers sort).  No
``split.json`` is written (the loader writes it on first use); a stale one, and
stale tables of the other format, are removed from the folder.

What a model should find.  Per frame, a linear model on the face gets valence to
about 0.17 RMSE (R^2 ~ 0.85) and arousal poorly (R^2 ~ 0.3-0.5); temporal models
can average the face noise away towards the floor.  The voice gets arousal to
about 0.2 in speech but nothing in silence, so audio alone is worse than it
could be and fusion should help arousal most.  (These are properties of this
synthetic process, not claims about SEWA or AFEW-VA.)

Determinism.  Everything is drawn from ``numpy.random.default_rng(seed)``
(global parameters first, then one spawned stream per video): the same config
gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emo.core.config import AUDIO_WINDOWS
from emo.core.errors import ConfigError
from emo.data.align import GRID_FPS

__all__ = ["SynthConfig", "SCALES", "synthesize", "audio_feature_names"]


# --- the generating process' constants (documented above, recorded in meta.json) ---
_LATENT_SINES = 3
_LATENT_PERIOD_S = (15.0, 60.0)  # SEWA-like: affect drifts over tens of seconds
_LATENT_AMPLITUDE = (0.25, 0.6)
_LATENT_OFFSET_SD = 0.35
_LATENT_BOUND = 0.9
_VA_CORRELATION = 0.3

_FACE_VALENCE_GAIN = 6.0
_FACE_AROUSAL_GAIN = 1.5
_FACE_NONLINEAR_UNITS = 4
_FACE_NONLINEAR_GAIN = 1.0
_FACE_NOISE_SD = 1.0
_FACE_IDENTITY_SD = 0.3
_FACE_MEAN_SD = 0.5

_SPEECH_S = (5.0, 15.0)
_SILENCE_S = (1.5, 4.5)
_VOICE_AROUSAL_GAIN = 5.0
_VOICE_VALENCE_GAIN = 0.5
_VOICE_NONLINEAR_UNITS = 3
_VOICE_NONLINEAR_GAIN = 1.0
_VOICE_FRAME_NOISE_SD = 2.0
_VOICE_WINDOW_NOISE_SD = 0.5
_VOICE_SPEAKER_SD = 0.3
_SILENCE_LOUDNESS = 0.06
_SPEECH_LOUDNESS = 0.75
_LOUDNESS_AROUSAL = 0.35
_LOUDNESS_VALENCE = 0.05
_LOUDNESS_SPEAKER_SD = 0.2

_CHUNK_ROWS = 65536

# eGeMAPSv02 functionals, the familiar ones first, then the rest in openSMILE's order.
_EGEMAPS_FIRST = [
    "loudness_sma3_amean",
    "F0semitoneFrom27.5Hz_sma3nz_amean",
    "mfcc1_sma3_amean",
    "mfcc2_sma3_amean",
    "mfcc3_sma3_amean",
    "mfcc4_sma3_amean",
    "spectralFlux_sma3_amean",
    "jitterLocal_sma3nz_amean",
    "shimmerLocaldB_sma3nz_amean",
    "HNRdBACF_sma3nz_amean",
    "F1frequency_sma3nz_amean",
    "F2frequency_sma3nz_amean",
    "alphaRatioV_sma3nz_amean",
    "hammarbergIndexV_sma3nz_amean",
    "loudness_sma3_stddevNorm",
    "F0semitoneFrom27.5Hz_sma3nz_stddevNorm",
]
_EGEMAPS_ALL = [
    "F0semitoneFrom27.5Hz_sma3nz_amean",
    "F0semitoneFrom27.5Hz_sma3nz_stddevNorm",
    "F0semitoneFrom27.5Hz_sma3nz_percentile20.0",
    "F0semitoneFrom27.5Hz_sma3nz_percentile50.0",
    "F0semitoneFrom27.5Hz_sma3nz_percentile80.0",
    "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2",
    "F0semitoneFrom27.5Hz_sma3nz_meanRisingSlope",
    "F0semitoneFrom27.5Hz_sma3nz_stddevRisingSlope",
    "F0semitoneFrom27.5Hz_sma3nz_meanFallingSlope",
    "F0semitoneFrom27.5Hz_sma3nz_stddevFallingSlope",
    "loudness_sma3_amean",
    "loudness_sma3_stddevNorm",
    "loudness_sma3_percentile20.0",
    "loudness_sma3_percentile50.0",
    "loudness_sma3_percentile80.0",
    "loudness_sma3_pctlrange0-2",
    "loudness_sma3_meanRisingSlope",
    "loudness_sma3_stddevRisingSlope",
    "loudness_sma3_meanFallingSlope",
    "loudness_sma3_stddevFallingSlope",
    "spectralFlux_sma3_amean",
    "spectralFlux_sma3_stddevNorm",
    "mfcc1_sma3_amean",
    "mfcc1_sma3_stddevNorm",
    "mfcc2_sma3_amean",
    "mfcc2_sma3_stddevNorm",
    "mfcc3_sma3_amean",
    "mfcc3_sma3_stddevNorm",
    "mfcc4_sma3_amean",
    "mfcc4_sma3_stddevNorm",
    "jitterLocal_sma3nz_amean",
    "jitterLocal_sma3nz_stddevNorm",
    "shimmerLocaldB_sma3nz_amean",
    "shimmerLocaldB_sma3nz_stddevNorm",
    "HNRdBACF_sma3nz_amean",
    "HNRdBACF_sma3nz_stddevNorm",
    "logRelF0-H1-H2_sma3nz_amean",
    "logRelF0-H1-H2_sma3nz_stddevNorm",
    "logRelF0-H1-A3_sma3nz_amean",
    "logRelF0-H1-A3_sma3nz_stddevNorm",
    "F1frequency_sma3nz_amean",
    "F1frequency_sma3nz_stddevNorm",
    "F1bandwidth_sma3nz_amean",
    "F1bandwidth_sma3nz_stddevNorm",
    "F1amplitudeLogRelF0_sma3nz_amean",
    "F1amplitudeLogRelF0_sma3nz_stddevNorm",
    "F2frequency_sma3nz_amean",
    "F2frequency_sma3nz_stddevNorm",
    "F2bandwidth_sma3nz_amean",
    "F2bandwidth_sma3nz_stddevNorm",
    "F2amplitudeLogRelF0_sma3nz_amean",
    "F2amplitudeLogRelF0_sma3nz_stddevNorm",
    "F3frequency_sma3nz_amean",
    "F3frequency_sma3nz_stddevNorm",
    "F3bandwidth_sma3nz_amean",
    "F3bandwidth_sma3nz_stddevNorm",
    "F3amplitudeLogRelF0_sma3nz_amean",
    "F3amplitudeLogRelF0_sma3nz_stddevNorm",
    "alphaRatioV_sma3nz_amean",
    "alphaRatioV_sma3nz_stddevNorm",
    "hammarbergIndexV_sma3nz_amean",
    "hammarbergIndexV_sma3nz_stddevNorm",
    "slopeV0-500_sma3nz_amean",
    "slopeV0-500_sma3nz_stddevNorm",
    "slopeV500-1500_sma3nz_amean",
    "slopeV500-1500_sma3nz_stddevNorm",
    "spectralFluxV_sma3nz_amean",
    "spectralFluxV_sma3nz_stddevNorm",
    "mfcc1V_sma3nz_amean",
    "mfcc1V_sma3nz_stddevNorm",
    "mfcc2V_sma3nz_amean",
    "mfcc2V_sma3nz_stddevNorm",
    "mfcc3V_sma3nz_amean",
    "mfcc3V_sma3nz_stddevNorm",
    "mfcc4V_sma3nz_amean",
    "mfcc4V_sma3nz_stddevNorm",
    "alphaRatioUV_sma3nz_amean",
    "hammarbergIndexUV_sma3nz_amean",
    "slopeUV0-500_sma3nz_amean",
    "slopeUV500-1500_sma3nz_amean",
    "spectralFluxUV_sma3nz_amean",
    "loudnessPeaksPerSec",
    "VoicedSegmentsPerSec",
    "MeanVoicedSegmentLengthSec",
    "StddevVoicedSegmentLengthSec",
    "MeanUnvoicedSegmentLength",
    "StddevUnvoicedSegmentLength",
    "equivalentSoundLevel_dBp",
]
LOUDNESS_COLUMN = "loudness_sma3_amean"


def audio_feature_names(n: int) -> list[str]:
    """The first ``n`` audio feature column names (eGeMAPS-like; loudness first)."""
    names = list(_EGEMAPS_FIRST) + [c for c in _EGEMAPS_ALL if c not in _EGEMAPS_FIRST]
    names += [f"mfcc{k}_sma3_amean" for k in range(5, 5 + max(0, n - len(names)))]
    return names[:n]


@dataclass(frozen=True)
class SynthConfig:
    """What to generate; every field is recorded in meta.json's ``generator``."""

    kind: str = "sewa"  # "sewa": video + audio_1s..4s, labels in [-1,1]; "afew": video only, [-10,10]
    videos: int = 24
    duration_s: float = 40.0
    dim: int = 32  # video embedding width (emb_0 .. emb_{dim-1})
    audio_dim: int = 16  # audio feature columns per table (sewa only)
    fps: float = GRID_FPS
    audio_hop_s: float = 0.5  # an audio row every hop seconds, for each window length 1..4 s
    rater_noise: float = 0.05  # std of the label noise in [-1, 1] units (= the noise floor)
    seed: int = 0
    fmt: str = "csv"  # "csv" or "parquet"

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in ("sewa", "afew"):
            problems.append(f"kind={self.kind!r} (expected 'sewa' or 'afew')")
        if self.fmt not in ("csv", "parquet"):
            problems.append(f"fmt={self.fmt!r} (expected 'csv' or 'parquet')")
        for name in ("videos", "dim", "audio_dim"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
                problems.append(f"{name}={value!r} (expected an integer >= 1)")
        for name in ("duration_s", "fps", "audio_hop_s"):
            value = getattr(self, name)
            if not (_is_real(value) and math.isfinite(value) and value > 0):
                problems.append(f"{name}={value!r} (expected a positive number)")
        if not (_is_real(self.rater_noise) and 0 <= self.rater_noise < 1):
            problems.append(f"rater_noise={self.rater_noise!r} (expected 0 <= rater_noise < 1)")
        if not (isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool) and self.seed >= 0):
            problems.append(f"seed={self.seed!r} (expected an integer >= 0)")
        if problems:
            raise ConfigError("Invalid synthetic-data config: " + "; ".join(problems) + ".")
        # plain Python numbers (numpy scalars would not survive json / equality with presets)
        for name in ("videos", "dim", "audio_dim", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("duration_s", "fps", "audio_hop_s", "rater_noise"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if _frame_count(self) < 1:
            raise ConfigError(
                f"Invalid synthetic-data config: duration_s={self.duration_s} at fps={self.fps} gives no frame."
            )
        if self.kind == "sewa" and _frame_count(self) / self.fps < max(AUDIO_WINDOWS):
            raise ConfigError(
                f"Invalid synthetic-data config: duration_s={self.duration_s} is shorter than the longest "
                f"audio window ({max(AUDIO_WINDOWS)} s), so audio_{max(AUDIO_WINDOWS)}s would be empty."
            )

    @property
    def label_scale(self) -> int:
        return 1 if self.kind == "sewa" else 10


SCALES: dict[str, dict] = {
    # the small defaults: seconds to generate, for tests and smoke runs
    "test": {"videos": 24, "duration_s": 40.0, "dim": 32, "audio_dim": 16, "fmt": "csv"},
    # the embedded default of every command (`--data synthetic`): enough videos for a model to
    # generalise to unseen faces, small enough to train a fusion model on a laptop CPU in minutes
    "demo": {"videos": 48, "duration_s": 40.0, "dim": 32, "audio_dim": 16, "fmt": "csv"},
    # SEWA's real size (540 videos x 300 s x 5 fps = 810k frames, 512-d faces, 88 eGeMAPS), for benchmarks
    "sewa": {"videos": 540, "duration_s": 300.0, "dim": 512, "audio_dim": 88, "fmt": "parquet"},
}


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _frame_count(config: SynthConfig) -> int:
    return int(math.floor(config.duration_s * config.fps + 1e-9))


def _video_ids(config: SynthConfig) -> list[str]:
    if config.kind == "sewa":
        width = max(4, len(str(config.videos)))
        return [f"S{i + 1:0{width}d}" for i in range(config.videos)]
    width = max(3, len(str(config.videos)))  # AFEW-VA's clips are numbered 001, 002, ...
    return [f"{i + 1:0{width}d}" for i in range(config.videos)]


def _directions(rng: np.random.Generator, dim: int, count: int) -> np.ndarray:
    """``count`` unit vectors in R^dim (rows), orthonormal when dim allows."""
    g = rng.standard_normal((dim, count))
    if dim >= count:
        q, r = np.linalg.qr(g)
        return (q * np.sign(np.diag(r))).T
    return (g / np.linalg.norm(g, axis=0)).T


def _latent(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A smooth latent x(t): per-video offset + a few low-frequency sinusoids."""
    periods = rng.uniform(*_LATENT_PERIOD_S, size=_LATENT_SINES)
    amplitudes = rng.uniform(*_LATENT_AMPLITUDE, size=_LATENT_SINES)
    phases = rng.uniform(0.0, 2 * np.pi, size=_LATENT_SINES)
    offset = rng.normal(0.0, _LATENT_OFFSET_SD)
    return offset + np.sin(2 * np.pi * t[:, None] / periods + phases) @ amplitudes


def _speech_mask(rng: np.random.Generator, t: np.ndarray, duration: float) -> np.ndarray:
    """1.0 while speaking, 0.0 in silent stretches (alternating, random lengths and phase)."""
    pairs = int(duration / (_SPEECH_S[0] + _SILENCE_S[0])) + 2
    speech = rng.uniform(*_SPEECH_S, size=pairs)
    silence = rng.uniform(*_SILENCE_S, size=pairs)
    lengths = np.column_stack([speech, silence]).ravel()
    start = -rng.uniform(0.0, speech[0] + silence[0])  # random phase: may start mid-silence
    ends = start + np.cumsum(lengths)
    segment = np.searchsorted(ends, t, side="right")
    return (segment % 2 == 0).astype(np.float64)


def _window_bounds(n_frames: int, fps: float, hop: float, window_s: float):
    """Starts (s) and frame index ranges [lo, hi) of the whole windows [t0, t0 + window_s)."""
    length = n_frames / fps
    count = int(math.floor((length - window_s) / hop + 1e-9)) + 1
    starts = np.arange(max(count, 0)) * hop
    lo = np.ceil(starts * fps - 1e-6).astype(np.int64)
    hi = np.minimum(np.ceil((starts + window_s) * fps - 1e-6).astype(np.int64), n_frames)
    keep = hi > lo
    return starts[keep], lo[keep], hi[keep]


def _window_mean(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of ``values`` rows over each [lo, hi) (vectorised with a cumulative sum)."""
    csum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    count = (hi - lo).reshape((-1,) + (1,) * (values.ndim - 1))
    return (csum[hi] - csum[lo]) / count


# window length (s) -> the windows' starts (s) and frame ranges [lo, hi), as _window_bounds gives them
_Windows = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class _Face:
    """The face model's global parameters (drawn once per dataset)."""

    projection: np.ndarray  # (2 + H, D) float32: [v, a, nonlinear units] -> embedding
    weights: np.ndarray  # (2, H): g_h
    bias: np.ndarray  # (H,): c_h
    mean: np.ndarray  # (D,): mu


@dataclass(frozen=True)
class _Voice:
    """The voice model's global parameters (drawn once per dataset)."""

    names: list[str]  # the feature columns
    projection: np.ndarray  # (2 + H', F): [a, v, nonlinear units] -> voice
    weights: np.ndarray  # (2, H'): g'_h
    bias: np.ndarray  # (H',): c'_h
    delta: np.ndarray  # (F,): speech versus silence
    loc: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    loudness: int | None  # the loudness column's index, if the features include it


@dataclass(frozen=True)
class _Tables:
    """Every video's rows, before they are shuffled and written."""

    emb: np.ndarray  # (videos * frames, D) float32
    valence: np.ndarray
    arousal: np.ndarray
    audio: dict[int, np.ndarray]  # window length (s) -> (videos * windows, F) float32


def synthesize(out_dir: str | Path, config: SynthConfig) -> Path:
    """Write a synthetic dataset folder (docs: data-contract) to ``out_dir`` and return it."""
    if not isinstance(config, SynthConfig):
        raise ConfigError(f"synthesize() needs a SynthConfig, got {type(config).__name__}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)

    root = np.random.default_rng(config.seed)
    n = _frame_count(config)
    t = np.arange(n) / config.fps
    # The order of the draws from `root` is part of the process (same seed, same bytes): the
    # face's parameters, the voice's (drawn for afew too), one stream per video, then the row order.
    face = _draw_face(root, config.dim)
    voice = _draw_voice(root, config.audio_dim)
    sewa = config.kind == "sewa"
    windows = {N: _window_bounds(n, config.fps, config.audio_hop_s, N) for N in AUDIO_WINDOWS} if sewa else {}
    tables = _draw_videos(root, config, t, face, voice, windows)
    order_rng = root.spawn(1)[0]

    ext = ".csv" if config.fmt == "csv" else ".parquet"
    _write_video_table(out / f"video{ext}", config, t, tables, order_rng)
    for N, (starts, _lo, _hi) in windows.items():
        _write_audio_table(out / f"audio_{N}s{ext}", config, starts, voice.names, tables.audio[N], order_rng)
    (out / "meta.json").write_text(json.dumps(_meta(config, n), indent=2) + "\n")
    return out


def _remove_stale(out: Path) -> None:
    """Remove the other format's tables and a split that may name videos this dataset lacks."""
    for stem in ["video", *(f"audio_{n}s" for n in AUDIO_WINDOWS)]:
        for ext in (".csv", ".parquet"):
            (out / f"{stem}{ext}").unlink(missing_ok=True)
    (out / "split.json").unlink(missing_ok=True)


def _draw_face(root: np.random.Generator, dim: int) -> _Face:
    """The face model's global parameters."""
    dirs = _directions(root, dim, 2 + _FACE_NONLINEAR_UNITS)
    gains = np.array([_FACE_VALENCE_GAIN, _FACE_AROUSAL_GAIN] + [_FACE_NONLINEAR_GAIN] * _FACE_NONLINEAR_UNITS)
    return _Face(
        projection=(dirs * gains[:, None]).astype(np.float32),
        weights=root.normal(0.0, 1.5, size=(2, _FACE_NONLINEAR_UNITS)),
        bias=root.normal(0.0, 0.5, size=_FACE_NONLINEAR_UNITS),
        mean=root.normal(0.0, _FACE_MEAN_SD, size=dim),
    )


def _draw_voice(root: np.random.Generator, audio_dim: int) -> _Voice:
    """The voice model's global parameters."""
    names = audio_feature_names(audio_dim)
    dirs = _directions(root, audio_dim, 2 + _VOICE_NONLINEAR_UNITS)
    gains = np.array([_VOICE_AROUSAL_GAIN, _VOICE_VALENCE_GAIN] + [_VOICE_NONLINEAR_GAIN] * _VOICE_NONLINEAR_UNITS)
    return _Voice(
        names=names,
        projection=dirs * gains[:, None],
        weights=root.normal(0.0, 1.5, size=(2, _VOICE_NONLINEAR_UNITS)),
        bias=root.normal(0.0, 0.5, size=_VOICE_NONLINEAR_UNITS),
        delta=root.standard_normal(audio_dim),
        loc=root.normal(0.0, 5.0, size=audio_dim),
        scale=np.exp(root.uniform(np.log(0.1), np.log(10.0), size=audio_dim)),
        loudness=names.index(LOUDNESS_COLUMN) if LOUDNESS_COLUMN in names else None,
    )


def _draw_videos(
    root: np.random.Generator, config: SynthConfig, t: np.ndarray, face: _Face, voice: _Voice, windows: _Windows
) -> _Tables:
    """Every video's labels, face embeddings and (sewa) audio windows, each from its own stream."""
    n = len(t)
    total = n * config.videos
    tables = _Tables(
        emb=np.empty((total, config.dim), dtype=np.float32),
        valence=np.empty(total),
        arousal=np.empty(total),
        audio={
            N: np.empty((len(w[0]) * config.videos, config.audio_dim), dtype=np.float32) for N, w in windows.items()
        },
    )
    for i, video_rng in enumerate(root.spawn(config.videos)):
        rows = slice(i * n, (i + 1) * n)
        v, a = _draw_affect(video_rng, t)
        tables.valence[rows], tables.arousal[rows] = _draw_labels(video_rng, v, a, config)
        tables.emb[rows] = _draw_face_rows(video_rng, face, v, a)
        if config.kind != "sewa":
            continue
        for N, feats in _draw_voice_windows(video_rng, voice, t, config.fps, v, a, windows).items():
            tables.audio[N][i * len(feats) : (i + 1) * len(feats)] = feats
    return tables


def _draw_affect(rng: np.random.Generator, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One video's latent valence and arousal, v(t) and a(t)."""
    xv = _latent(rng, t)
    xa = _latent(rng, t)
    v = _LATENT_BOUND * np.tanh(xv)
    a = _LATENT_BOUND * np.tanh(_VA_CORRELATION * xv + math.sqrt(1 - _VA_CORRELATION**2) * xa)
    return v, a


def _draw_labels(
    rng: np.random.Generator, v: np.ndarray, a: np.ndarray, config: SynthConfig
) -> tuple[np.ndarray, np.ndarray]:
    """What a rater writes: the latent plus rater noise, clipped to [-1, 1] and scaled."""
    noise = rng.normal(0.0, 1.0, size=(2, len(v))) * config.rater_noise
    valence = np.clip(v + noise[0], -1.0, 1.0) * config.label_scale
    arousal = np.clip(a + noise[1], -1.0, 1.0) * config.label_scale
    return valence, arousal


def _draw_face_rows(rng: np.random.Generator, face: _Face, v: np.ndarray, a: np.ndarray) -> np.ndarray:
    """One video's face embeddings (float32, one row per frame)."""
    dim = face.mean.shape[0]
    va = np.column_stack([v, a])
    latent = np.column_stack([va, np.tanh(va @ face.weights + face.bias)]).astype(np.float32)
    identity = rng.normal(0.0, _FACE_IDENTITY_SD, size=dim)
    block = rng.standard_normal((len(v), dim), dtype=np.float32)
    if _FACE_NOISE_SD != 1.0:
        block *= np.float32(_FACE_NOISE_SD)
    block += latent @ face.projection
    block += (face.mean + identity).astype(np.float32)
    return block


def _draw_voice_windows(
    rng: np.random.Generator, voice: _Voice, t: np.ndarray, fps: float, v: np.ndarray, a: np.ndarray, windows: _Windows
) -> dict[int, np.ndarray]:
    """One video's audio features per window length: the per-frame voice, then window functionals."""
    n, dim = len(t), len(voice.names)
    speaking = _speech_mask(rng, t, n / fps)
    av = np.column_stack([a, v])
    latent = np.column_stack([av, np.tanh(av @ voice.weights + voice.bias)])
    z = speaking[:, None] * (voice.delta + latent @ voice.projection)
    z += _VOICE_FRAME_NOISE_SD * rng.standard_normal((n, dim))
    loud = _draw_loudness(rng, speaking, v, a)
    speaker = rng.normal(0.0, _VOICE_SPEAKER_SD, size=dim)
    features = {}
    for N, (starts, lo, hi) in windows.items():
        K = len(starts)
        feats = _window_mean(z, lo, hi) + speaker
        feats += _VOICE_WINDOW_NOISE_SD * rng.standard_normal((K, dim))
        feats = feats * voice.scale + voice.loc
        if voice.loudness is not None:
            feats[:, voice.loudness] = np.maximum(_window_mean(loud, lo, hi) + 0.005 * rng.standard_normal(K), 0.01)
        features[N] = feats
    return features


def _draw_loudness(rng: np.random.Generator, speaking: np.ndarray, v: np.ndarray, a: np.ndarray) -> np.ndarray:
    """One video's per-frame loudness: the silence level, plus a speaker-gained voice while speaking."""
    gain = math.exp(rng.normal(0.0, _LOUDNESS_SPEAKER_SD))
    noise = rng.standard_normal((2, len(speaking)))
    return (
        _SILENCE_LOUDNESS
        + 0.01 * noise[1]
        + speaking * gain * (_SPEECH_LOUDNESS + _LOUDNESS_AROUSAL * a + _LOUDNESS_VALENCE * v + 0.15 * noise[0])
    )


def _write_video_table(
    path: Path, config: SynthConfig, t: np.ndarray, tables: _Tables, order_rng: np.random.Generator
) -> None:
    """The video table: frame paths, a timestamp (sewa) or frame number (afew), labels, embeddings."""
    n = len(t)
    frame_names = np.array([f"/{k:05d}.png" for k in range(n)])
    paths = np.concatenate([np.strings.add(f"clips/{vid}", frame_names) for vid in _video_ids(config)])
    head: dict[str, np.ndarray] = {"path": paths}
    if config.kind == "sewa":
        head["timestamp"] = np.tile(t, config.videos)
    else:
        head["frame"] = np.tile(np.arange(n, dtype=np.int64), config.videos)
    head["valence"] = tables.valence
    head["arousal"] = tables.arousal
    emb_names = [f"emb_{j}" for j in range(config.dim)]
    _write_table(path, head, emb_names, tables.emb, order_rng.permutation(n * config.videos), config.fmt)


def _write_audio_table(
    path: Path,
    config: SynthConfig,
    starts: np.ndarray,
    names: list[str],
    features: np.ndarray,
    order_rng: np.random.Generator,
) -> None:
    """One audio_Ns table: the wav file, the window's start, the features (no labels, per the contract)."""
    K = len(starts)
    head = {
        "filename": np.repeat(np.array([f"{vid}.wav" for vid in _video_ids(config)]), K),
        "timestamp": np.tile(starts, config.videos),
    }
    _write_table(path, head, names, features, order_rng.permutation(K * config.videos), config.fmt)


def _meta(config: SynthConfig, frames: int) -> dict:
    """meta.json: what the folder is, how it was generated, and its noise floor."""
    sewa = config.kind == "sewa"
    return {
        "name": "synthetic-sewa" if sewa else "synthetic-afew-va",
        "fps": config.fps,
        "label_scale": config.label_scale,
        "synthetic": True,
        "generator": asdict(config),
        "noise_floor": {"valence_rmse": config.rater_noise, "arousal_rmse": config.rater_noise},
        "description": (
            "Synthetic data from emo.data.synth (known generating process), in the "
            + ("SEWA" if sewa else "AFEW-VA")
            + " layout; NOT SEWA or AFEW-VA data, and results on it are not results on them."
        ),
        "videos": config.videos,
        "frames_per_video": frames,
        "audio_windows_s": list(AUDIO_WINDOWS) if sewa else [],
        "process": _process(sewa),
    }


def _process(sewa: bool) -> dict:
    """The generating process' constants, as meta.json records them."""
    return {
        "latent": {
            "sines": _LATENT_SINES,
            "period_s": list(_LATENT_PERIOD_S),
            "amplitude": list(_LATENT_AMPLITUDE),
            "offset_sd": _LATENT_OFFSET_SD,
            "bound": _LATENT_BOUND,
            "valence_arousal_mixing": _VA_CORRELATION,
        },
        "face": {
            "valence_gain": _FACE_VALENCE_GAIN,
            "arousal_gain": _FACE_AROUSAL_GAIN,
            "nonlinear_units": _FACE_NONLINEAR_UNITS,
            "nonlinear_gain": _FACE_NONLINEAR_GAIN,
            "noise_sd": _FACE_NOISE_SD,
            "identity_sd": _FACE_IDENTITY_SD,
        },
        "voice": {
            "arousal_gain": _VOICE_AROUSAL_GAIN,
            "valence_gain": _VOICE_VALENCE_GAIN,
            "nonlinear_units": _VOICE_NONLINEAR_UNITS,
            "nonlinear_gain": _VOICE_NONLINEAR_GAIN,
            "frame_noise_sd": _VOICE_FRAME_NOISE_SD,
            "window_noise_sd": _VOICE_WINDOW_NOISE_SD,
            "speaker_sd": _VOICE_SPEAKER_SD,
            "speech_s": list(_SPEECH_S),
            "silence_s": list(_SILENCE_S),
            "silence_loudness": _SILENCE_LOUDNESS,
            "speech_loudness": _SPEECH_LOUDNESS,
            "loudness_arousal": _LOUDNESS_AROUSAL,
            "loudness_speaker_sd": _LOUDNESS_SPEAKER_SD,
        }
        if sewa
        else None,
    }


def _write_table(
    path: Path, head: dict[str, np.ndarray], block_names: list[str], block: np.ndarray, order: np.ndarray, fmt: str
) -> None:
    """Write ``head`` columns then ``block``'s (float32) columns, rows in ``order``, in chunks."""
    if fmt == "csv":
        import pandas as pd

        with open(path, "w", newline="") as fh:
            for c0 in range(0, len(order), _CHUNK_ROWS):
                idx = order[c0 : c0 + _CHUNK_ROWS]
                frame = pd.DataFrame({name: col[idx] for name, col in head.items()})
                frame = pd.concat([frame, pd.DataFrame(block[idx], columns=block_names)], axis=1)
                frame.to_csv(fh, index=False, header=c0 == 0, float_format="%.7g", lineterminator="\n")
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    def arrow_type(col: np.ndarray):
        if col.dtype.kind in "US":
            return pa.string()
        if col.dtype.kind in "iu":
            return pa.int64()
        return pa.float64()

    fields = [pa.field(name, arrow_type(col)) for name, col in head.items()]
    fields += [pa.field(name, pa.float32()) for name in block_names]
    schema = pa.schema(fields)
    strings = [name for name, col in head.items() if col.dtype.kind in "US"]
    with pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=strings) as writer:
        for c0 in range(0, len(order), _CHUNK_ROWS):
            idx = order[c0 : c0 + _CHUNK_ROWS]
            arrays = [pa.array(col[idx], type=f.type) for (name, col), f in zip(head.items(), fields)]
            columns = np.ascontiguousarray(block[idx].T)
            arrays += [pa.array(columns[j]) for j in range(columns.shape[0])]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
