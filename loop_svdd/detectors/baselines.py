"""Classical baselines, each fitted on standardised training rows only."""

from __future__ import annotations

import numpy as np
from sklearn import ensemble, svm
from sklearn.decomposition import PCA
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler

from ..settings import DETECTOR
from .base import BaseDetector
from .neighbours import NeighbourIndex


class IsolationForest(BaseDetector):
    """scikit-learn's Isolation Forest; score = minus its ``score_samples`` (higher = more abnormal)."""

    def __init__(
        self,
        n_estimators: int = 100,
        standardize: bool = True,
        threshold_quantile: float = DETECTOR.threshold_quantile,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        self.n_estimators = n_estimators
        self.standardize = standardize

    def _fit(self, X):
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        Z = self.scaler_.transform(X) if self.scaler_ else X
        self.model_ = ensemble.IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state)
        self.model_.fit(Z)
        return self._score(X)

    def _score(self, X):
        return -self.model_.score_samples(self.scaler_.transform(X) if self.scaler_ else X)


class PCAReconstruction(BaseDetector):
    """The paper's PCA baseline: standardise, keep ``n_components`` (a variance fraction by default),
    score = squared reconstruction error in standardised units. (PyOD's PCA scores something else.)"""

    def __init__(
        self,
        n_components: float | int = 0.95,
        threshold_quantile: float = DETECTOR.threshold_quantile,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        self.n_components = n_components

    def _fit(self, X):
        self.scaler_ = StandardScaler().fit(X)
        self.pca_ = PCA(n_components=self.n_components, svd_solver="full").fit(self.scaler_.transform(X))
        return self._score(X)

    def _score(self, X):
        Z = self.scaler_.transform(X)
        return ((Z - self.pca_.inverse_transform(self.pca_.transform(Z))) ** 2).sum(axis=1)


class KNN(BaseDetector):
    """Mean Euclidean distance to the ``n_neighbors`` nearest training points (standardised), searched with
    :class:`~loop_svdd.detectors.neighbours.NeighbourIndex`. Training scores leave the point itself out."""

    def __init__(
        self,
        n_neighbors: int = 5,
        threshold_quantile: float = DETECTOR.threshold_quantile,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        self.n_neighbors = n_neighbors

    def _fit(self, X):
        self.scaler_ = StandardScaler().fit(X)
        self.k_ = min(self.n_neighbors, len(X) - 1)
        self.index_ = NeighbourIndex(self.scaler_.transform(X))
        dist, _ = self.index_.search_self(self.k_)
        return dist.mean(axis=1)

    def _score(self, X):
        dist, _ = self.index_.search(self.scaler_.transform(X), self.k_)
        return dist.mean(axis=1)


class OneClassSVM(BaseDetector):
    """scikit-learn's One-Class SVM (RBF, ``gamma='scale'``) on standardised inputs; score = minus its
    decision function."""

    def __init__(
        self,
        nu: float = 0.5,
        gamma: str | float = "scale",
        threshold_quantile: float = DETECTOR.threshold_quantile,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        self.nu = nu
        self.gamma = gamma

    def _fit(self, X):
        self.scaler_ = StandardScaler().fit(X)
        self.model_ = svm.OneClassSVM(nu=self.nu, gamma=self.gamma).fit(self.scaler_.transform(X))
        return self._score(X)

    def _score(self, X):
        return -self.model_.decision_function(self.scaler_.transform(X))


class KDE(BaseDetector):
    """Gaussian kernel density on L2-normalised rows (bandwidth 1: unit vectors are at most 2 apart);
    score = minus the log density. Written with scikit-learn so the product needs no PyOD; it is PyOD's KDE
    with its defaults on the same rows."""

    def __init__(
        self,
        bandwidth: float = 1.0,
        threshold_quantile: float = DETECTOR.threshold_quantile,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        self.bandwidth = bandwidth

    def _fit(self, X):
        self.kde_ = KernelDensity(bandwidth=self.bandwidth).fit(_unit_rows(X))
        return self._score(X)

    def _score(self, X):
        return -self.kde_.score_samples(_unit_rows(X))


def _unit_rows(X):
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
