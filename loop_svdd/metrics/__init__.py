"""Anomaly-detection metrics (AUROC, AUPRC, pAUC@FPR 0.1, F1) as an offline-loadable `evaluate` module."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

METRIC_PATH = str(Path(__file__).with_name("anomaly_detection.py"))


def load_anomaly_metric(**kwargs):
    """``evaluate.load`` of the bundled metric script, by path (works offline)."""
    import evaluate

    return evaluate.load(METRIC_PATH, **kwargs)


@lru_cache(maxsize=1)
def _metric():
    return load_anomaly_metric()


def compute_anomaly_metrics(scores, labels, threshold: float | None = None, max_fpr: float = 0.1) -> dict:
    """``{"auroc", "auprc", "pauc"[, "f1"]}`` for anomaly ``scores`` (higher = abnormal), ``labels`` 0/1."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.shape[0]} vs {labels.shape[0]}")
    return _metric().compute(predictions=scores, references=labels, threshold=threshold, max_fpr=max_fpr)


__all__ = ["METRIC_PATH", "compute_anomaly_metrics", "load_anomaly_metric"]
