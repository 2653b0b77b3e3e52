"""The Runner interface and the registry of runners (one per `--backend` choice).

A runner makes one call, "window features -> window embeddings + window scores" (`windows`), and runs the head alone
on pooled loops, "loop embeddings -> loop scores + latents" (`head`). Inputs and outputs are numpy arrays, so the code
around them (windowing, pooling of windows into loops, ranking) is the same for every backend.

Registering a runner by "module:Class" imports it on first use: this module and the registry load neither numpy nor
torch, so the CLI's `--backend` choices cost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    import numpy as np

_REGISTRY: dict[str, type[Runner] | str] = {}


class Runner(Protocol):
    """What every backend runs: a detector's windows, then its head(s) on pooled loops."""

    name: ClassVar[str]  # the `--backend` choice
    requires: ClassVar[str]  # the module that must be installed
    precisions: ClassVar[tuple[str, ...]]  # what it runs
    graph_format: ClassVar[str | None]  # the export format it executes (None: the PyTorch model itself)
    precision: str

    def windows(self, input_features: np.ndarray, is_longer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`(windows, C, frames, mels)` features [+ `is_longer`] -> window embeddings, window scores."""
        ...

    def head(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(n, embedding_dim)` loop embeddings -> scores `(n,)`, latents of the first head `(n, latent_dim)`."""
        ...


def register_runner(name: str, cls: type[Runner] | str) -> None:
    """Make `cls` (a class, or "package.module:Class" imported on first use) the runner of backend `name`."""
    if name == "auto":
        raise ValueError("'auto' is not a runner: it picks one of the registered runners")
    _REGISTRY[name] = cls


def get_runner(name: str) -> type[Runner]:
    """The runner class registered as `name`."""
    if name not in _REGISTRY:
        raise KeyError(f"no runner registered as {name!r}; registered: {', '.join(_REGISTRY)}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = _REGISTRY[name] = getattr(importlib.import_module(module), attr)
    return entry


def runner_names() -> tuple[str, ...]:
    """The registered backends, in registration order."""
    return tuple(_REGISTRY)


def runner_for_format(fmt: str) -> type[Runner]:
    """The first registered runner that executes exported graphs of format `fmt` (`onnx`, `openvino`)."""
    for name in runner_names():
        if get_runner(name).graph_format == fmt:
            return get_runner(name)
    raise KeyError(f"no runner registered for {fmt!r} graphs")
