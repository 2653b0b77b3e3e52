"""Configuration of a LoopSVDD model: the HTS-AT audio encoder, the Deep SVDD head and its learned state."""

from __future__ import annotations

import math
from typing import Any

from transformers import ClapAudioConfig, PretrainedConfig

from .svdd_head import HeadConfig

WINDOW_POOLINGS = ("mean",)
# Fields that older versions kept in config.json; the model now keeps them as head buffers (model.safetensors)
# and migrates them there when it loads such a folder.
LEGACY_SVDD_STATE = ("center", "radius", "score_scales")

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
    "small-deep": {  # "small" with 4 blocks in its third stage: 1.38x its encoder time (docs/encoder_distillation.md)
        "patch_embeds_hidden_size": 32,
        "hidden_size": 256,
        "depths": [1, 1, 4, 1],
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


class LoopSVDDConfig(PretrainedConfig):
    r"""Configuration of [`LoopSVDDModel`].

    Args:
        audio_config (`dict` or `ClapAudioConfig`, *optional*):
            Fields of `transformers.ClapAudioConfig`: the HTS-AT shape and whether it is fused
            (`enable_fusion`). Defaults to HTSAT-base unfused, the shape of `laion/larger_clap_music`.
        head_type, hidden_dims, activation, dropout, objective, nu, l2_normalize: the Deep SVDD head's shape and
            objective; names and defaults are those of `svdd_head.HeadConfig` (the `tuned` preset:
            `"ae"`, `[512, 256]`, `"elu"`, 0.2, `"one-class"`, 0.1, `True`). The last of `hidden_dims` is the
            latent (hypersphere) size; dropout only acts during autoencoder pretraining.
        ensemble_size (`int`, defaults to 1): number of heads (trained with different seeds). 1 is what a config
            built without one holds (a bare model has one head); training writes the number it fitted
            (`loop-svdd train`: 3, `settings.DEEP_SVDD.ensemble_size`, which this file cannot import). The score
            is the mean over heads of each head's score divided by its `score_scale` buffer. The hypersphere centre,
            soft-boundary radius and score scale of each head are buffers in `model.safetensors` (folders from
            older versions that kept `center`/`radius`/`score_scales` here still load).
        threshold (`float`, *optional*): score above which a loop is called anomalous, calibrated on held-out
            normal loops (`threshold_quantile` of their scores).
        threshold_quantile (`float`, defaults to 0.95).
        calibration_scores (`list[float]`, *optional*): sorted held-out normal scores, for percentiles.
        window_pooling (`str`, defaults to `"mean"`): how window embeddings of a long loop (unfused encoders)
            are fused into one clip embedding.
        encoder_name_or_path (`str`, *optional*): where the encoder weights came from (provenance for cards).
        encoder_pretrained (`bool`, defaults to `False`): whether the encoder weights are trained ones.
        time_scoring (`dict`, *optional*): the memory bank of normal time steps behind `time_scores`
            (`sources`, `bank_sizes`, `steps` per window, `window_s`, `padding`; see `time_scoring`);
            `None`: no time-resolved scores.
    """

    model_type = "loop_svdd"
    sub_configs = {"audio_config": ClapAudioConfig}

    def __init__(
        self,
        audio_config: dict[str, Any] | ClapAudioConfig | None = None,
        ensemble_size: int = 1,
        threshold: float | None = None,
        threshold_quantile: float = 0.95,
        calibration_scores: list[float] | None = None,
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
        defaults = HeadConfig()
        for name in HeadConfig.field_names():  # the head's fields: one source of names and defaults
            setattr(self, name, kwargs.pop(name, getattr(defaults, name)))
        # Kept aside for LoopSVDDModel, which moves them into its head buffers (never written back here).
        self.legacy_svdd_state = {k: kwargs.pop(k) for k in LEGACY_SVDD_STATE if kwargs.get(k) is not None}
        for k in LEGACY_SVDD_STATE:
            kwargs.pop(k, None)
        self.ensemble_size = int(ensemble_size)
        self.threshold = None if threshold is None else float(threshold)
        self.threshold_quantile = float(threshold_quantile)
        self.calibration_scores = None if calibration_scores is None else [float(s) for s in calibration_scores]
        self.window_pooling = window_pooling
        self.encoder_name_or_path = encoder_name_or_path
        self.encoder_pretrained = bool(encoder_pretrained)
        self.time_scoring = time_scoring
        super().__init__(**kwargs)
        self.validate_fields()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("legacy_svdd_state", None)
        return out

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
        head = HeadConfig.of(self)  # validates the head fields
        self.hidden_dims, self.dropout, self.nu = head.hidden_dims, head.dropout, head.nu
        if self.ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1, got {self.ensemble_size}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        if not 0.0 < self.threshold_quantile < 1.0:
            raise ValueError(f"threshold_quantile must be in (0, 1), got {self.threshold_quantile}")
        if self.window_pooling not in WINDOW_POOLINGS:
            raise ValueError(f"window_pooling must be one of {WINDOW_POOLINGS}, got {self.window_pooling!r}")

    @classmethod
    def from_htsat_size(cls, size: str = "base", enable_fusion: bool = False, **kwargs: Any) -> LoopSVDDConfig:
        """A config with a named HTS-AT shape: `"tiny"` (768-d) or `"base"` (1024-d)."""
        if size not in HTSAT_SIZES:
            raise ValueError(f"size must be one of {sorted(HTSAT_SIZES)}, got {size!r}")
        return cls(audio_config={**HTSAT_SIZES[size], "enable_fusion": enable_fusion}, **kwargs)
