"""The `openvino` backend: an exported graph (OpenVINO IR, or ONNX read directly) on OpenVINO's CPU plugin."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .exported import GraphRunner, default_threads


class OpenVINORunner(GraphRunner):
    """An exported graph (OpenVINO IR, or ONNX read directly) compiled for OpenVINO's CPU plugin, fp32 inference
    precision (so fp32 graphs keep PyTorch's numbers), latency hint."""

    name = "openvino"
    requires = "openvino"
    graph_format = "openvino"

    def __init__(self, graph: Path, head: Path, precision: str = "fp32", threads: int | None = None) -> None:
        import openvino as ov

        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or default_threads(),
        }
        self.precision = precision
        self._windows = core.compile_model(core.read_model(str(graph)), "CPU", config)
        self._head = core.compile_model(core.read_model(str(head)), "CPU", config)
        self._inputs = [p.get_any_name() for p in self._windows.inputs]

    def windows(self, input_features: np.ndarray, is_longer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        out = self._windows(self.window_feed(input_features, is_longer))
        return np.asarray(out[0]), np.asarray(out[1])

    def head(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._head(self.head_feed(embeddings))
        return np.asarray(out[0]), np.asarray(out[1])
