"""The alignment module: one grid for every corpus, whatever its rates and units (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emo.core.errors import DataError
from emo.data.align import Series, align, interpolate, series, shift_labels


def truth(t):
    """A label that is a known, invertible function of time."""
    return np.column_stack([0.01 * t - 0.5, 0.5 - 0.01 * t])


@settings(max_examples=60, deadline=None)
@given(
    fps=st.sampled_from([2.0, 4.0, 5.0, 10.0]),
    feature_rate=st.sampled_from([10.0, 25.0, 29.97, 30.0, 50.0, 100.0]),
    label_rate=st.sampled_from([1.0, 2.0, 10.0, 25.0, 30.0]),
    unit=st.sampled_from(["s", "ms"]),
    f0=st.floats(0, 3),
    l0=st.floats(0, 3),
    span=st.floats(5, 40),
)
def test_labels_land_on_the_features_time_within_one_step(fps, feature_rate, label_rate, unit, f0, l0, span):
    scale = 1000.0 if unit == "ms" else 1.0
    ft = f0 + np.arange(int(span * feature_rate)) / feature_rate
    lt = l0 + np.arange(int(span * label_rate) + 1) / label_rate
    feats = series(ft * scale, ft[:, None], unit=unit, source="f")
    labels = series(lt * scale, truth(lt), unit=unit, source="l")
    on = align(feats, labels, fps)
    # grid timestamps are whole steps in seconds, each within one step before its features' time
    steps = on.times * fps
    assert np.allclose(steps, np.round(steps))
    assert np.all((on.features[:, 0] - on.times >= -1e-4) & (on.features[:, 0] - on.times < 1 / fps + 1e-4))
    ok = on.labelled
    assert ok.any()
    # each label is the true label at its features' mean time: recovered time within float error
    recovered = (on.labels[ok, 0] + 0.5) / 0.01
    assert np.abs(recovered - on.features[ok, 0]).max() < 5e-3
    # and never read outside the labelled span
    assert on.label_times[ok].min() >= lt[0] - 1e-9 and on.label_times[ok].max() <= lt[-1] + 1e-9
    outside = (on.label_times < lt[0] - 1e-9) | (on.label_times > lt[-1] + 1e-9)
    assert not ok[outside].any()


def test_unlabelled_samples_and_label_gaps_are_never_interpolated_across():
    lt = np.arange(10.0)
    y = truth(lt)
    y[4] = np.nan  # an unlabelled sample (Aff-Wild2's -5)
    keep = lt != 7  # and a missing one
    labels = Series("l", lt[keep], y[keep])
    got = interpolate(labels, np.array([2.5, 3.5, 4.0, 4.5, 6.5, 7.0, 8.0, 9.5]))
    assert np.isfinite(got[:, 0]).tolist() == [True, False, False, False, False, False, True, False]


def test_milliseconds_are_converted_from_the_declared_unit_only():
    assert series([0, 500, 1000], [[0], [1], [2]], unit="ms", source="x").times.tolist() == [0, 0.5, 1.0]
    assert series([0, 500, 1000], [[0], [1], [2]], unit="s", source="x").times.tolist() == [0, 500, 1000]


def test_a_time_going_backwards_names_the_lines():
    with pytest.raises(DataError, match=r"f\.csv: the time column is not increasing: 0\.2 s at line 4"):
        series([0.0, 0.1, 0.2, 0.15], [[0]] * 4, unit="s", source="f.csv")


def test_features_that_do_not_overlap_their_labels_are_an_error():
    feats = series(np.arange(0, 10, 0.1), np.zeros((100, 1)), unit="s", source="feat.csv")
    labels = series(np.arange(100, 110, 0.1), np.zeros((100, 2)), unit="s", source="lab.csv")
    with pytest.raises(DataError, match="does not overlap the labels"):
        align(feats, labels, 5.0)


@settings(max_examples=30, deadline=None)
@given(delay=st.sampled_from([0.2, 1.0, 2.0, 2.5, 3.3]), n=st.integers(20, 80))
def test_label_delay_reads_the_same_videos_label_delay_seconds_later(delay, n):
    fps = 5.0
    times = np.r_[np.arange(n) / fps, np.arange(n) / fps]
    offsets = np.array([0, n, 2 * n])
    labels = np.r_[truth(times[:n]), truth(times[n:]) * -1].astype(np.float32)
    out = shift_labels(np.array(["a", "b"]), offsets, times, labels, delay, fps)
    ok = np.isfinite(out[:, 0])
    expected = np.r_[truth(times[:n] + delay), truth(times[n:] + delay) * -1]
    np.testing.assert_allclose(out[ok], expected[ok], atol=1e-5)
    # exactly the frames whose time + delay is inside their own video are labelled: nothing crosses videos
    inside = np.r_[times[:n] + delay <= times[n - 1] + 1e-9, times[n:] + delay <= times[-1] + 1e-9]
    assert ok.tolist() == inside.tolist()
