"""Deep SVDD as a detector over embeddings: the very heads a `LoopSVDDModel` ships (:func:`.fitting.fit_ensemble`),
scored by :func:`loop_svdd.models.loop_svdd.svdd_head.score_array`."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ...models.loop_svdd.svdd_head import score_array
from ...settings import DEEP_SVDD, DETECTOR
from ..base import BaseDetector
from .configuration import SVDDTrainingConfig
from .fitting import fit_ensemble

_OWN = {"seed", "threshold_quantile", "val_fraction", "ensemble_size"}  # set by the detector's own parameters
_CONFIG_FIELDS = {f.name for f in fields(SVDDTrainingConfig)} - _OWN


class DeepSVDD(BaseDetector):
    """An ensemble of Deep SVDD heads on embeddings: autoencoder pretraining, then a fixed-centre hypersphere.

    Args:
        preset: ``"tuned"`` (what ships) or ``"paper"``: the :data:`~.configuration.PRESETS` entry the
            training settings start from.
        ensemble_size: number of heads, trained with seeds ``random_state, random_state + 1, ...``; the score is
            the mean of their scores, each divided by the median of its own training scores. None: the preset's.
        accelerator: an ``accelerate.Accelerator`` (one is created if None).
        progress: show tqdm bars while training.
        val_fraction: normals held out for early stopping (the trainer's validation split); by default
            none (``settings.DEEP_SVDD.detector_val_fraction``): with 11-51 training rows, holding out 20% cost
            0.002-0.003 AUROC on the benchmark; ``threshold_`` comes from training scores.
        checkpoint_dir: write resumable checkpoints there (``head<i>`` per head).
        **training: any other :class:`~.configuration.SVDDTrainingConfig` field (head_type, epochs, lr, ...);
            kept as parameters, so ``get_params``/``set_params``/``clone`` see them.

    Fitted attributes: ``heads_`` (the :class:`svdd_head.SVDDAutoencoder` heads, their centre, radius
    and score scale in buffers: load them into a model with ``LoopSVDDModel.load_heads``), ``results_`` (the
    :class:`~.fitting.SVDDFitResult` of each head), ``decision_scores_``, ``threshold_``.
    """

    def __init__(
        self,
        preset: str = "tuned",
        ensemble_size: int | None = None,
        threshold_quantile: float = DETECTOR.threshold_quantile,
        random_state: int | None = 0,
        accelerator=None,
        progress: bool = False,
        val_fraction: float = DEEP_SVDD.detector_val_fraction,
        checkpoint_dir: str | None = None,
        **training: Any,
    ) -> None:
        super().__init__(threshold_quantile=threshold_quantile, random_state=random_state)
        unknown = set(training) - _CONFIG_FIELDS
        if unknown:
            raise TypeError(f"DeepSVDD got unknown option(s): {', '.join(sorted(unknown))}")
        self.preset = preset
        self.ensemble_size = ensemble_size
        self.accelerator = accelerator
        self.progress = progress
        self.val_fraction = val_fraction
        self.checkpoint_dir = checkpoint_dir
        self._training_keys = tuple(training)
        for key, value in training.items():
            setattr(self, key, value)

    @classmethod
    def from_training_config(cls, config: SVDDTrainingConfig, **kwargs: Any) -> DeepSVDD:
        """A detector that trains with exactly `config` (its seed, quantile and ensemble size included)."""
        training = {k: v for k, v in config.to_dict().items() if k in _CONFIG_FIELDS}
        own = {
            "ensemble_size": config.ensemble_size,
            "random_state": config.seed,
            "threshold_quantile": config.threshold_quantile,
            "val_fraction": config.val_fraction,
        }
        return cls(**{**own, **training, **kwargs})

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {**super().get_params(deep), **{k: getattr(self, k) for k in self._training_keys}}

    def set_params(self, **params: Any) -> DeepSVDD:
        for key in [k for k in params if k in _CONFIG_FIELDS and k not in self._training_keys]:
            self._training_keys += (key,)
            setattr(self, key, params.pop(key))
        return super().set_params(**params)

    def training_config(self) -> SVDDTrainingConfig:
        """The :class:`~.configuration.SVDDTrainingConfig` that ``fit`` trains with."""
        own = {
            "seed": 0 if self.random_state is None else int(self.random_state),
            "threshold_quantile": self.threshold_quantile,
            "val_fraction": self.val_fraction,
        }
        if self.ensemble_size is not None:
            own["ensemble_size"] = self.ensemble_size
        return SVDDTrainingConfig.from_preset(self.preset, **{k: getattr(self, k) for k in self._training_keys}, **own)

    def _fit(self, X):
        config = self.training_config()
        self.results_ = fit_ensemble(X, config, self.accelerator, self.checkpoint_dir, self.progress)
        self.heads_ = [r.head for r in self.results_]
        return self._score(X)

    def _score(self, X):
        return score_array(self.heads_, X).numpy()
