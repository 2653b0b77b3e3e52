"""Deep SVDD (Ruff et al., ICML 2018) in one place, on the head's maths in ``models/loop_svdd/svdd_head.py``:

- :mod:`.configuration`: :class:`SVDDTrainingConfig` and its presets (``tuned``, what ships; ``paper``);
- :mod:`.trainer`: what both trainers share (the run, the phase loop with early stopping, checkpoints);
- :mod:`.ae_trainer`: :class:`AETrainer`, autoencoder pretraining;
- :mod:`.deep_svdd_trainer`: :class:`DeepSVDDTrainer`, the hypersphere (Ruff's ``init_center_c`` / ``get_radius``);
- :mod:`.fitting`: :func:`fit_deep_svdd` (one head) and :func:`fit_ensemble` (the heads a model ships);
- :mod:`.detector`: :class:`DeepSVDD`, the scikit-learn/PyOD-style detector over embeddings.
"""

from .ae_trainer import AETrainer
from .configuration import PRESETS, SVDDTrainingConfig
from .deep_svdd_trainer import DeepSVDDTrainer
from .detector import DeepSVDD
from .fitting import SVDDFitResult, fit_deep_svdd, fit_ensemble
from .trainer import TrainingDivergedError

__all__ = [
    "PRESETS",
    "AETrainer",
    "DeepSVDD",
    "DeepSVDDTrainer",
    "SVDDFitResult",
    "SVDDTrainingConfig",
    "TrainingDivergedError",
    "fit_deep_svdd",
    "fit_ensemble",
]
