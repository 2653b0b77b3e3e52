"""Configuration of a LoopSVDD model: the HTS-AT audio encoder, the Deep SVDD head and its learned state."""

from __future__ import annotations

import math
from typing import Any

from transformers import ClapAudioConfig, PretrainedConfig

HEAD_TYPES = ("ae", "residual_ae")
OBJECTIVES = ("one-class", "soft-boundary")
ACTIVATIONS = ("elu", "relu", "leaky_relu", "gelu", "tanh")
WINDOW_POOLINGS = ("mean",)

# HTS-AT shapes (REFERENCE §3). "base" is the shape of the LAION music checkpoints (unfused, 1024-d);
# "tiny" the shape of the fused checkpoints (768-d); "small" is this project's own (256-d, a few MB: the shipped
# default encoder, pretrained on loops).
HTSAT_SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "patch_embeds_hidden_size": 32,
        "hidden_size": 256,
        "depths": [1, 1, 2, 1],
        "num_attention_heads": [2, 4, 8, 8],
    },
    "tiny": {
        "patch_embeds_hidden_size": 96,
        "hidden_size": 768,
        "depths": [2, 2, 6, 2],
        "num_attention_heads": [4, 8, 16, 32],
    },
    "base": {
        "patch_embeds_hidden_size": 128,
        "hidden_size": 1024,
        "depths": [2, 2, 12, 2],
        "num_attention_heads": [4, 8, 16, 32],
    },
}


def _floats(value):
    """Floats, keeping one level of nesting: 1.0 / [1, 2] / [[1, 2], [3, 4]]."""
    if isinstance(value, (list, tuple)):
        return [_floats(v) if isinstance(v, (list, tuple)) else float(v) for v in value]
    return float(value)


class LoopSVDDConfig(PretrainedConfig):
    r"""Configuration of [`LoopSVDDModel`].

    Args:
        audio_config (`dict` or `ClapAudioConfig`, *optional*):
            Fields of `transformers.ClapAudioConfig`: the HTS-AT shape and whether it is fused
            (`enable_fusion`). Defaults to HTSAT-base unfused, the shape of `laion/larger_clap_music`.
        head_type (`str`, defaults to `"ae"`): `"ae"` (plain autoencoder) or `"residual_ae"` (U-Net-style skips).
        hidden_dims (`list[int]`, defaults to `[512, 256, 128, 64, 32]`): widths of the head's encoder half; the
            last one is the latent (hypersphere) dimension.
        activation (`str`, defaults to `"elu"`), dropout (`float`, defaults to 0.2): head layers (dropout only
            acts during autoencoder pretraining).
        objective (`str`, defaults to `"one-class"`): `"one-class"` or `"soft-boundary"` Deep SVDD.
        nu (`float`, defaults to 0.1): soft-boundary trade-off, in (0, 1].
        center (`list[float]` or `list[list[float]]`, *optional*): the hypersphere centre, learned by training (one
            per head when `ensemble_size > 1`). `None` means the origin of the latent space (an untrained model
            still scores, for smoke runs).
        radius (`float` or `list[float]`, defaults to 0.0): soft-boundary radius R (scores are `dist^2 - R^2`),
            one per head when `ensemble_size > 1`.
        ensemble_size (`int`, defaults to 1): number of heads (trained with different seeds); the score is the
            mean over heads of each head's score divided by its `score_scales` entry.
        score_scales (`list[float]`, *optional*): per-head divisor (the median training score of each head).
        threshold (`float`, *optional*): score above which a loop is called anomalous, calibrated on held-out
            normal loops (`threshold_quantile` of their scores).
        threshold_quantile (`float`, defaults to 0.95).
        calibration_scores (`list[float]`, *optional*): sorted held-out normal scores, for percentiles.
        l2_normalize (`bool`, defaults to `False`): scale clip and window embeddings to unit length before the head.
        window_pooling (`str`, defaults to `"mean"`): how window embeddings of a long loop (unfused encoders)
            are fused into one clip embedding.
        encoder_name_or_path (`str`, *optional*): where the encoder weights came from (provenance for cards).
        encoder_pretrained (`bool`, defaults to `False`): whether the encoder weights are trained ones.
        time_scoring (`dict`, *optional*): the memory bank of normal time steps behind `time_scores`
            (`sources`, `bank_sizes`, `steps` per window, `window_s`, `padding`; see `loop_svdd.localisation`);
            `None`: no time-resolved scores.
    """

    model_type = "loop_svdd"
    sub_configs = {"audio_config": ClapAudioConfig}

    def __init__(
        self,
        audio_config: dict[str, Any] | ClapAudioConfig | None = None,
        head_type: str = "ae",
        hidden_dims: list[int] | tuple[int, ...] = (512, 256, 128, 64, 32),
        activation: str = "elu",
        dropout: float = 0.2,
        objective: str = "one-class",
        nu: float = 0.1,
        center: list[float] | list[list[float]] | None = None,
        radius: float | list[float] = 0.0,
        ensemble_size: int = 1,
        score_scales: list[float] | None = None,
        threshold: float | None = None,
        threshold_quantile: float = 0.95,
        calibration_scores: list[float] | None = None,
        l2_normalize: bool = False,
        window_pooling: str = "mean",
        encoder_name_or_path: str | None = None,
        encoder_pretrained: bool = False,
        time_scoring: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if audio_config is None:
            audio_config = ClapAudioConfig(**HTSAT_SIZES["base"], enable_fusion=False)
        elif isinstance(audio_config, dict):
            audio_config = ClapAudioConfig(**{k: v for k, v in audio_config.items() if k != "model_type"})
        elif not isinstance(audio_config, ClapAudioConfig):
            raise TypeError(f"audio_config must be a dict or a ClapAudioConfig, got {type(audio_config).__name__}")
        self.audio_config = audio_config
        self.head_type = head_type
        self.hidden_dims = [int(d) for d in hidden_dims]
        self.activation = activation
        self.dropout = float(dropout)
        self.objective = objective
        self.nu = float(nu)
        self.ensemble_size = int(ensemble_size)
        self.center = None if center is None else _floats(center)
        self.radius = _floats(radius)
        self.score_scales = None if score_scales is None else [float(v) for v in score_scales]
        self.threshold = None if threshold is None else float(threshold)
        self.threshold_quantile = float(threshold_quantile)
        self.calibration_scores = None if calibration_scores is None else [float(s) for s in calibration_scores]
        self.l2_normalize = bool(l2_normalize)
        self.window_pooling = window_pooling
        self.encoder_name_or_path = encoder_name_or_path
        self.encoder_pretrained = bool(encoder_pretrained)
        self.time_scoring = time_scoring
        super().__init__(**kwargs)
        self.validate_fields()

    @property
    def embedding_dim(self) -> int:
        """Size of the HTS-AT pooled embedding (1024 for HTSAT-base, 768 for tiny)."""
        return int(self.audio_config.hidden_size)

    @property
    def latent_dim(self) -> int:
        return self.hidden_dims[-1]

    @property
    def is_fused(self) -> bool:
        return bool(self.audio_config.enable_fusion)

    def validate_fields(self) -> None:
        """Raise `ValueError` with a clear message for any inconsistent field."""
        ac = self.audio_config
        if ac.hidden_size != ac.patch_embeds_hidden_size * 2 ** (len(ac.depths) - 1):
            raise ValueError(
                f"audio_config.hidden_size ({ac.hidden_size}) must be patch_embeds_hidden_size "
                f"({ac.patch_embeds_hidden_size}) x 2^(len(depths)-1) = "
                f"{ac.patch_embeds_hidden_size * 2 ** (len(ac.depths) - 1)}"
            )
        if len(ac.depths) != len(ac.num_attention_heads):
            raise ValueError("audio_config.depths and audio_config.num_attention_heads must have the same length")
        if self.head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {self.head_type!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not self.hidden_dims or any(d < 1 for d in self.hidden_dims):
            raise ValueError(f"hidden_dims must be a non-empty list of positive widths, got {self.hidden_dims}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not 0.0 < self.nu <= 1.0:
            raise ValueError(f"nu must be in (0, 1], got {self.nu}")
        if self.ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1, got {self.ensemble_size}")
        k = self.ensemble_size
        if self.center is not None:
            centers = self.centers()
            if len(centers) != k:
                raise ValueError(f"center holds {len(centers)} centre(s) but ensemble_size is {k}")
            for c in centers:
                if len(c) != self.latent_dim:
                    raise ValueError(
                        f"center has {len(c)} coordinates but the head's latent size (hidden_dims[-1]) is "
                        f"{self.latent_dim}"
                    )
                if not all(math.isfinite(v) for v in c):
                    raise ValueError("center contains NaN or infinite values")
        radii = self.radii()
        if len(radii) != k or not all(math.isfinite(r) and r >= 0 for r in radii):
            raise ValueError(f"radius must be {k} finite number(s) >= 0, got {self.radius}")
        if self.score_scales is not None and (
            len(self.score_scales) != k or not all(math.isfinite(v) and v > 0 for v in self.score_scales)
        ):
            raise ValueError(f"score_scales must be {k} positive finite numbers, got {self.score_scales}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        if not 0.0 < self.threshold_quantile < 1.0:
            raise ValueError(f"threshold_quantile must be in (0, 1), got {self.threshold_quantile}")
        if self.window_pooling not in WINDOW_POOLINGS:
            raise ValueError(f"window_pooling must be one of {WINDOW_POOLINGS}, got {self.window_pooling!r}")

    def centers(self) -> list[list[float]]:
        """The centre of each head (empty when untrained)."""
        if self.center is None:
            return []
        return [self.center] if not isinstance(self.center[0], list) else self.center

    def radii(self) -> list[float]:
        """The soft-boundary radius of each head."""
        r = self.radius
        return [r] * self.ensemble_size if isinstance(r, float) else r

    @classmethod
    def from_htsat_size(cls, size: str = "base", enable_fusion: bool = False, **kwargs: Any) -> LoopSVDDConfig:
        """A config with a named HTS-AT shape: `"tiny"` (768-d) or `"base"` (1024-d)."""
        if size not in HTSAT_SIZES:
            raise ValueError(f"size must be one of {sorted(HTSAT_SIZES)}, got {size!r}")
        return cls(audio_config={**HTSAT_SIZES[size], "enable_fusion": enable_fusion}, **kwargs)
