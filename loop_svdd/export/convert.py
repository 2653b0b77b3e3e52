"""A traced ONNX graph into its place in an export folder: moved there (format `onnx`) or converted to OpenVINO IR
(format `openvino`)."""

from __future__ import annotations

from pathlib import Path


def to_openvino(onnx_path: Path, xml_path: Path) -> Path:
    """Convert an ONNX graph to OpenVINO IR (weights kept fp32: no fp16 compression)."""
    import openvino as ov

    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)
    return xml_path


def place_graph(fmt: str, onnx_path: Path, target: Path) -> Path:
    """Put the ONNX graph `onnx_path` at `target` in format `fmt`; returns `target`."""
    if fmt == "openvino":
        return to_openvino(onnx_path, target)
    onnx_path.replace(target)
    return target
