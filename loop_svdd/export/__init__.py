"""Export a detector to ONNX or OpenVINO: the encoder and the head(s) as one graph (window features in, window
embeddings and window scores out), the head(s) alone as a second small graph (pooled clip embeddings in, clip
scores out), optionally int8, with a JSON manifest (`export.json`) that ties the graphs to the model.

Layout of an export folder: `model.onnx` / `model_int8.onnx` and `head.onnx` (format `onnx`), or
`openvino_model.xml` / `openvino_model_int8.xml` and `openvino_head.xml` with their `.bin` (format `openvino`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..modeling_loop_svdd import LoopSVDDModel
from .graph import OPSET, ExportError, export_onnx_graphs
from .manifest import MANIFEST, find_graph, model_hash, read_manifest, tensor_specs, update_manifest
from .runners import OnnxRuntimeRunner, OpenVINORunner, TorchRunner

FORMATS = ("onnx", "openvino")
PARITY_RTOL = 1e-3  # an fp32 graph further than this from PyTorch was traced wrongly: refuse it
FILES = {
    "onnx": {"fp32": "model.onnx", "int8": "model_int8.onnx", "head": "head.onnx"},
    "openvino": {"fp32": "openvino_model.xml", "int8": "openvino_model_int8.xml", "head": "openvino_head.xml"},
}

__all__ = ["FORMATS", "MANIFEST", "ExportError", "export_model", "find_graph", "model_hash", "read_manifest"]


def feature_batches(
    extractor: LoopSVDDFeatureExtractor, waves: list[np.ndarray], windows_per_batch: int = 4
) -> list[dict[str, np.ndarray]]:
    """Graph inputs (numpy feeds) for the windows of `waves`, `windows_per_batch` windows per feed."""
    feats = extractor(waves, sampling_rate=extractor.sampling_rate, return_tensors="np")
    x, longer = feats["input_features"], feats["is_longer"]
    feeds = []
    for i in range(0, len(x), windows_per_batch):
        feed = {"input_features": x[i : i + windows_per_batch]}
        if extractor.fusion:
            feed["is_longer"] = longer[i : i + windows_per_batch]
        feeds.append(feed)
    return feeds


def window_scores(runner: Any, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([runner.windows(f["input_features"], f.get("is_longer"))[1] for f in feeds])


def check_parity(model: LoopSVDDModel, runner: Any, feeds: list[dict[str, np.ndarray]]) -> float:
    """Max relative difference of the graph's window scores from PyTorch's; raises ExportError past PARITY_RTOL."""
    ref = window_scores(TorchRunner(model), feeds)
    got = window_scores(runner, feeds)
    diff = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-12)))
    if not np.isfinite(diff) or diff > PARITY_RTOL:
        raise ExportError(
            f"the exported graph does not reproduce the PyTorch scores (max relative difference {diff:.3g} > "
            f"{PARITY_RTOL}): part of the model was traced as a constant"
        )
    return diff


def to_openvino(onnx_path: Path, xml_path: Path) -> Path:
    """Convert an ONNX graph to OpenVINO IR (weights kept fp32: no fp16 compression)."""
    import openvino as ov

    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)
    return xml_path


def _base_manifest(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, fmt: str) -> dict[str, Any]:
    return {
        "manifest_version": 1,
        "format": fmt,
        "opset": OPSET,
        "model_hash": model_hash(model),
        "loop_svdd_version": __version__,
        "fused": model.config.is_fused,
        "head_file": FILES[fmt]["head"],
        "pooling": "outside the graphs: mean of a loop's window embeddings (window_clip_index), then the head graph",
        **tensor_specs(model, extractor.num_frames),
    }


def _runner(fmt: str, graph: Path, head: Path, precision: str = "fp32") -> Any:
    runner = OnnxRuntimeRunner if fmt == "onnx" else OpenVINORunner
    return runner(graph, head, precision)


def export_model(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    output_dir: str | Path,
    fmt: str = "onnx",
    quantize: str | None = None,
    calibration_waves: list[np.ndarray] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Export `model` (fp32, and int8 too with `quantize="int8"`) into `output_dir`; returns the manifest.

    The fp32 graph is checked against PyTorch on a few windows before anything is written as final.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    base = _base_manifest(model, extractor, fmt)
    tone = np.sin(np.arange(extractor.sampling_rate * 12) / 7.0).astype(np.float32) * 0.3
    probe = feature_batches(extractor, [tone[: extractor.sampling_rate * 3], tone])  # short and longer than 10 s
    with tempfile.TemporaryDirectory(prefix="loop-svdd-export-", dir=output_dir) as tmp:
        log("tracing the encoder and head(s) to ONNX ...")
        onnx_paths = export_onnx_graphs(model, Path(tmp))
        diff = check_parity(model, _runner("onnx", onnx_paths["model"], onnx_paths["head"]), probe)
        graphs = {"fp32": (onnx_paths["model"], {"precision": "fp32", "max_rel_diff_vs_torch": diff})}
        if quantize == "int8":
            graphs["int8"] = _quantize(extractor, onnx_paths, calibration_waves, log)
        head = _place(fmt, onnx_paths["head"], output_dir / FILES[fmt]["head"])
        manifest = {}
        for precision, (path, info) in graphs.items():
            final = _place(fmt, path, output_dir / FILES[fmt][precision])
            if fmt == "openvino" and precision == "fp32":
                info["max_rel_diff_vs_torch"] = check_parity(model, _runner(fmt, final, head), probe)
            manifest = update_manifest(output_dir, base, precision, {"file": final.name, **info})
    return manifest


def _place(fmt: str, onnx_path: Path, target: Path) -> Path:
    if fmt == "openvino":
        return to_openvino(onnx_path, target)
    onnx_path.replace(target)
    return target


def _quantize(
    extractor: LoopSVDDFeatureExtractor,
    onnx_paths: dict[str, Path],
    calibration_waves: list[np.ndarray] | None,
    log: Callable[[str], None],
) -> tuple[Path, dict[str, Any]]:
    from .quantize import pick_int8

    calibration = held_out = None
    if calibration_waves:
        calib_waves = calibration_waves[::2] if len(calibration_waves) >= 4 else calibration_waves
        held_waves = calibration_waves[1::2] if len(calibration_waves) >= 4 else calibration_waves
        calibration, held_out = feature_batches(extractor, calib_waves), feature_batches(extractor, held_waves)
        log(f"int8: static (calibrated on {len(calib_waves)} normal loops) vs dynamic, Spearman vs fp32 ...")
    else:
        log("int8: no calibration loops, dynamic quantisation")

    def scores(path: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
        return window_scores(_runner("onnx", path, onnx_paths["head"]), feeds)

    path, info = pick_int8(onnx_paths["model"], onnx_paths["model"].parent, calibration, held_out, scores)
    return path, {"precision": "int8", "quantization": info}
