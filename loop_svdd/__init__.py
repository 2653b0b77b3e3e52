"""loop-svdd: learn what "normal" sounds like in a collection of musical loops and score new loops against it.

HTS-AT audio encoder (CLAP's audio tower) with the Feature Fusion Mechanism + a Deep SVDD head, after
Dadman et al., "Learning Normal Patterns in Musical Loops" (arXiv 2505.23784).
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from .configuration_loop_svdd import LoopSVDDConfig
from .feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .modeling_loop_svdd import LoopSVDDModel, LoopSVDDOutput, LoopSVDDPreTrainedModel

__version__ = "0.1.0"

AutoConfig.register(LoopSVDDConfig.model_type, LoopSVDDConfig, exist_ok=True)
AutoModel.register(LoopSVDDConfig, LoopSVDDModel, exist_ok=True)
AutoFeatureExtractor.register(LoopSVDDConfig, LoopSVDDFeatureExtractor, exist_ok=True)
# Saved folders carry `auto_map` and the modelling code, so `trust_remote_code=True` works without loop_svdd.
LoopSVDDConfig.register_for_auto_class()
LoopSVDDModel.register_for_auto_class("AutoModel")
LoopSVDDFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")


def __getattr__(name: str):
    # Heavier helpers are imported on first use.
    if name in ("from_clap", "convert_laion_state_dict"):
        from . import conversion

        return getattr(conversion, name)
    raise AttributeError(f"module 'loop_svdd' has no attribute {name!r}")


__all__ = [
    "LoopSVDDConfig",
    "LoopSVDDFeatureExtractor",
    "LoopSVDDModel",
    "LoopSVDDOutput",
    "LoopSVDDPreTrainedModel",
    "from_clap",
    "convert_laion_state_dict",
]
