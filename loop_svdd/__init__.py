"""loop-svdd: learn what "normal" sounds like in a collection of musical loops and score new loops against it.

HTS-AT audio encoder (CLAP's audio tower) with the Feature Fusion Mechanism + a Deep SVDD head, after
Dadman et al., "Learning Normal Patterns in Musical Loops" (arXiv 2505.23784).

The public classes are imported on first use (PEP 562), so `import loop_svdd.cli` and `loop-svdd --help` do
not load torch or transformers. Using any of them registers the Auto classes (below) first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .models.auto import register_auto_classes  # noqa: E402  (loads neither torch nor transformers)

_EXPORTS = {  # public name -> module that defines it
    "LoopSVDDConfig": "models.loop_svdd.configuration_loop_svdd",
    "LoopSVDDFeatureExtractor": "models.loop_svdd.feature_extraction_loop_svdd",
    "LoopSVDDModel": "models.loop_svdd.modeling_loop_svdd",
    "LoopSVDDOutput": "models.loop_svdd.modeling_loop_svdd",
    "LoopSVDDPreTrainedModel": "models.loop_svdd.modeling_loop_svdd",
    "from_clap": "models.conversion",
    "convert_laion_state_dict": "models.conversion",
}
__all__ = [
    "LoopSVDDConfig",
    "LoopSVDDFeatureExtractor",
    "LoopSVDDModel",
    "LoopSVDDOutput",
    "LoopSVDDPreTrainedModel",
    "__version__",
    "convert_laion_state_dict",
    "from_clap",
    "register_auto_classes",
]

if TYPE_CHECKING:
    from .models.conversion import convert_laion_state_dict, from_clap
    from .models.loop_svdd.configuration_loop_svdd import LoopSVDDConfig
    from .models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
    from .models.loop_svdd.modeling_loop_svdd import LoopSVDDModel, LoopSVDDOutput, LoopSVDDPreTrainedModel


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'loop_svdd' has no attribute {name!r}")
    register_auto_classes()
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
