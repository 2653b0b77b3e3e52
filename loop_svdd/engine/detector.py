"""`Detector`: the one place where a `LoopSVDDModel` (what ships: encoder + Deep SVDD heads + threshold) meets the
`DeepSVDD` estimator that trains its heads on embeddings. `train` (``training.from_corpus``) and `curate` (its
``model/``, and the report's time curves) go through it; nothing else glues the two by hand.

    detector = Detector.for_training(encoder, SVDDTrainingConfig(seed=0), epochs=20)  # model + estimator
    detector.fit(embeddings[fit_rows])                  # the estimator's heads, loaded into the model
    detector.calibrate(embeddings[calibration_rows])    # threshold and calibration scores, in the model's config
    detector.save(output_dir)                           # a `from_pretrained` folder
    Detector.load(output_dir).score(embeddings)         # the shipped model's scores of clip embeddings
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..detectors.deep_svdd import DeepSVDD, SVDDFitResult, SVDDTrainingConfig
from ..models.encoders import build_model
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.loop_svdd.svdd_head import HeadConfig
from ..models.model_io import load_detector, save_detector
from ..settings import DEEP_SVDD
from .scoring import model_scores


@dataclass
class Detector:
    """A `LoopSVDDModel` and its extractor, with the `DeepSVDD` estimator that fits its heads (None for a model
    loaded to score)."""

    model: LoopSVDDModel
    extractor: LoopSVDDFeatureExtractor
    estimator: DeepSVDD | None = None

    @classmethod
    def for_training(cls, encoder: str, training: SVDDTrainingConfig, **detector_options: Any) -> Detector:
        """A new model on `encoder` shaped for the estimator that trains with `training` and `detector_options`
        (any `DeepSVDD` parameter or training field; they win over `training`). The estimator's validation split
        is the detector's default (none) unless `detector_options` sets `val_fraction`."""
        options = {"val_fraction": DEEP_SVDD.detector_val_fraction, **detector_options}
        estimator = DeepSVDD.from_training_config(training, **options)
        config = estimator.training_config()
        model, extractor = build_model(
            encoder,
            **HeadConfig.of(config).head_kwargs(),
            threshold_quantile=config.threshold_quantile,
            ensemble_size=config.ensemble_size,
        )
        return cls(model, extractor, estimator)

    @classmethod
    def from_model(cls, model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor) -> Detector:
        """A trained (or loaded) model, to score with."""
        return cls(model, extractor)

    @classmethod
    def load(cls, source: str | Path) -> Detector:
        """A saved folder or Hub id (`load_detector`: safetensors only, eval mode)."""
        return cls.from_model(*load_detector(source))

    @property
    def training_config(self) -> SVDDTrainingConfig:
        """What the estimator trains with (its options applied)."""
        return self._estimator().training_config()

    @property
    def fit_results(self) -> list[SVDDFitResult]:
        """Each head's training record (losses, epochs) after :meth:`fit`."""
        return self._estimator().results_

    def fit(self, embeddings: np.ndarray) -> Detector:
        """Fit the estimator on normal clip embeddings `(n, D)` and load its heads into the model."""
        self.model.load_heads(self._estimator().fit(embeddings).heads_)
        return self

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """The model's anomaly scores `(n,)` of clip embeddings `(n, D)` (higher = more abnormal)."""
        return model_scores(self.model, embeddings)

    def calibrate(self, embeddings: np.ndarray, quantile: float | None = None) -> np.ndarray:
        """Set the model's threshold to the `quantile` (default: the model's) of the scores of normal
        `embeddings`, and keep those scores for percentiles; returns them."""
        scores = self.score(embeddings)
        quantile = self.model.config.threshold_quantile if quantile is None else quantile
        self.model.set_svdd_state(threshold=float(np.quantile(scores, quantile)), calibration_scores=scores.tolist())
        return scores

    def save(self, output_dir: str | Path, extra_json: dict[str, Any] | None = None) -> Path:
        """Write a `from_pretrained` folder (atomically; `extra_json`: more JSON files by name)."""
        return save_detector(self.model, self.extractor, output_dir, extra_json)

    def _estimator(self) -> DeepSVDD:
        if self.estimator is None:
            raise ValueError("this Detector wraps a trained model: build it with Detector.for_training to fit")
        return self.estimator
