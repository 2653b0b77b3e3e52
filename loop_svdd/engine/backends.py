"""Inference backends: the same detector run by PyTorch, ONNX Runtime or OpenVINO, behind the one call the scoring
code makes ("window features -> window embeddings + window scores", then the head on pooled loops).

The one place a backend is chosen. `make_backend(model_dir, name)` gives `(model, extractor)` where `model` is the
`LoopSVDDModel` itself (`torch`) or a `BackendModel` around the registered runner of `name`
(`loop_svdd.engine.runners`), which the scoring code (`score_files`, `score_waveforms`, the demo) uses unchanged:
windowing, pooling of windows into loops and ranking stay one piece of code for every backend.

Graphs come from the model folder, else from the cache (`$LOOP_SVDD_CACHE`, default `~/.cache/loop_svdd/exports/<model
hash>/`), else they are exported once into the cache (`loop_svdd.engine.graphs.ensure_graph`).

`auto` picks the first installed backend of [`auto_order`]: by the loops/s `loop-svdd speed` records on this
machine (`<cache>/backend_speed.json`), else by the built-in order `AUTO_ORDER`, the one docs/export.md measures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoopSVDDError
from .runners import get_runner, runner_names

if TYPE_CHECKING:  # torch and transformers load only when a backend is made (the CLI's --help stays fast)
    import torch

    from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
    from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
    from .runners import Runner

BACKENDS = (*runner_names(), "auto")
# `auto`'s built-in order, fastest first: the interleaved backend run in docs/export.md ("Measured"; README,
# Performance, "Backends"), `loop-svdd speed --encoder base --loops 6 --reps 2` on a 2-core AVX2 CPU, end to end:
# fp32 ONNX Runtime 0.177 loops/s > OpenVINO 0.153 > PyTorch 0.084; int8 ONNX Runtime 0.223 > OpenVINO 0.161 >
# PyTorch 0.108. tests/test_auto_backend.py reads that run back and checks this order against it.
AUTO_ORDER = {"fp32": ("onnxruntime", "openvino", "torch"), "int8": ("onnxruntime", "openvino", "torch")}
SPEED_RECORD = "backend_speed.json"


class BackendError(LoopSVDDError, ValueError):
    """A backend that cannot run here (not installed, unsupported precision); one-line reason."""


def cache_dir() -> Path:
    return Path(os.environ.get("LOOP_SVDD_CACHE") or Path.home() / ".cache" / "loop_svdd")


def installed(name: str) -> bool:
    """Whether the module backend `name`'s runner needs is installed."""
    return importlib.util.find_spec(get_runner(name).requires) is not None


def auto_order(precision: str, measured: dict[str, float] | None = None) -> list[str]:
    """The backends `auto` tries for `precision`, fastest first: PyTorch alone for bf16 (graphs run fp32 or int8);
    else by this machine's `measured` loops/s where there are some (ties and unmeasured backends keep the built-in
    order, after the measured ones), else `AUTO_ORDER`."""
    if precision == "bf16":
        return ["torch"]
    order = list(AUTO_ORDER.get(precision, AUTO_ORDER["fp32"]))
    return sorted(order, key=lambda name: -measured.get(name, 0.0)) if measured else order


def speed_record(precision: str) -> dict[str, float] | None:
    """This machine's loops/s per backend at `precision`, as `loop-svdd speed` recorded them (None without a
    record). A record that cannot be read is named in one line on stderr and left out."""
    path = cache_dir() / SPEED_RECORD
    if not path.is_file():
        return None
    try:
        return {str(name): float(speed) for name, speed in json.loads(path.read_text()).get(precision, {}).items()}
    except (OSError, ValueError, TypeError, AttributeError) as err:  # unreadable, not JSON, not {name: number}
        why = (str(err).strip().splitlines() or [""])[0]
        print(
            f"loop-svdd: warning: ignoring the speed record {path} ({type(err).__name__}: {why}); "
            "--backend auto uses its built-in order (run `loop-svdd speed` to record a new one)",
            file=sys.stderr,
        )
        return None


def resolve_auto(precision: str = "fp32") -> str:
    """The backend `auto` means for `precision` on this machine: the first installed one of [`auto_order`]."""
    measured = speed_record(precision) if precision != "bf16" else None
    return next(name for name in auto_order(precision, measured) if installed(name))


def record_speed(loops_per_s: dict[str, dict[str, float]]) -> Path:
    """Store `{precision: {backend: loops/s}}` as measured by `loop-svdd speed`, for `auto`."""
    path = cache_dir() / SPEED_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(loops_per_s, indent=2) + "\n")
    return path


class BackendModel:
    """A `LoopSVDDModel` stand-in for the scoring code, running an exported graph (`runner`) on the CPU.

    Calling it runs `LoopSVDDModel.forward` itself (the one inference path) with this backend's windows and heads.
    Exported graphs carry no memory bank of normal time steps, so they give no `time_scores`."""

    time_scorer = None

    def __init__(self, config: Any, runner: Any) -> None:
        import torch

        self.config, self.runner = config, runner
        self.device = torch.device("cpu")
        self.backend, self.precision = runner.name, runner.precision

    def pool_windows(self, window_embeddings: torch.Tensor, window_clip_index: torch.Tensor | None) -> torch.Tensor:
        from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel

        return LoopSVDDModel.pool_windows(self, window_embeddings, window_clip_index)  # one pooling for every backend

    def __call__(self, **inputs: Any) -> Any:
        from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel

        return LoopSVDDModel.forward(self, **inputs)

    def embed_windows(self, input_features: torch.Tensor, is_longer=None, max_windows: int | None = None):
        from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel

        return LoopSVDDModel.embed_windows(self, input_features, is_longer, max_windows)

    def get_window_embeddings(
        self, input_features: torch.Tensor, is_longer: torch.Tensor | None = None
    ) -> torch.Tensor:
        import torch

        longer = None if is_longer is None else is_longer.cpu().numpy()
        return torch.from_numpy(self.runner.windows(input_features.cpu().numpy(), longer)[0])

    def score_embeddings(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import numpy as np
        import torch

        scores, latent = self.runner.head(embeddings.detach().float().cpu().numpy())
        return torch.from_numpy(np.asarray(scores)), torch.from_numpy(np.asarray(latent))

    def eval(self) -> BackendModel:
        return self

    def __repr__(self) -> str:
        return f"BackendModel({self.backend}, {self.precision})"


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """`--backend torch|onnxruntime|openvino|auto` (default torch), for any command that scores loops."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="inference engine: torch, onnxruntime, openvino (exported graph, made once and cached if the model "
        "folder has none), or auto (the fastest installed; see `loop-svdd speed`) (default: torch)",
    )


def make_backend(
    model_dir: str | Path, name: str = "torch", precision: str = "fp32", log: Any = None
) -> tuple[LoopSVDDModel | BackendModel, LoopSVDDFeatureExtractor]:
    """Load the detector in `model_dir` (folder or Hub id) to run on backend `name` at `precision`.

    Raises `ModelLoadError` for a model that cannot be loaded, `BackendError` for a backend that cannot run it.
    """
    from ..models.model_io import load_detector

    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    model, extractor = load_detector(model_dir)
    name = resolve_auto(precision) if name == "auto" else name
    if name == "torch":  # the model itself (any device, time scores); TorchRunner is its numpy face
        from .precision import apply_precision

        return apply_precision(model, precision), extractor
    return BackendModel(model.config, graph_runner(model, extractor, model_dir, name, precision, log)), extractor


def graph_runner(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    model_dir: str | Path,
    name: str,
    precision: str,
    log: Any = None,
) -> Runner:
    """The runner of backend `name` for `model`'s exported graph: found in the model folder or the cache, or
    exported into the cache now."""
    from .graphs import ensure_graph

    runner = get_runner(name)
    if precision not in runner.precisions:
        runs = " or ".join(runner.precisions)
        raise BackendError(f"the {name} backend runs {runs} graphs, not {precision} (use --backend torch)")
    if not installed(name):
        raise BackendError(f"the {name} backend is not installed (pip install 'loop-svdd[export]')")
    graph, head = ensure_graph(
        model, extractor, model_dir, runner.graph_format, precision, cache_dir() / "exports", log or _stderr
    )
    return runner(graph, head, precision)


def _stderr(message: str) -> None:
    print(f"loop-svdd: {message}", file=sys.stderr)
