"""The Deep SVDD training hyper-parameters: :class:`SVDDTrainingConfig` and its two presets (:data:`PRESETS`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...models.loop_svdd.svdd_head import HeadConfig
from ...settings import DEEP_SVDD, DETECTOR


@dataclass
class SVDDTrainingConfig(HeadConfig):
    """Hyper-parameters of :func:`fit_deep_svdd` (the head's own fields come from
    :class:`svdd_head.HeadConfig`). The defaults are the ``tuned`` preset, what ships; ``paper`` is
    the authors' settings (see :data:`PRESETS` and ``docs/benchmark.md``).

    Measured on the musicradar-bass-392 one-vs-rest benchmark (train sets of 11-51 embeddings): the paper's
    5-level encoder and long autoencoder pretraining at lr 1e-3 both hurt (AUROC 0.73-0.91 vs 0.96);
    L2-normalised inputs, a 2-level encoder and lr 1e-4 helped.

    ``val_fraction`` is the trainer's validation split (early stopping, and :func:`fit_deep_svdd`'s threshold); the
    :class:`DeepSVDD` detector sets its own (none by default). ``train``'s calibration split is another thing:
    ``train_on_corpus(calibration_fraction=...)``.
    """

    eps: float = 0.1
    pretrain_epochs: int = 10
    epochs: int = 50
    lr: float = 1e-4
    pretrain_lr: float | None = 1e-4
    weight_decay: float = 1e-6
    batch_size: int = 32
    patience: int = 10
    val_fraction: float = DEEP_SVDD.trainer_val_fraction  # early stopping (not train's calibration split)
    seed: int = 0
    standardize: bool = True
    threshold_quantile: float = DETECTOR.threshold_quantile
    warmup_epochs: int = 10
    min_delta: float = 0.0
    ensemble_size: int = DEEP_SVDD.ensemble_size

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {
            "eps": self.eps > 0.0,
            "pretrain_epochs": self.pretrain_epochs >= 0,
            "epochs": self.epochs >= 1,
            "lr": self.lr > 0.0,
            "pretrain_lr": self.pretrain_lr is None or self.pretrain_lr > 0.0,
            "weight_decay": self.weight_decay >= 0.0,
            "batch_size": self.batch_size >= 2,
            "patience": self.patience >= 1,
            "val_fraction": 0.0 <= self.val_fraction < 1.0,
            "threshold_quantile": 0.0 < self.threshold_quantile <= 1.0,
            "warmup_epochs": self.warmup_epochs >= 0,
            "min_delta": self.min_delta >= 0.0,
            "ensemble_size": self.ensemble_size >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid SVDDTrainingConfig value(s): {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}"
            )

    @classmethod
    def from_preset(cls, preset: str = "tuned", **overrides: Any) -> SVDDTrainingConfig:
        """The named preset (``"tuned"`` or ``"paper"``) with `overrides`."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The two sets of defaults: `tuned` (what ships; the dataclass defaults) and `paper` (the authors' settings:
# 1024-512-256-128-64-32 on HTSAT-base's 1024-d embeddings, no L2, lr 1e-3, 50 + 50 epochs, 20% validation).
PRESETS: dict[str, dict[str, Any]] = {
    "tuned": {},
    "paper": {
        "hidden_dims": [512, 256, 128, 64, 32],
        "l2_normalize": False,
        "lr": 1e-3,
        "pretrain_lr": 1e-3,
        "pretrain_epochs": 50,
        "epochs": 50,
        "val_fraction": 0.2,
    },
}
