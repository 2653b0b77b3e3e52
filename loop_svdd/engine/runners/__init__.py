"""Runners: the detector on PyTorch, ONNX Runtime or OpenVINO behind one interface (`base.Runner`).

A new backend is one module in this package (a class with `windows` and `head`; graph runners derive from
`exported.GraphRunner`) and one `register_runner` line below; `--backend`, `auto` and the export checks find it
through the registry. Classes are imported on first use (`get_runner`, or an attribute of this package).
"""

from __future__ import annotations

from .base import Runner, get_runner, register_runner, runner_for_format, runner_names

register_runner("torch", "loop_svdd.engine.runners.torch:TorchRunner")
register_runner("onnxruntime", "loop_svdd.engine.runners.onnxruntime:OnnxRuntimeRunner")
register_runner("openvino", "loop_svdd.engine.runners.openvino:OpenVINORunner")

__all__ = ["Runner", "get_runner", "register_runner", "runner_for_format", "runner_names"]


def __getattr__(attr: str) -> type[Runner]:
    """`TorchRunner`, `OnnxRuntimeRunner`, `OpenVINORunner` (any registered class, by its name), imported now."""
    for name in runner_names() if not attr.startswith("_") else ():
        runner = get_runner(name)
        if runner.__name__ == attr:
            return runner
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
