"""The `onnxruntime` backend: an exported ONNX graph on ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .exported import GraphRunner, default_threads


class OnnxRuntimeRunner(GraphRunner):
    """An exported ONNX graph on ONNX Runtime's CPU execution provider (all graph optimisations on)."""

    name = "onnxruntime"
    requires = "onnxruntime"
    graph_format = "onnx"

    def __init__(self, graph: Path, head: Path, precision: str = "fp32", threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.precision = precision
        self._windows = ort.InferenceSession(str(graph), options, providers=providers)
        self._head = ort.InferenceSession(str(head), options, providers=providers)
        self._inputs = [i.name for i in self._windows.get_inputs()]

    def windows(self, input_features: np.ndarray, is_longer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        emb, scores = self._windows.run(None, self.window_feed(input_features, is_longer))
        return emb, scores

    def head(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, latent = self._head.run(None, self.head_feed(embeddings))
        return scores, latent
