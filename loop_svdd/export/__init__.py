"""Export a detector's graphs to ONNX or OpenVINO: the encoder and the head(s) as one graph (window features in,
window embeddings and window scores out), the head(s) alone as a second small graph (pooled loop embeddings in,
loop scores out), optionally int8, with a JSON manifest (`export.json`) that ties the graphs to the model.

This package writes graphs and never runs them: `loop_svdd.engine.graphs.export_model` traces them here, checks
them against PyTorch on a runner (`loop_svdd.engine.runners`) and puts them in place.

- `graph`: the torch modules traced (`WindowGraph`, `HeadGraph`) and the ONNX tracing (`export_onnx_graphs`);
- `manifest`: the folder's layout (`FILES`) and `export.json` (`base_manifest`, `update_manifest`, `find_graph`);
- `convert`: a traced graph into its place, as ONNX or OpenVINO IR (`place_graph`, `to_openvino`);
- `feeds`: numpy inputs for the graphs (`feature_batches`, `probe_feeds`);
- `quantize`: int8 graphs, dynamic or static, whichever ranks loops closer to fp32 (`build_int8`).
"""

from __future__ import annotations

from .convert import place_graph, to_openvino
from .feeds import feature_batches, probe_feeds
from .graph import OPSET, ExportError, HeadGraph, WindowGraph, export_onnx_graphs
from .manifest import (
    FILES,
    FORMATS,
    MANIFEST,
    base_manifest,
    find_graph,
    model_hash,
    read_manifest,
    tensor_specs,
    update_manifest,
)
from .quantize import build_int8

__all__ = [
    "FILES",
    "FORMATS",
    "MANIFEST",
    "OPSET",
    "ExportError",
    "HeadGraph",
    "WindowGraph",
    "base_manifest",
    "build_int8",
    "export_onnx_graphs",
    "feature_batches",
    "find_graph",
    "model_hash",
    "place_graph",
    "probe_feeds",
    "read_manifest",
    "tensor_specs",
    "to_openvino",
    "update_manifest",
]
