"""The exported graphs: the encoder and the head(s) as one graph (window features -> window embeddings and window
scores), and the head(s) alone (clip embeddings -> clip scores), traced from a `LoopSVDDModel` to ONNX.

Windows are pooled into loops outside the graphs (`LoopSVDDModel.pool_windows`), so every backend shares that code
and a loop's windows may go through the encoder in several calls.
"""

from __future__ import annotations

import copy
import types
import warnings
from pathlib import Path

import torch

from ..errors import LoopSVDDError
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel

OPSET = 17
WINDOW_GRAPH_OUTPUTS = ("window_embeddings", "window_scores")
HEAD_GRAPH_OUTPUTS = ("scores", "latent")


class ExportError(LoopSVDDError, RuntimeError):
    """A model that cannot be exported (its graph cannot be traced, or the tracer failed)."""


class WindowGraph(torch.nn.Module):
    """`(windows, C, frames, mels)` [+ `is_longer` for fused encoders] -> window embeddings, window scores."""

    def __init__(self, model: LoopSVDDModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_features: torch.Tensor, is_longer: torch.Tensor | None = None):
        embeddings = self.model.get_window_embeddings(input_features, is_longer)
        return embeddings, self.model.score_embeddings(embeddings)[0]


class HeadGraph(torch.nn.Module):
    """`(n, embedding_dim)` clip embeddings -> scores `(n,)`, latents of the first head `(n, latent_dim)`."""

    def __init__(self, model: LoopSVDDModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor):
        return self.model.score_embeddings(embeddings)


def _fused_patch_embed(self, hidden_states: torch.Tensor, is_longer_idx: torch.Tensor | None = None) -> torch.Tensor:
    """`ClapAudioPatchEmbed.forward` for fused encoders without data-dependent control flow: the local (fusion)
    branch runs for every window and is kept where the window is longer (`self.longer_mask`, set by the encoder's
    forward), which gives the same numbers as transformers' indexing of the longer windows but traces into a
    graph valid for any batch (no NonZero, no branch on how many windows are longer)."""
    global_states = self.proj(hidden_states[:, 0:1])
    local = hidden_states[:, 1:].contiguous()
    batch, channels, height, width = local.shape
    local = self.mel_conv2d(local.view(batch * channels, 1, height, width))
    _, features, height, width = local.shape
    local = local.view(batch, channels, features, height, width).permute((0, 2, 3, 1, 4)).contiguous().flatten(3)
    local = torch.nn.functional.pad(local, (0, global_states.size(-1) - local.size(-1)), "constant", 0)
    hidden = torch.where(self.longer_mask.reshape(-1, 1, 1, 1), self.fusion_model(global_states, local), global_states)
    if self.flatten:
        hidden = hidden.flatten(2).transpose(1, 2)
    return self.norm(hidden)


def make_traceable(model: LoopSVDDModel) -> LoopSVDDModel:
    """Rewrite, on `model` itself, the parts of HTS-AT whose control flow depends on the data (fused encoders)."""
    audio_encoder = model.encoder.audio_encoder
    if not model.config.is_fused:
        return model
    patch_embed, encoder_forward = audio_encoder.patch_embed, audio_encoder.forward

    def forward(input_features: torch.Tensor, is_longer: torch.Tensor | None = None, **kwargs):
        patch_embed.longer_mask = is_longer.reshape(-1).to(torch.bool)
        return encoder_forward(input_features, is_longer=is_longer, **kwargs)

    patch_embed.forward = types.MethodType(_fused_patch_embed, patch_embed)
    audio_encoder.forward = forward
    return model


def window_input_names(model: LoopSVDDModel) -> list[str]:
    return ["input_features", "is_longer"] if model.config.is_fused else ["input_features"]


def example_window_inputs(model: LoopSVDDModel, windows: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs of the traced shape (the window axis stays dynamic)."""
    frames = LoopSVDDFeatureExtractor.from_model_config(model.config).num_frames
    channels = 4 if model.config.is_fused else 1
    features = torch.randn(windows, channels, frames, model.config.audio_config.num_mel_bins) * 10 - 40
    if not model.config.is_fused:
        return (features,)
    return features, torch.tensor([[True], [False]] * (windows // 2) + [[True]] * (windows % 2))


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: tuple[str, ...]) -> None:
    axes = {name: {0: "n"} for name in (*inputs, *outputs)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=inputs,
                output_names=list(outputs),
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as err:  # the tracer raises many kinds; all mean "this graph cannot be exported"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ExportError(f"the model's graph cannot be traced for ONNX export: {type(err).__name__}: {first}") from err


@torch.inference_mode(False)
def export_onnx_graphs(model: LoopSVDDModel, output_dir: Path) -> dict[str, Path]:
    """Write `model.onnx` (encoder + head(s)) and `head.onnx` (head(s) alone) into `output_dir`, fp32."""
    model = make_traceable(copy.deepcopy(model).float().cpu().eval())  # tracing must never touch the caller's model
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"model": output_dir / "model.onnx", "head": output_dir / "head.onnx"}
    with torch.no_grad():
        inputs = window_input_names(model)
        _export(WindowGraph(model).eval(), example_window_inputs(model), paths["model"], inputs, WINDOW_GRAPH_OUTPUTS)
        example = torch.randn(2, model.config.embedding_dim)
        _export(HeadGraph(model).eval(), (example,), paths["head"], ["embeddings"], HEAD_GRAPH_OUTPUTS)
    return paths
