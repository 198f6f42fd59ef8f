"""Time alignment: every recording's labels and features meet on one time grid, here and only here.

Every importer (AVEC/SEWA, AFEW-VA, Aff-Wild2, MuSe, RECOLA, plain CSV) hands this module time
series in the unit its format declares; nothing downstream sees another unit or rate.

The rules, the same for every corpus:

- **Units.** Times are converted to seconds from the unit the *format* declares (`"s"` or
  `"ms"`); a magnitude is never used to guess a unit, but labels and features of one recording
  that disagree tenfold in both span and rate (milliseconds read as seconds) are refused.
- **Grid.** Grid step k covers [k/fps, (k+1)/fps); its timestamp is k/fps, the convention of the
  windows (a frame at t covers [t, t + 1/fps)).
- **Features** at a higher rate than the grid are *averaged* into each step (not sampled: the
  mean keeps every frame's information and halves nothing at random). A step with no feature row
  is a gap: it is left out, never filled with zeros. Features sparser than the grid are refused
  (a lower `--fps` is the honest fix).
- **Labels** are linearly interpolated at the mean time of the feature rows averaged into a step,
  so that a label describes the same instants its features do. They are never extrapolated past a
  recording's labelled span, nor interpolated across a missing label (a gap longer than 1.5 label
  periods, or an unlabelled sample such as Aff-Wild2's -5): such steps stay unlabelled (NaN).
- **Annotator lag** (`shift_labels`, the `label_delay` option) pairs the features at t with the
  label at t + delay: raters react late, so the label that describes t is written later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from emo.core.errors import DataError

log = logging.getLogger(__name__)

UNITS = {"s": 1.0, "ms": 1e-3}
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds"}
GRID_FPS = 5.0  # the thesis's rate: 1-4 s windows are 5, 10, 15, 20 frames
_EPS = 1e-6  # of a grid step: 0.1 s * 10 fps lands on step 1, not 0.999…


@dataclass
class Series:
    """One recording's time series: strictly increasing times in seconds and their values."""

    source: str  # the file it came from, for messages
    times: np.ndarray  # (n,) float64 seconds
    values: np.ndarray  # (n, k) float; NaN = no value at that time (an unlabelled sample)
    first_line: int = 2  # line of the file that holds row 0 (for messages)
    column: str = ""  # the file's time column, for messages ("": none, e.g. times from line numbers)
    unit: str = "s"  # the unit that column was read in

    @property
    def step(self) -> float:
        """The median time between samples (seconds)."""
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else float("inf")

    @property
    def where(self) -> str:
        """Its time column in words, for messages."""
        return f"column {self.column!r}, read as {UNIT_NAMES[self.unit]}" if self.column else "times"


def series(
    times,
    values,
    *,
    unit: str,
    source: str,
    first_line: int = 2,
    what: str = "time",
    column: str = "",
    at=None,
    repeats: str = "refuse",
) -> Series:
    """A `Series` from raw times in `unit`, checked: finite, not negative, increasing.

    A repeated time is refused, or with `repeats="drop"` (feature files: openSMILE writes its last
    frame twice) dropped with a note. `at(i)` says where row i is in the file (default: line
    `first_line + i`); `column` names the time column in messages.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown time unit {unit!r}")
    at = at or (lambda i: f"line {i + first_line}")
    t = np.asarray(times, np.float64) * UNITS[unit]
    v = np.asarray(values, np.float64)
    v = v.reshape(len(v), -1)
    col = f"the {what} column {column!r}" if column else f"the {what} column"
    _check_finite(t, source, what, column, at)
    step = np.diff(t)
    _check_order(t, step, source, col, at)
    t, v = _drop_repeats(t, v, np.flatnonzero(step == 0) + 1, repeats, source, what, col, at)
    return Series(source, t, v, first_line, column, unit)


def _check_finite(t: np.ndarray, source: str, what: str, column: str, at: Callable[[int], str]) -> None:
    """Every row needs a time: a missing one is an error naming its row."""
    bad = ~np.isfinite(t)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: the {what} is missing or not a number at {at(row)}"
            f"{f' (column {column!r})' if column else ''}. Every row needs a {what}."
        )


def _check_order(t: np.ndarray, step: np.ndarray, source: str, col: str, at: Callable[[int], str]) -> None:
    """Times count from the recording's start and never go back (`step`: their differences)."""
    if (t < 0).any():
        row = int(np.flatnonzero(t < 0)[0])
        raise DataError(
            f"{source}: {col} holds a negative time, {t[row]:g} s, at {at(row)}. Times count from the "
            f"recording's start: shift them so that it starts at 0, or drop the rows before it."
        )
    if (step < 0).any():
        row = int(np.flatnonzero(step < 0)[0]) + 1
        raise DataError(
            f"{source}: {col} is not increasing: {t[row - 1]:g} s at {at(row - 1)} is followed by "
            f"{t[row]:g} s at {at(row)}. Sort the file by time (or check that it holds one recording "
            f"only)."
        )


def _drop_repeats(
    t: np.ndarray,
    v: np.ndarray,
    repeat: np.ndarray,
    repeats: str,
    source: str,
    what: str,
    col: str,
    at: Callable[[int], str],
) -> tuple[np.ndarray, np.ndarray]:
    """Times and values without the `repeat` rows (each repeats the time before it): refused unless
    `repeats="drop"`, then dropped with a note."""
    if not len(repeat):
        return t, v
    if repeats != "drop":
        row = int(repeat[0])
        raise DataError(
            f"{source}: {col} repeats {t[row]:g} s at {at(row)} (also at {at(row - 1)}; {len(repeat)} "
            f"repeated time(s) in all). A recording has one row per time: delete the repeated rows, or "
            f"check that the file holds one recording only."
        )
    log.info(
        "%s: %d row(s) repeat the previous %s (first at %s); the repeats are dropped.",
        source,
        len(repeat),
        what,
        at(int(repeat[0])),
    )
    keep = np.ones(len(t), bool)
    keep[repeat] = False
    return t[keep], v[keep]


@dataclass
class Aligned:
    """A recording on the grid: one row per grid step that has features."""

    times: np.ndarray  # (n,) float64: k / fps
    features: np.ndarray  # (n, D) float32
    labels: np.ndarray | None  # (n, 2) float32, NaN where unlabelled; None: no labels at all
    label_times: np.ndarray  # (n,) float64: where each label was read (mean time of the step's features)

    @property
    def labelled(self) -> np.ndarray:
        if self.labels is None:
            return np.zeros(len(self.times), bool)
        return np.isfinite(self.labels).all(axis=1)


def to_grid(features: Series, fps: float, *, keep_sparse: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average feature rows into grid steps: (step times k/fps, (n, D) means, mean time of each step's rows).

    Rows sparser than the grid are an error, or with `keep_sparse` (audio windows of 1 s hop, say)
    kept as they are: a fusion window simply holds fewer audio rows.
    """
    if len(features.times) > 1 and features.step > (1 + 1e-3) / fps:
        if keep_sparse:
            return features.times, features.values, features.times
        rate = 1.0 / features.step
        raise DataError(
            f"{features.source}: the features come at {rate:.3g} per second, sparser than the "
            f"{fps:g} fps grid, so most grid steps would have none. Pass --fps {_nice(rate)} or lower."
        )
    k = np.floor(features.times * fps + _EPS).astype(np.int64)
    first = np.flatnonzero(np.r_[True, np.diff(k) != 0])
    count = np.diff(np.r_[first, len(k)]).astype(np.float64)
    x = np.add.reduceat(features.values, first, axis=0) / count[:, None]
    mean_t = np.add.reduceat(features.times, first) / count
    return k[first] / fps, x, mean_t


def _nice(rate: float) -> str:
    return f"{np.floor(rate * 100) / 100:g}"


def interpolate(labels: Series, at: np.ndarray, max_gap: float | None = None) -> np.ndarray:
    """(len(at), k) labels linearly interpolated at times `at`; NaN outside the labelled span, next to
    an unlabelled (NaN) sample, or between samples more than `max_gap` apart (default 1.5 periods)."""
    lt, lv = labels.times, labels.values
    out = np.full((len(at), lv.shape[1]), np.nan)
    if not len(lt):
        return out
    if max_gap is None:
        max_gap = 1.5 * labels.step if len(lt) > 1 else 0.0
    ok_sample = np.isfinite(lv).all(axis=1)
    tol = 1e-9 * max(1.0, float(np.abs(lt).max()))  # t + delay may miss a sample time by rounding
    i = np.searchsorted(lt, at + tol, side="right") - 1  # the sample at or before each time
    inside = (i >= 0) & (at <= lt[-1] + tol)
    i = np.clip(i, 0, len(lt) - 1)
    j = np.minimum(i + 1, len(lt) - 1)
    exact = np.abs(lt[i] - at) <= tol
    span = lt[j] - lt[i]
    ok = inside & ok_sample[i] & (exact | (ok_sample[j] & (span <= max_gap * (1 + 1e-9))))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(exact | (span == 0), 0.0, np.clip((at - lt[i]) / span, 0.0, 1.0))[:, None]
    y = (1 - w) * np.nan_to_num(lv[i]) + w * np.nan_to_num(lv[j])
    out[ok] = y[ok]
    return out


SPAN_FACTOR = 10.0  # a recording's labels and features may differ a bit in span and rate, never tenfold both


def check_times(features: Series, labels: Series) -> None:
    """A recording's labels and features must share a time unit and origin.

    Read in the wrong unit (milliseconds as seconds, frame numbers as seconds), one side reaches
    more than `SPAN_FACTOR` times as far as the other *and* comes as many times as sparse; a
    partial labelling or a padded feature file differs in span only. Overlap is checked after that.
    """
    if min(len(features.times), len(labels.times)) < 2 or min(features.times[-1], labels.times[-1]) <= 0:
        return
    span = labels.times[-1] / features.times[-1]
    rate = labels.step / features.step
    if (span > SPAN_FACTOR and rate > SPAN_FACTOR) or (span < 1 / SPAN_FACTOR and rate < 1 / SPAN_FACTOR):
        big, small = (
            (("labels", labels), ("features", features)) if span > 1 else (("features", features), ("labels", labels))
        )
        raise DataError(
            f"{labels.source}: the labels span {_span(labels)} while the features in {features.source} "
            f"span {_span(features)}: {_unit_hint(big, small, max(span, 1 / span))} Times are read in the "
            f"unit the format declares, never guessed from their size: convert the column in the "
            f"wrong unit and import again."
        )
    if features.times[-1] < labels.times[0] or features.times[0] > labels.times[-1]:
        raise DataError(
            f"{features.source}: its time span [{features.times[0]:g}, {features.times[-1]:g}] s "
            f"does not overlap the labels' [{labels.times[0]:g}, {labels.times[-1]:g}] s in "
            f"{labels.source}. Check that both files belong to the same recording and use the "
            f"same time origin and unit."
        )


def _span(s: Series) -> str:
    return f"{s.times[0]:g}–{s.times[-1]:g} s, one row every {s.step:.3g} s ({s.where})"


def _unit_hint(big: tuple[str, Series], small: tuple[str, Series], factor: float) -> str:
    """The likely unit mistake when `big` reaches `factor` times as far as `small`, in the declared units."""
    (big_name, b), (small_name, s) = big, small
    if 300 <= factor <= 3000:  # a thousand: milliseconds
        guesses = [f"the {big_name}' timestamps in milliseconds"] * (b.unit == "s") + [
            f"the {small_name}' timestamps in seconds"
        ] * (s.unit == "ms")
        if guesses:
            return f"are {' or '.join(guesses)}?"
    if factor < 300 and b.unit == "s":
        return f"are the {big_name}' timestamps frame numbers (at about {factor:.0f} per second)?"
    return f"are the {big_name} and the {small_name} in different time units?"


def align(features: Series, labels: Series | None, fps: float) -> Aligned:
    """Put one recording's features (and labels, if any) on the grid at `fps` (see the module rules)."""
    if labels is not None:
        check_times(features, labels)  # first: features in ms would otherwise be refused as sparse
    times, x, mean_t = to_grid(features, fps)
    y = None if labels is None else interpolate(labels, mean_t).astype(np.float32)
    return Aligned(times, x.astype(np.float32), y, mean_t)


def shift_labels(
    video_ids: np.ndarray, offsets: np.ndarray, times: np.ndarray, labels: np.ndarray, delay: float, fps: float
) -> np.ndarray:
    """Labels for annotator lag: the row at time t of a video gets that video's label at t + `delay`
    (interpolated between labelled rows at most 1.5 frames apart; NaN where there is none).

    Rows are sorted by (video, time) with video k at `offsets[k]:offsets[k+1]`, as in a FrameTable.
    """
    if delay == 0 or not len(times):
        return labels
    lengths = np.diff(offsets)
    row_video = np.repeat(np.arange(len(video_ids)), lengths)
    # One interpolation over every video at once: each video's times moved to a band of its own,
    # separated by more than any gap, so no label is ever read across two videos.
    band = float(times.max() - times.min()) + abs(delay) + 10.0
    key = times + row_video * band
    shifted = interpolate(Series("labels", key, labels.astype(np.float64)), key + delay, max_gap=1.5 / fps)
    return shifted.astype(np.float32)
