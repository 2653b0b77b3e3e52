"""What the runners of exported graphs share: they are made from the graph files (`cls(graph, head, precision,
threads)`), run fp32 or int8 graphs, and are fed the same named numpy inputs."""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np


def default_threads() -> int:
    """The threads a graph runtime uses: `OMP_NUM_THREADS`, else as many as PyTorch uses."""
    import torch

    return int(os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads())


class GraphRunner:
    """Base of the runners that execute an exported window graph and head graph (see `loop_svdd.export`)."""

    name: ClassVar[str]
    requires: ClassVar[str]
    graph_format: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")
    precision: str
    _inputs: list[str]  # the window graph's input names

    def window_feed(self, input_features: np.ndarray, is_longer: np.ndarray | None) -> dict[str, np.ndarray]:
        """The window graph's inputs: fp32 features, and `is_longer` `(n, 1)` for fused encoders' graphs."""
        feed = {"input_features": np.ascontiguousarray(input_features, dtype=np.float32)}
        if "is_longer" in self._inputs:
            feed["is_longer"] = np.asarray(is_longer, dtype=bool).reshape(-1, 1)
        return feed

    @staticmethod
    def head_feed(embeddings: np.ndarray) -> dict[str, np.ndarray]:
        return {"embeddings": np.ascontiguousarray(embeddings, dtype=np.float32)}
