"""The detector contract: scikit-learn estimators (`BaseEstimator`, `OutlierMixin`: `get_params`, `clone`) with
PyOD's conventions: ``fit(X)`` on normals, ``decision_function(X)`` higher = more abnormal, ``predict`` 1 for
anomalies, fitted attributes ending in ``_``."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from ..errors import LoopSVDDError
from ..settings import DETECTOR


class NotFittedError(LoopSVDDError, _SklearnNotFittedError):
    """Raised when a detector is used before ``fit`` (also scikit-learn's ``NotFittedError``)."""


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


class BaseDetector(OutlierMixin, BaseEstimator):
    """Base class of the one-class anomaly detectors.

    Args:
        threshold_quantile: ``threshold_`` is this quantile of the training scores (0.95: 5% of the
            training normals would be flagged, like PyOD's ``contamination=0.05``).
        random_state: seed of everything random in ``fit``.

    Subclasses list every parameter in their ``__init__`` signature and store it unchanged (scikit-learn's
    rule), so ``get_params`` and ``sklearn.base.clone`` work. Fitted attributes end with an underscore:
    ``decision_scores_`` (training scores), ``threshold_``, ``n_features_in_``.
    """

    def __init__(self, threshold_quantile: float = DETECTOR.threshold_quantile, random_state: int | None = 0) -> None:
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
        if not 0.0 < self.threshold_quantile <= 1.0:
            raise ValueError(f"threshold_quantile must be in (0, 1], got {self.threshold_quantile}")
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
        """Anomaly scores (n,), higher = more abnormal (PyOD's convention)."""
        self._check_fitted()
        return np.asarray(self._score(check_array(X, self.n_features_in_)), dtype=np.float64)

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's convention: higher = more *normal*, i.e. minus :meth:`decision_function`."""
        return -self.decision_function(X)

    def predict(self, X) -> np.ndarray:
        """1 for anomalies (score above ``threshold_``), 0 for normals (PyOD's labels)."""
        return (self.decision_function(X) > self.threshold_).astype(int)
