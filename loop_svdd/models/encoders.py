"""Which HTS-AT encoder a new detector starts from.

- `default`: a small HTS-AT (1.4 M parameters, 256-d) pretrained self-supervised on loops and shipped in
  `assets/default_encoder` (see its card): what the offline quickstart uses, since no CLAP weights can be
  downloaded here;
- `random-tiny` / `random-base`: the HTS-AT shapes with fixed-seed random weights (smoke runs, comparisons),
  reported as untrained wherever results are shown;
- anything else: a CLAP Hub id, a transformers CLAP folder, a LAION-CLAP `.pt` file, or a LoopSVDD model
  folder whose encoder is reused.

Commands that build a new detector without `--encoder` call :func:`resolve_default_encoder`: the paper's
encoder (`laion/larger_clap_music`) when it is in the local Hugging Face cache (or, when asked with
`LOOP_SVDD_ASK_HUB=1`, the Hub has it), else `default`; one line on stderr names the encoder chosen.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..paths import ASSETS_DIR
from .loop_svdd.configuration_loop_svdd import HTSAT_SIZES, LoopSVDDConfig
from .loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .loop_svdd.modeling_loop_svdd import LoopSVDDModel

DEFAULT_ENCODER = "default"  # the small HTS-AT pretrained on loops, shipped in assets/default_encoder
DEFAULT_ENCODER_DIR = ASSETS_DIR / "default_encoder"
RANDOM_ENCODER_SEED = 0
PAPER_ENCODER = "laion/larger_clap_music"  # the paper's HTS-AT (CLAP music checkpoint, unfused, 1024-d)
HUB_CHECK_TIMEOUT_S = 3.0
ASK_HUB_ENV = "LOOP_SVDD_ASK_HUB"  # "1": also look the paper encoder up on the Hub (3 s at most) when not cached
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")  # pickles are refused by conversion.py


def is_random_encoder(name: str) -> bool:
    return name.startswith("random-") and name.removeprefix("random-") in HTSAT_SIZES


def build_model(encoder: str = DEFAULT_ENCODER, **config_kwargs: Any) -> tuple[LoopSVDDModel, LoopSVDDFeatureExtractor]:
    """A new (untrained-head) detector on `encoder`, and its feature extractor."""
    if encoder == "default":
        encoder = str(DEFAULT_ENCODER_DIR)
    if is_random_encoder(encoder):
        size = encoder.removeprefix("random-")
        config = LoopSVDDConfig.from_htsat_size(
            size,
            enable_fusion=False,
            encoder_name_or_path=f"{encoder} (seed {RANDOM_ENCODER_SEED})",
            encoder_pretrained=False,
            **config_kwargs,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_ENCODER_SEED)
            model = LoopSVDDModel(config)
        return model.eval(), LoopSVDDFeatureExtractor.from_model_config(config)
    path = Path(encoder)
    if path.is_dir() and (path / "config.json").is_file() and '"loop_svdd"' in (path / "config.json").read_text():
        from .model_io import load_detector

        source, _ = load_detector(encoder)
        config = LoopSVDDConfig(
            audio_config=source.config.audio_config.to_dict(),
            encoder_name_or_path=source.config.encoder_name_or_path,
            encoder_pretrained=source.config.encoder_pretrained,
            **config_kwargs,
        )
        model = LoopSVDDModel(config)
        model.encoder.load_state_dict(source.encoder.state_dict())
        return model.eval(), LoopSVDDFeatureExtractor.from_model_config(config)
    from ..paths import missing_path_message

    if missing := missing_path_message(encoder):
        raise FileNotFoundError(f"--encoder: {missing}")
    from .conversion import from_clap

    return from_clap(encoder, **config_kwargs)


def paper_encoder_cached(repo_id: str = PAPER_ENCODER) -> bool:
    """Whether `repo_id`'s config and safetensors weights are in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, name), str)

    return cached("config.json") and any(cached(name) for name in WEIGHT_FILES)


def hub_has_encoder(repo_id: str = PAPER_ENCODER, timeout: float = HUB_CHECK_TIMEOUT_S) -> bool:
    """Whether the Hub answers within `timeout` s with a `repo_id` that has safetensors weights; False at once
    in offline mode (`HF_HUB_OFFLINE=1`)."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        info = HfApi().model_info(repo_id, timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure (DNS, timeout, HTTP, offline) means "not reachable"
        return False
    return any(s.rfilename in WEIGHT_FILES for s in info.siblings or [])


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def resolve_default_encoder(log: Callable[[str], Any] | None = _to_stderr, ask_hub: bool | None = None) -> str:
    """The encoder a new detector gets when none is named, said in one line through `log`: the paper's
    `laion/larger_clap_music` when it is in the local Hugging Face cache (or, only when asked - `ask_hub` or
    `LOOP_SVDD_ASK_HUB=1` - when the Hub answers within 3 s), else the embedded `default`."""
    if ask_hub is None:
        ask_hub = os.environ.get(ASK_HUB_ENV, "") == "1"
    if paper_encoder_cached():
        return _chosen(PAPER_ENCODER, "from the local Hugging Face cache", log)
    if ask_hub and hub_has_encoder():
        return _chosen(PAPER_ENCODER, "from the Hugging Face Hub", log)
    where = "the local Hugging Face cache" + (" or the Hub" if ask_hub else f" ({ASK_HUB_ENV}=1 also asks the Hub)")
    return _chosen(DEFAULT_ENCODER, f"since {PAPER_ENCODER} is not in {where}", log)


def _chosen(encoder: str, why: str, log: Callable[[str], Any] | None) -> str:
    if log is not None:
        name = "the embedded default encoder" if encoder == DEFAULT_ENCODER else encoder
        log(f"note: encoder: {name}, {why} (pass --encoder to choose)")
    return encoder


def describe_encoder(config: LoopSVDDConfig) -> str:
    """One line on the encoder's provenance, for outputs and model cards."""
    ac = config.audio_config
    shape = f"HTS-AT ({ac.hidden_size}-d, depths {list(ac.depths)}, {'fused' if ac.enable_fusion else 'unfused'})"
    if config.encoder_pretrained:
        return f"{shape}, weights from {config.encoder_name_or_path}"
    return (
        f"{shape}, RANDOM weights ({config.encoder_name_or_path or 'untrained'}): not a trained encoder - scores "
        "reflect a random projection of the mel spectrogram, not the method's quality"
    )
