"""Training loops for the Deep SVDD head."""

from .deep_svdd import (
    PRESETS,
    AETrainer,
    DeepSVDDTrainer,
    SVDDFitResult,
    SVDDTrainingConfig,
    TrainingDivergedError,
    fit_deep_svdd,
    fit_ensemble,
)

__all__ = [
    "PRESETS",
    "AETrainer",
    "DeepSVDDTrainer",
    "SVDDFitResult",
    "SVDDTrainingConfig",
    "TrainingDivergedError",
    "fit_deep_svdd",
    "fit_ensemble",
]
