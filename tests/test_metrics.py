"""Metrics against values computed by hand."""

import numpy as np
import pytest

from emo.core.metrics import ccc, evaluate, mae, pearson, rmse

T = [1.0, 2.0, 3.0, 4.0]
P = [2.0, 2.0, 2.0, 6.0]


def test_mae_and_rmse_by_hand():
    assert mae(T, P) == pytest.approx((1 + 0 + 1 + 2) / 4)
    assert rmse(T, P) == pytest.approx(np.sqrt((1 + 0 + 1 + 4) / 4))


def test_pearson_by_hand():
    # t - mean = [-1.5, -.5, .5, 1.5], p - mean = [-1, -1, -1, 3]; cov sum = 6; ss = 5 and 12
    assert pearson(T, P) == pytest.approx(6 / np.sqrt(5 * 12))


def test_ccc_by_hand_and_its_penalty_for_bias():
    # cov = 6/4, var_t = 5/4, var_p = 12/4, means 2.5 and 3 -> 2*1.5 / (1.25 + 3 + 0.25)
    assert ccc(T, P) == pytest.approx(3.0 / 4.5)
    assert ccc(T, T) == pytest.approx(1.0)
    assert ccc(T, np.add(T, 1)) == pytest.approx(2 * 1.25 / (2.5 + 1))  # r = 1 but biased
    assert pearson(T, np.add(T, 1)) == pytest.approx(1.0)


def test_constant_predictions_have_zero_correlation_not_nan():
    assert pearson(T, [0.5] * 4) == 0.0 and ccc([1, 1], [1, 1]) == 0.0


def test_evaluate_names_every_metric_per_target():
    y = np.array([T, P]).T
    out = evaluate(y, y[:, ::-1], prefix="dev/")
    assert sorted(out) == sorted(f"dev/{m}_{t}" for m in ("mae", "rmse", "ccc", "r") for t in ("valence", "arousal"))
    assert out["dev/rmse_valence"] == pytest.approx(rmse(T, P))


def test_per_recording_ccc_is_the_mean_of_each_recordings_ccc_not_the_pooled_one():
    from emo.core.metrics import ccc, ccc_per_recording

    t = np.array([0.0, 1, 2, 3, 10, 11, 12, 13])
    p = np.array([0.0, 1, 2, 3, 13, 12, 11, 10])  # recording b is predicted backwards
    groups = np.array(["a"] * 4 + ["b"] * 4)
    assert ccc_per_recording(t, p, groups) == pytest.approx((ccc(t[:4], p[:4]) + ccc(t[4:], p[4:])) / 2)
    assert ccc_per_recording(t, p, groups) == pytest.approx(0.0)  # 1 and -1
    assert ccc(t, p) > 0.8  # pooled, the difference between the recordings' means hides it
    out = evaluate(np.c_[t, t], np.c_[p, p], "test/", groups=groups)
    assert out["test/ccc_per_recording_valence"] == pytest.approx(0.0)


def test_the_mean_over_targets_is_the_mean_of_valence_and_arousal():
    from emo.core.metrics import target_mean

    logged = {"dev/rmse_valence": 0.2, "dev/rmse_arousal": 0.5, "dev/ccc_valence": 0.9, "dev/ccc_arousal": 0.4}
    assert target_mean(logged, "dev/rmse") == pytest.approx(0.35)
    assert target_mean(logged, "dev/ccc") == pytest.approx(0.65)
