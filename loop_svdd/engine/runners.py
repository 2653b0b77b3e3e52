"""Runners: one call, "window features -> window embeddings + window scores", on PyTorch, ONNX Runtime or
OpenVINO; and the head alone, "clip embeddings -> clip scores + latents". Inputs and outputs are numpy arrays, so
the code around them (windowing, pooling of windows into loops, ranking) is the same for every backend."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..export.graph import HeadGraph, WindowGraph
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel


def default_threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads())


class TorchRunner:
    """The PyTorch model itself (any precision `loop_svdd.engine.precision` gives)."""

    name = "torch"

    def __init__(self, model: LoopSVDDModel, precision: str = "fp32") -> None:
        self.model, self.precision = model.eval(), precision
        self._windows, self._head = WindowGraph(self.model).eval(), HeadGraph(self.model).eval()

    @torch.inference_mode()
    def windows(self, input_features: np.ndarray, is_longer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        device = self.model.device
        longer = None if is_longer is None else torch.as_tensor(is_longer, device=device)
        emb, scores = self._windows(torch.as_tensor(input_features, device=device), longer)
        return emb.float().cpu().numpy(), scores.float().cpu().numpy()

    @torch.inference_mode()
    def head(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, latent = self._head(torch.as_tensor(embeddings, device=self.model.device))
        return scores.float().cpu().numpy(), latent.float().cpu().numpy()


class OnnxRuntimeRunner:
    """An exported ONNX graph on ONNX Runtime's CPU execution provider (all graph optimisations on)."""

    name = "onnxruntime"

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
        feed = {"input_features": np.ascontiguousarray(input_features, dtype=np.float32)}
        if "is_longer" in self._inputs:
            feed["is_longer"] = np.asarray(is_longer, dtype=bool).reshape(-1, 1)
        emb, scores = self._windows.run(None, feed)
        return emb, scores

    def head(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, latent = self._head.run(None, {"embeddings": np.ascontiguousarray(embeddings, dtype=np.float32)})
        return scores, latent


class OpenVINORunner:
    """An exported graph (OpenVINO IR, or ONNX read directly) compiled for OpenVINO's CPU plugin, fp32 inference
    precision (so fp32 graphs keep PyTorch's numbers), latency hint."""

    name = "openvino"

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
        feed = {"input_features": np.ascontiguousarray(input_features, dtype=np.float32)}
        if "is_longer" in self._inputs:
            feed["is_longer"] = np.asarray(is_longer, dtype=bool).reshape(-1, 1)
        out = self._windows(feed)
        return np.asarray(out[0]), np.asarray(out[1])

    def head(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._head({"embeddings": np.ascontiguousarray(embeddings, dtype=np.float32)})
        return np.asarray(out[0]), np.asarray(out[1])
