"""Training loops for the Deep SVDD head."""

from .deep_svdd import SVDDFitResult, SVDDTrainingConfig, TrainingDivergedError, fit_deep_svdd, score

__all__ = ["SVDDFitResult", "SVDDTrainingConfig", "TrainingDivergedError", "fit_deep_svdd", "score"]
