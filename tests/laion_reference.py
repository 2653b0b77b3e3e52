"""The original LAION-CLAP HTS-AT as a test-only reference implementation.

`import laion_clap` fails offline (its package __init__ pulls torchvision, wandb and downloads a tokenizer), so
the two package modules are registered as bare namespaces and only `laion_clap.clap_module.htsat` is imported
(REFERENCE §4). Needs `pip install --no-deps laion-clap==1.1.7 torchlibrosa` and `librosa`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def import_laion_htsat():
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, path in (("laion_clap", root), ("laion_clap.clap_module", root / "clap_module")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module
    try:
        return importlib.import_module("laion_clap.clap_module.htsat")
    except ImportError:
        return None


def build_laion_htsat(htsat, embed_dim: int, depths, num_heads, enable_fusion: bool):
    """A randomly initialised LAION HTS-AT with the given shape (LAION's own constructor and defaults)."""
    cfg = types.SimpleNamespace(
        audio_length=1024,
        clip_samples=480000,
        mel_bins=64,
        sample_rate=48000,
        window_size=1024,
        hop_size=480,
        fmin=50,
        fmax=14000,
        class_num=527,
        model_type="HTSAT",
        model_name="custom",
    )
    return htsat.HTSAT_Swin_Transformer(
        spec_size=256,
        patch_size=4,
        patch_stride=(4, 4),
        num_classes=527,
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=8,
        config=cfg,
        enable_fusion=enable_fusion,
        fusion_type="aff_2d" if enable_fusion else "None",
    )
