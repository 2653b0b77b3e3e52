"""The `torch` backend as a runner: the PyTorch model itself (any precision `loop_svdd.engine.precision` gives).

`make_backend` hands the scoring code the model itself for this backend; the runner is its numpy face, the
reference the exported graphs are checked against (`loop_svdd.engine.runners.parity`)."""

from __future__ import annotations

import numpy as np
import torch

from ...export.graph import HeadGraph, WindowGraph
from ...models.loop_svdd.modeling_loop_svdd import LoopSVDDModel


class TorchRunner:
    """The PyTorch model itself (any precision `loop_svdd.engine.precision` gives)."""

    name = "torch"
    requires = "torch"
    precisions = ("fp32", "int8", "bf16")
    graph_format = None

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
