"""Loading real HTS-AT encoder weights into a LoopSVDD model.

Two sources:
* a `transformers` CLAP checkpoint (`ClapModel`, `ClapAudioModel[WithProjection]`), a Hub id such as
  `laion/larger_clap_music` / `laion/clap-htsat-fused`, or a local folder - safetensors only;
* an original LAION-CLAP `.pt` checkpoint such as `music_audioset_epoch_15_esc_90.14.pt`, read with
  `torch.load(weights_only=True)` (tensors and plain containers only, never arbitrary pickled objects) and
  converted key by key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import ClapAudioConfig

from ..errors import LoopSVDDError
from .loop_svdd.configuration_loop_svdd import LoopSVDDConfig
from .loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .loop_svdd.modeling_loop_svdd import LoopSVDDModel

LAION_SUFFIXES = (".pt", ".pth", ".ckpt")
# LAION buffers and layers that transformers' HTS-AT does not have (front end computed in the extractor,
# AudioSet classification head, cached attention masks).
_LAION_DROP = re.compile(r"^(spectrogram_extractor|logmel_extractor|tscam_conv|head)\.|attn_mask$")
_LAION_RENAMES = (
    (re.compile(r"^bn0\."), "batch_norm."),
    (re.compile(r"\.norm1\."), ".layernorm_before."),
    (re.compile(r"\.norm2\."), ".layernorm_after."),
    (re.compile(r"\.attn\.proj\."), ".attention.output.dense."),
    (re.compile(r"\.attn\.relative_position_"), ".attention.self.relative_position_"),
    (re.compile(r"\.mlp\.fc1\."), ".intermediate.dense."),
    (re.compile(r"\.mlp\.fc2\."), ".output.dense."),
)


class CheckpointError(LoopSVDDError, ValueError):
    """A checkpoint that cannot be used, with the reason."""


def load_laion_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a LAION-CLAP `.pt` checkpoint safely (`weights_only=True`) and return its state dict."""
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the reason
        raise CheckpointError(
            f"{path}: cannot be read as a weights-only PyTorch checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); only tensors are loaded, never pickled objects"
        ) from err
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no state dict of tensors found in the checkpoint")
    return state


def convert_laion_state_dict(
    state_dict: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """LAION-CLAP (whole CLAP or audio branch alone) -> (`ClapAudioModel` state dict, `ClapAudioConfig` kwargs)."""
    audio: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.startswith("model."):
            key = key.removeprefix("model.")
        if key.startswith("audio_branch."):
            key = key.removeprefix("audio_branch.")
        elif any(key.startswith(p) for p in ("text_branch.", "text_", "audio_projection", "audio_transform", "logit")):
            continue
        audio[key] = value
    if "patch_embed.proj.weight" not in audio:
        raise CheckpointError("not a LAION-CLAP HTS-AT checkpoint: no 'audio_branch.patch_embed.proj.weight' key")

    converted: dict[str, torch.Tensor] = {}
    for key, value in audio.items():
        if _LAION_DROP.search(key):
            continue
        if ".attn.qkv." in key:
            q, k, v = value.chunk(3, dim=0)
            for name, part in zip(("query", "key", "value"), (q, k, v), strict=True):
                converted["audio_encoder." + key.replace(".attn.qkv.", f".attention.self.{name}.")] = part.clone()
            continue
        for pattern, repl in _LAION_RENAMES:
            key = pattern.sub(repl, key)
        converted["audio_encoder." + key] = value
    return converted, _infer_audio_config(audio)


def _infer_audio_config(audio: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Read the HTS-AT shape off a LAION audio-branch state dict."""
    depths, heads = [], []
    layer = 0
    while f"layers.{layer}.blocks.0.attn.relative_position_bias_table" in audio:
        blocks = {int(m.group(1)) for k in audio if (m := re.match(rf"layers\.{layer}\.blocks\.(\d+)\.", k))}
        depths.append(len(blocks))
        heads.append(int(audio[f"layers.{layer}.blocks.0.attn.relative_position_bias_table"].shape[1]))
        layer += 1
    table_rows = int(audio["layers.0.blocks.0.attn.relative_position_bias_table"].shape[0])
    return {
        "patch_embeds_hidden_size": int(audio["patch_embed.proj.weight"].shape[0]),
        "hidden_size": int(audio["norm.weight"].shape[0]),
        "depths": depths,
        "num_attention_heads": heads,
        "window_size": (int(round(table_rows**0.5)) + 1) // 2,
        "num_mel_bins": int(audio["bn0.weight"].shape[0]),
        "enable_fusion": any("fusion_model" in k or "mel_conv2d" in k for k in audio),
    }


def _resolve_file(source: str, filename: str, **hub_kwargs: Any) -> str | None:
    local = Path(source)
    if local.is_dir():
        path = local / filename
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return hf_hub_download(source, filename, **hub_kwargs)
    except RemoteEntryNotFoundError:
        return None
    except LocalEntryNotFoundError as err:
        raise CheckpointError(
            f"{source}: not in the local Hugging Face cache and the Hub cannot be reached (offline?); download it "
            "where there is network, or pass a local folder or .pt file"
        ) from err
    except RepositoryNotFoundError as err:
        raise CheckpointError(f"{source}: no such model on the Hub (or it is private: log in first)") from err
    except HfHubHTTPError as err:
        raise CheckpointError(f"{source}: the Hub refused the download ({str(err).splitlines()[0]})") from err


def load_transformers_clap(source: str, **hub_kwargs: Any) -> tuple[ClapAudioConfig, dict[str, torch.Tensor], dict]:
    """A transformers CLAP checkpoint (Hub id or folder) -> (audio config, `ClapAudioModel` state dict,
    feature-extractor settings)."""
    config_file = _resolve_file(source, "config.json", **hub_kwargs)
    if config_file is None:
        raise CheckpointError(f"{source}: no config.json (not a transformers CLAP checkpoint)")
    raw = json.loads(Path(config_file).read_text())
    if raw.get("model_type") == "clap":
        raw = raw.get("audio_config") or {}
    elif raw.get("model_type") not in ("clap_audio_model", None):
        raise CheckpointError(f"{source}: model_type {raw.get('model_type')!r} is not a CLAP model")
    audio_config = ClapAudioConfig(**{k: v for k, v in raw.items() if k != "model_type"})

    weights: dict[str, torch.Tensor] = {}
    single = _resolve_file(source, "model.safetensors", **hub_kwargs)
    if single is not None:
        weights = load_file(single)
    else:
        index = _resolve_file(source, "model.safetensors.index.json", **hub_kwargs)
        if index is None:
            raise CheckpointError(
                f"{source}: no model.safetensors; pickle-based weights (pytorch_model.bin) are refused - convert "
                "them to safetensors first"
            )
        for shard in sorted(set(json.loads(Path(index).read_text())["weight_map"].values())):
            weights.update(load_file(_resolve_file(source, shard, **hub_kwargs)))
    state = {}
    for key, value in weights.items():
        key = key.removeprefix("audio_model.")
        if key.startswith("audio_encoder."):
            state[key] = value
    if not state:
        raise CheckpointError(f"{source}: no HTS-AT audio encoder weights ('audio_encoder.*') in the checkpoint")

    extractor_kwargs = {}
    pre = _resolve_file(source, "preprocessor_config.json", **hub_kwargs)
    if pre is not None:
        pre_cfg = json.loads(Path(pre).read_text())
        for key in (
            "frequency_min",
            "frequency_max",
            "top_db",
            "hop_length",
            "fft_window_size",
            "max_length_s",
        ):
            if key in pre_cfg:
                extractor_kwargs[key] = pre_cfg[key]
        if pre_cfg.get("padding") in ("repeatpad", "repeat"):
            extractor_kwargs["padding"] = pre_cfg["padding"]
    return audio_config, state, extractor_kwargs


def from_clap(
    source: str | Path, enable_fusion: bool | None = None, **config_kwargs: Any
) -> tuple[LoopSVDDModel, LoopSVDDFeatureExtractor]:
    """A LoopSVDD model whose HTS-AT encoder carries real CLAP weights, and its matching feature extractor.

    Args:
        source: a LAION-CLAP `.pt` file, or a transformers CLAP checkpoint (Hub id or local folder).
        enable_fusion: override the fusion flag read from the checkpoint (fusion layers absent from the
            checkpoint would stay random, so this raises rather than pretend).
        config_kwargs: head settings for [`LoopSVDDConfig`] (`head_type`, `hidden_dims`, ...).
    """
    source = str(source)
    if source.endswith(LAION_SUFFIXES):
        if not Path(source).is_file():
            raise CheckpointError(f"{source}: no such checkpoint file")
        state, audio_kwargs = convert_laion_state_dict(load_laion_checkpoint(source))
        audio_config = ClapAudioConfig(**audio_kwargs)
        extractor_kwargs: dict = {}
    else:
        audio_config, state, extractor_kwargs = load_transformers_clap(source)
    if enable_fusion is not None and bool(enable_fusion) != bool(audio_config.enable_fusion):
        raise CheckpointError(
            f"{source}: the checkpoint is {'fused' if audio_config.enable_fusion else 'unfused'}; enabling or "
            "disabling fusion would leave layers without trained weights (LAION-CLAP#113)"
        )
    config = LoopSVDDConfig(
        audio_config=audio_config.to_dict(),
        encoder_name_or_path=source,
        encoder_pretrained=True,
        **config_kwargs,
    )
    model = LoopSVDDModel(config)
    result = model.encoder.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{source}: the weights do not fit the HTS-AT shape read from it (missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]})"
        )
    extractor = LoopSVDDFeatureExtractor.from_model_config(config, **extractor_kwargs)
    return model.eval(), extractor
