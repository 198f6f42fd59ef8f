"""The thesis's scikit-learn baselines: Bayesian Ridge, SVR and a Decision Tree, one model per target.

SVR's C and kernel are chosen by grid search on a `PredefinedSplit` of train + dev (train folds
fit, dev folds score), as the thesis did, and the chosen settings are then fitted on train alone so
that dev metrics stay out-of-sample; the test set is never seen. Kernel SVR is quadratic in
the number of samples, so above `svr_max_samples` training frames it is fitted on a seeded
random subsample, and the subsample size is logged.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.linear_model import BayesianRidge
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeRegressor

from emo.core.config import ALGORITHMS

log = logging.getLogger(__name__)

SVR_GRID = {"C": [0.1, 1.0, 10.0], "kernel": ["linear", "rbf"]}


def _subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, limit, replace=False)) if n > limit else np.arange(n)


def svr_split(n_train: int, n_dev: int) -> PredefinedSplit:
    """The thesis's PredefinedSplit of train + dev rows: one fold that fits on train and scores on dev."""
    return PredefinedSplit(np.r_[np.full(n_train, -1), np.zeros(n_dev, int)])  # -1: never a test fold


def fit_baseline(
    algorithm: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    *,
    seed: int = 0,
    svr_max_samples: int = 20000,
) -> tuple[list, dict]:
    """Fit one regressor per target column of `y_*`; returns (estimators, notes to log as params)."""
    t0 = time.perf_counter()
    notes: dict = {"algorithm": algorithm}
    estimators = []
    if algorithm == "svr":
        rng = np.random.default_rng(seed)
        tr = _subsample(len(x_train), svr_max_samples, rng)
        dv = _subsample(len(x_dev), max(svr_max_samples // 4, 1), rng)
        if len(tr) < len(x_train) or len(dv) < len(x_dev):
            log.warning(
                "SVR: %d train / %d dev frames is too many for a kernel SVR; fitting on a seeded random "
                "subsample of %d / %d (raise --svr-max-samples to use more).",
                len(x_train),
                len(x_dev),
                len(tr),
                len(dv),
            )
        notes.update(svr_train_samples=len(tr), svr_dev_samples=len(dv))
        x = np.concatenate([x_train[tr], x_dev[dv]])
        split = svr_split(len(tr), len(dv))
    for j in range(y_train.shape[1]):
        if algorithm == "bayesian_ridge":
            est = BayesianRidge().fit(x_train, y_train[:, j])
        elif algorithm == "tree":
            est = DecisionTreeRegressor(random_state=seed).fit(x_train, y_train[:, j])
        elif algorithm == "svr":
            y = np.concatenate([y_train[tr, j], y_dev[dv, j]])
            # refit=False: the chosen settings are fitted on train only, so dev metrics stay out-of-sample
            search = GridSearchCV(
                SVR(), SVR_GRID, cv=split, scoring="neg_root_mean_squared_error", n_jobs=1, refit=False
            ).fit(x, y)
            est = SVR(**search.best_params_).fit(x_train[tr], y_train[tr, j])
            notes[f"svr_best_{j}"] = search.best_params_
        else:
            raise ValueError(f"unknown baseline algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
        estimators.append(est)
    notes["fit_seconds"] = round(time.perf_counter() - t0, 2)
    return estimators, notes


def predict_baseline(estimators: list, x: np.ndarray) -> np.ndarray:
    """(n, 2) predictions, clipped to the label range [-1, 1]."""
    return np.column_stack([np.clip(est.predict(x), -1, 1) for est in estimators]).astype(np.float32)
