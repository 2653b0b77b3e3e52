"""Deep SVDD as a PyOD-style detector over embeddings (wraps :func:`loop_svdd.training.fit_deep_svdd`)."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from ..training import SVDDTrainingConfig, fit_deep_svdd, score
from .base import BaseDetector

_CONFIG_FIELDS = {f.name for f in fields(SVDDTrainingConfig)} - {"seed", "threshold_quantile", "val_fraction"}


class DeepSVDD(BaseDetector):
    """Deep SVDD head on embeddings: autoencoder pretraining, then a fixed-centre hypersphere.

    Args:
        head_type: ``"ae"`` or ``"residual_ae"`` (the paper's AE / AEwRES).
        n_ensemble: number of heads trained with seeds ``random_state, random_state + 1, ...``; the score is
            the mean of their scores, each divided by the median of its own training scores.
        accelerator: an ``accelerate.Accelerator`` (one is created if None).
        progress: show tqdm bars while training.
        val_fraction: normals held out for early stopping. 0 by default: with 11-51 training rows, holding
            out 20% cost 0.002-0.003 AUROC on the benchmark; ``threshold_`` comes from training scores.
        **config: any other :class:`~loop_svdd.training.SVDDTrainingConfig` field (epochs, lr, nu, ...).

    Fitted attributes: ``heads_``, ``centers_``, ``radii_``, ``scales_``, ``results_`` (the
    :class:`~loop_svdd.training.SVDDFitResult` of each member), ``decision_scores_``, ``threshold_``.
    """

    def __init__(
        self,
        head_type: str = "ae",
        n_ensemble: int = 3,
        threshold_quantile: float = 0.95,
        random_state: int | None = 0,
        accelerator=None,
        progress: bool = False,
        val_fraction: float = 0.0,
        **config,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        unknown = set(config) - _CONFIG_FIELDS
        if unknown:
            raise TypeError(f"DeepSVDD got unknown option(s): {', '.join(sorted(unknown))}")
        if n_ensemble < 1:
            raise ValueError(f"n_ensemble must be >= 1, got {n_ensemble}")
        self.head_type = head_type
        self.n_ensemble = n_ensemble
        self.accelerator = accelerator
        self.progress = progress
        self.config = SVDDTrainingConfig(
            head_type=head_type, threshold_quantile=threshold_quantile, val_fraction=val_fraction, **config
        )

    def _fit(self, X):
        seed = 0 if self.random_state is None else int(self.random_state)
        self.results_ = [
            fit_deep_svdd(X, replace(self.config, seed=seed + i), self.accelerator, progress=self.progress)
            for i in range(self.n_ensemble)
        ]
        self.heads_ = [r.head for r in self.results_]
        self.centers_ = [r.center for r in self.results_]
        self.radii_ = [r.radius for r in self.results_]
        raw = [self._member_scores(i, X) for i in range(self.n_ensemble)]
        self.scales_ = [float(max(np.median(np.abs(s)), 1e-12)) for s in raw]
        return np.mean([s / c for s, c in zip(raw, self.scales_, strict=True)], axis=0)

    def _member_scores(self, i: int, X: np.ndarray) -> np.ndarray:
        r = self.results_[i]
        return score(r.head, r.center, r.radius, self.config.objective, X, self.config.l2_normalize)

    def _score(self, X):
        return np.mean([self._member_scores(i, X) / self.scales_[i] for i in range(self.n_ensemble)], axis=0)
