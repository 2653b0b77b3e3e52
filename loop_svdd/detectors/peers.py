"""PyOD's detectors as peers in the benchmarks (the optional ``bench`` extra: ``pip install "loop-svdd[bench]"``).

Each peer is a :class:`PyODPeer`: the same contract as our detectors (``fit`` on normals, ``decision_function``
higher = more abnormal, ``clone`` works), the same inputs (the rows the benchmark hands every detector), PyOD's
own defaults otherwise. PyOD is imported when a peer is fitted, never by the product itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler

from ..errors import LoopSVDDError
from ..settings import DETECTOR
from .base import BaseDetector

# registry name -> (PyOD module, class, constructor keywords beyond PyOD's defaults)
PYOD_PEERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "pyod_gmm": ("pyod.models.gmm", "GMM", {"n_components": 2}),
    "pyod_knn": ("pyod.models.knn", "KNN", {}),
    "pyod_lof": ("pyod.models.lof", "LOF", {}),
    "pyod_inne": ("pyod.models.inne", "INNE", {}),
    "pyod_kde": ("pyod.models.kde", "KDE", {}),
    "pyod_hbos": ("pyod.models.hbos", "HBOS", {}),
    "pyod_ecod": ("pyod.models.ecod", "ECOD", {}),
    "pyod_copod": ("pyod.models.copod", "COPOD", {}),
    "pyod_iforest": ("pyod.models.iforest", "IForest", {}),
    "pyod_ocsvm": ("pyod.models.ocsvm", "OCSVM", {}),
    "pyod_lunar": ("pyod.models.lunar", "LUNAR", {}),
    "pyod_deepsvdd": ("pyod.models.deep_svdd", "DeepSVDD", {"verbose": 0}),
    "pyod_autoencoder": ("pyod.models.auto_encoder", "AutoEncoder", {"verbose": 0}),
}
SEEDED = {"GMM", "INNE", "IForest", "LUNAR", "DeepSVDD", "AutoEncoder"}  # PyOD classes that take random_state
NEEDS_N_FEATURES = {"DeepSVDD"}  # PyOD's DeepSVDD asks for the input width up front
BATCHED = {"DeepSVDD", "AutoEncoder"}  # PyOD drops the last partial batch: fewer rows than a batch train nothing
GLOBAL_RNG = {"LUNAR", "DeepSVDD", "AutoEncoder"}  # draw from torch's / numpy's global generators while fitting


@contextmanager
def seeded_global_generators(seed: int | None, needed: bool) -> Iterator[None]:
    """Seed numpy's and torch's global generators for a PyOD detector that draws from them (same seed, same
    fit), and put both back afterwards so the caller's random streams are untouched."""
    if not needed or seed is None:
        yield
        return
    import torch

    state = np.random.get_state()
    with torch.random.fork_rng():
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


class PeerUnavailableError(LoopSVDDError):
    """PyOD is not installed (it is the ``bench`` extra, not a dependency of the product)."""


def load_pyod_class(module: str, name: str) -> type:
    """PyOD's detector class, or a one-line error saying how to install it."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise PeerUnavailableError(
            f"the PyOD peers need PyOD: pip install 'loop-svdd[bench]' ({err.name or err} is missing)"
        ) from None


class PyODPeer(BaseDetector):
    """One PyOD detector behind our contract.

    Args:
        peer: a key of :data:`PYOD_PEERS` (e.g. ``"pyod_gmm"``).
        l2_normalize: scale every row to unit length first, as the shipped Deep SVDD head does with its inputs.
        standardize: then standardise with the training rows' mean and spread (off by default: PyOD sees the
            rows as a PyOD user would pass them).
        options: keywords for PyOD's constructor, over the registry's.
    """

    def __init__(
        self,
        peer: str = "pyod_gmm",
        l2_normalize: bool = True,
        standardize: bool = False,
        options: dict[str, Any] | None = None,
        threshold_quantile: float = DETECTOR.threshold_quantile,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        self.peer = peer
        self.l2_normalize = l2_normalize
        self.standardize = standardize
        self.options = options

    def _build(self, n_samples: int, n_features: int):
        if self.peer not in PYOD_PEERS:
            raise ValueError(f"unknown PyOD peer {self.peer!r}; choose from {', '.join(PYOD_PEERS)}")
        module, name, defaults = PYOD_PEERS[self.peer]
        kwargs = {**defaults, **(self.options or {})}
        if name in SEEDED:
            kwargs.setdefault("random_state", self.random_state)
        if name in NEEDS_N_FEATURES:
            kwargs.setdefault("n_features", n_features)
        if name in BATCHED:
            kwargs["batch_size"] = min(kwargs.get("batch_size", 32), n_samples)
        return load_pyod_class(module, name)(**kwargs)

    def _fit(self, X: np.ndarray) -> np.ndarray:
        self.scaler_ = StandardScaler().fit(self._unit(X)) if self.standardize else None
        model = self._build(*X.shape)
        with seeded_global_generators(self.random_state, PYOD_PEERS[self.peer][1] in GLOBAL_RNG):
            self.model_ = model.fit(self._prepare(X))
        return np.asarray(self.model_.decision_scores_, dtype=np.float64)

    def _unit(self, X: np.ndarray) -> np.ndarray:
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12) if self.l2_normalize else X

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = self._unit(X)
        return self.scaler_.transform(X) if self.scaler_ is not None else X

    def _score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.decision_function(self._prepare(X)), dtype=np.float64)
