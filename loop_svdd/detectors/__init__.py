"""One-class anomaly detectors over embeddings, with PyOD's contract (higher score = more abnormal)."""

from __future__ import annotations

from functools import partial

from .base import BaseDetector, NotFittedError
from .baselines import KDE, KNN, IsolationForest, OneClassSVM, PCAReconstruction
from .deep_svdd import DeepSVDD
from .peers import PYOD_PEERS, PyODPeer

DETECTORS = {
    "deep_svdd": partial(DeepSVDD, head_type="ae"),
    "deep_svdd_residual": partial(DeepSVDD, head_type="residual_ae"),
    "isolation_forest": IsolationForest,
    "pca": PCAReconstruction,
    "knn": KNN,
    "ocsvm": OneClassSVM,
    "kde": KDE,
    **{name: partial(PyODPeer, peer=name) for name in PYOD_PEERS},  # the `bench` extra's peers
}


def make_detector(name: str, random_state: int | None = 0, **kwargs) -> BaseDetector:
    """Build the detector registered as ``name`` (see ``DETECTORS``)."""
    if name not in DETECTORS:
        raise KeyError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name](random_state=random_state, **kwargs)


__all__ = [
    "DETECTORS",
    "KDE",
    "KNN",
    "BaseDetector",
    "DeepSVDD",
    "IsolationForest",
    "NotFittedError",
    "OneClassSVM",
    "PCAReconstruction",
    "PyODPeer",
    "make_detector",
]
