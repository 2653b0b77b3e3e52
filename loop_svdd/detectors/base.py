"""PyOD-style detector contract: ``fit(X)`` on normals, ``decision_function(X)`` higher = more abnormal."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class NotFittedError(RuntimeError):
    """Raised when a detector is used before ``fit``."""


def check_array(X, n_features: int | None = None) -> np.ndarray:
    """(n, d) finite float array, or a ValueError that says what is wrong."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if len(X) == 0:
        raise ValueError("expected at least one sample, got 0")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"expected {n_features} features (as in fit), got {X.shape[1]}")
    if not np.isfinite(X).all():
        raise ValueError("input contains NaN or inf values")
    return X


class BaseDetector(ABC):
    """Base class for one-class anomaly detectors (PyOD conventions).

    Args:
        threshold_quantile: ``threshold_`` is this quantile of the training scores (0.95: 5% of the
            training normals would be flagged, like PyOD's ``contamination=0.05``).
        random_state: seed of everything random in ``fit``.

    Fitted attributes end with an underscore: ``decision_scores_`` (training scores), ``threshold_``,
    ``n_features_in_``.
    """

    def __init__(self, threshold_quantile: float = 0.95, random_state: int | None = 0) -> None:
        if not 0.0 < threshold_quantile <= 1.0:
            raise ValueError(f"threshold_quantile must be in (0, 1], got {threshold_quantile}")
        self.threshold_quantile = threshold_quantile
        self.random_state = random_state

    @abstractmethod
    def _fit(self, X: np.ndarray) -> np.ndarray:
        """Fit on ``X`` and return the scores used to set ``threshold_``."""

    @abstractmethod
    def _score(self, X: np.ndarray) -> np.ndarray:
        """Scores of ``X``, higher = more abnormal."""

    def fit(self, X, y=None) -> BaseDetector:
        """Fit on normal samples ``X`` (n, d); ``y`` is ignored (unsupervised)."""
        X = check_array(X)
        if len(X) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 training samples, got {len(X)}")
        self.n_features_in_ = X.shape[1]
        self.decision_scores_ = np.asarray(self._fit(X), dtype=np.float64)
        self.threshold_ = float(np.quantile(self.decision_scores_, self.threshold_quantile))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X) first")

    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores (n,), higher = more abnormal."""
        self._check_fitted()
        return np.asarray(self._score(check_array(X, self.n_features_in_)), dtype=np.float64)

    def score_samples(self, X) -> np.ndarray:
        """Same as :meth:`decision_function` (higher = more abnormal, unlike scikit-learn)."""
        return self.decision_function(X)

    def predict(self, X) -> np.ndarray:
        """1 for anomalies (score above ``threshold_``), 0 for normals."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"
