"""Registering LoopSVDD with transformers' Auto classes."""

from __future__ import annotations

import functools


@functools.cache
def register_auto_classes() -> None:
    """Register with transformers' Auto classes, and make saved folders carry `auto_map` and the modelling code
    (so `trust_remote_code=True` works without loop_svdd). Idempotent; run before any detector is saved."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    from .loop_svdd.configuration_loop_svdd import LoopSVDDConfig
    from .loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
    from .loop_svdd.modeling_loop_svdd import LoopSVDDModel

    AutoConfig.register(LoopSVDDConfig.model_type, LoopSVDDConfig, exist_ok=True)
    AutoModel.register(LoopSVDDConfig, LoopSVDDModel, exist_ok=True)
    AutoFeatureExtractor.register(LoopSVDDConfig, LoopSVDDFeatureExtractor, exist_ok=True)
    LoopSVDDConfig.register_for_auto_class()
    LoopSVDDModel.register_for_auto_class("AutoModel")
    LoopSVDDFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
