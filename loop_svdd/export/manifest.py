"""The JSON manifest written next to exported graphs (`export.json`): what the graphs take and give, their opset
and precision, and a hash of the model they were exported from, so a backend can check they fit the model.

Layout of an export folder (`FILES`): `model.onnx` / `model_int8.onnx` and `head.onnx` (format `onnx`), or
`openvino_model.xml` / `openvino_model_int8.xml` and `openvino_head.xml` with their `.bin` (format `openvino`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.model_io import read_json, write_json_atomic
from .graph import OPSET

MANIFEST = "export.json"
MANIFEST_VERSION = 1
FORMATS = ("onnx", "openvino")
FILES = {
    "onnx": {"fp32": "model.onnx", "int8": "model_int8.onnx", "head": "head.onnx"},
    "openvino": {"fp32": "openvino_model.xml", "int8": "openvino_model_int8.xml", "head": "openvino_head.xml"},
}


def model_hash(model: LoopSVDDModel) -> str:
    """sha256 (16 hex) of the model's config (its Deep SVDD state included) and weights: what the graphs compute."""
    h = hashlib.sha256()
    config = model.config.to_dict()
    config.pop("transformers_version", None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def tensor_specs(model: LoopSVDDModel, frames: int) -> dict[str, Any]:
    """Names, dtypes and shapes (`n` = any number of windows or clips) of the graphs' inputs and outputs."""
    cfg = model.config
    channels = 4 if cfg.is_fused else 1
    inputs = [
        {"name": "input_features", "dtype": "float32", "shape": ["n", channels, frames, cfg.audio_config.num_mel_bins]}
    ]
    if cfg.is_fused:
        inputs.append({"name": "is_longer", "dtype": "bool", "shape": ["n", 1]})
    return {
        "inputs": inputs,
        "outputs": [
            {"name": "window_embeddings", "dtype": "float32", "shape": ["n", cfg.embedding_dim]},
            {"name": "window_scores", "dtype": "float32", "shape": ["n"]},
        ],
        "head_inputs": [{"name": "embeddings", "dtype": "float32", "shape": ["n", cfg.embedding_dim]}],
        "head_outputs": [
            {"name": "scores", "dtype": "float32", "shape": ["n"]},
            {"name": "latent", "dtype": "float32", "shape": ["n", cfg.latent_dim]},
        ],
    }


def base_manifest(model: LoopSVDDModel, frames: int, fmt: str) -> dict[str, Any]:
    """The manifest of an export of `model` in format `fmt` (windows of `frames` frames), before its graphs."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": fmt,
        "opset": OPSET,
        "model_hash": model_hash(model),
        "loop_svdd_version": __version__,
        "fused": model.config.is_fused,
        "head_file": FILES[fmt]["head"],
        "pooling": "outside the graphs: mean of a loop's window embeddings (window_clip_index), then the head graph",
        **tensor_specs(model, frames),
    }


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return read_json(Path(folder) / MANIFEST)
    except (OSError, ValueError):
        return None


def update_manifest(folder: Path, base: dict[str, Any], precision: str, graph: dict[str, Any]) -> dict[str, Any]:
    """Add one graph (`precision` -> its file and how it was made) to the manifest of `folder`, keeping the graphs
    already there when they come from the same model and format."""
    old = read_manifest(folder) or {}
    same = old.get("model_hash") == base["model_hash"] and old.get("format") == base["format"]
    manifest = {**base, "graphs": {**(old.get("graphs", {}) if same else {}), precision: graph}}
    write_json_atomic(Path(folder) / MANIFEST, manifest)
    return manifest


def find_graph(folder: Path, fmt: str, digest: str, precision: str) -> dict[str, Any] | None:
    """The manifest entry of a `precision` graph in `folder` exported from the model of hash `digest`, or None."""
    manifest = read_manifest(folder)
    if not manifest or manifest.get("format") != fmt or manifest.get("model_hash") != digest:
        return None
    graph = manifest.get("graphs", {}).get(precision)
    if (
        not graph
        or not (Path(folder) / graph["file"]).is_file()
        or not (Path(folder) / manifest["head_file"]).is_file()
    ):
        return None
    return {**graph, "folder": str(folder), "head_file": manifest["head_file"], "manifest": manifest}
