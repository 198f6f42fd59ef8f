"""The thesis's scikit-learn baselines: Bayesian Ridge, SVR and a Decision Tree, one model per target.

SVR's C and kernel are chosen as the thesis did, on a predefined split of train + dev: every setting of
`SVR_GRID` is fitted on train and scored on dev, and the best one's train fit is the model, so dev
metrics stay out-of-sample; the test set is never seen.

Kernel SVR (libsvm) grows with the square of the frames, and its linear kernel converges slowly at large C
(47 s for 3,000 frames at C = 10): up to `svr_exact_max` training frames it runs as the thesis's; above,
each setting is solved in time linear in the frames (docs/thesis-departures.md): the same
epsilon-insensitive loss and L2 penalty (epsilon 0.1, `alpha` = 1 / (C · frames): the SVR objective
divided by C · frames), minimised by averaged SGD (`SGD_EPOCHS` passes, at least `SGD_UPDATES` samples),
on the features (linear kernel) or on a Nystroem map of `NYSTROEM_COMPONENTS` features approximating the
RBF kernel with SVR's default gamma ("scale").
"""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.linear_model import BayesianRidge
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeRegressor

from emo.core.config import ALGORITHMS

log = logging.getLogger(__name__)

SVR_GRID = {"C": [0.1, 1.0, 10.0], "kernel": ["linear", "rbf"]}
NYSTROEM_COMPONENTS = (
    1000  # RBF features of the linear-time SVR; dev/test RMSE within 5% of libsvm's (bench/baseline.py)
)
SGD_EPOCHS = 30  # passes over the frames, and at least SGD_UPDATES samples seen: a small corpus needs more passes
SGD_UPDATES = 300_000  # at C = 10 on 1,500 frames, 30 passes left the RMSE 2.3x libsvm's; 200 match it
EPSILON = 0.1  # SVR's default epsilon, in both methods


def svr_settings() -> list[dict]:
    """Every (C, kernel) of the grid, in a fixed order (ties go to the first)."""
    return [{"C": c, "kernel": k} for c in SVR_GRID["C"] for k in SVR_GRID["kernel"]]


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.clip(p, -1, 1) - y) ** 2)))


class LinearTimeSVR:
    """An epsilon-insensitive L2-regularised regressor (SVR's objective) in time linear in the frames; the
    RBF kernel through a Nystroem feature map fitted once per target's grid and shared by its settings."""

    def __init__(self, C: float, kernel: str, feature_map=None, seed: int = 0):
        self.C, self.kernel, self.feature_map, self.seed = C, kernel, feature_map, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearTimeSVR:
        from sklearn.linear_model import SGDRegressor

        z = self._features(x)
        self.sgd = SGDRegressor(
            loss="epsilon_insensitive",
            epsilon=EPSILON,
            alpha=1.0 / (self.C * len(z)),
            learning_rate="optimal",  # 1 / (alpha · t): the schedule for a strongly convex objective
            max_iter=max(SGD_EPOCHS, -(-SGD_UPDATES // len(z))),
            tol=None,
            average=True,
            random_state=self.seed,
        ).fit(z, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.sgd.predict(self._features(x))

    def _features(self, x: np.ndarray) -> np.ndarray:
        return x if self.kernel == "linear" else self.feature_map.transform(x)


def _rbf_map(x: np.ndarray, seed: int):
    from sklearn.kernel_approximation import Nystroem

    gamma = 1.0 / (x.shape[1] * x.var())  # libsvm's gamma="scale"
    return Nystroem(gamma=gamma, n_components=min(NYSTROEM_COMPONENTS, len(x)), random_state=seed).fit(x)


def _svr_grid(x_train, y_train, x_dev, y_dev, *, exact: bool, feature_map, seed: int) -> tuple[object, dict]:
    """The grid's best setting on dev (fitted on train) and that fit, for one target."""
    best = None
    for setting in svr_settings():
        est = SVR(**setting) if exact else LinearTimeSVR(**setting, feature_map=feature_map, seed=seed)
        score = _rmse(y_dev, est.fit(x_train, y_train).predict(x_dev))
        if best is None or score < best[0]:
            best = (score, est, setting)
    return best[1], best[2]


def fit_baseline(
    algorithm: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    *,
    seed: int = 0,
    svr_exact_max: int,
) -> tuple[list, dict]:
    """Fit one regressor per target column of `y_*` (SVR: exactly up to `svr_exact_max` training frames, see
    the module); returns (estimators, notes to log as params)."""
    t0 = time.perf_counter()
    notes: dict = {"algorithm": algorithm}
    estimators = []
    if algorithm == "svr":
        exact = len(x_train) <= svr_exact_max
        notes["svr_method"] = "exact" if exact else f"linear-time (SGD, Nystroem {NYSTROEM_COMPONENTS})"
        if not exact:
            log.info(
                "SVR: %d training frames > svr_exact_max %d: solved in linear time (averaged SGD on SVR's loss, "
                "Nystroem features for the RBF kernel).",
                len(x_train),
                svr_exact_max,
            )
        feature_map = None if exact else _rbf_map(x_train, seed)
    for j in range(y_train.shape[1]):
        if algorithm == "bayesian_ridge":
            est = BayesianRidge().fit(x_train, y_train[:, j])
        elif algorithm == "tree":
            est = DecisionTreeRegressor(random_state=seed).fit(x_train, y_train[:, j])
        elif algorithm == "svr":
            est, notes[f"svr_best_{j}"] = _svr_grid(
                x_train, y_train[:, j], x_dev, y_dev[:, j], exact=exact, feature_map=feature_map, seed=seed
            )
        else:
            raise ValueError(f"unknown baseline algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
        estimators.append(est)
    notes["fit_seconds"] = round(time.perf_counter() - t0, 2)
    return estimators, notes


def predict_baseline(estimators: list, x: np.ndarray) -> np.ndarray:
    """(n, 2) predictions, clipped to the label range [-1, 1]."""
    return np.column_stack([np.clip(est.predict(x), -1, 1) for est in estimators]).astype(np.float32)
