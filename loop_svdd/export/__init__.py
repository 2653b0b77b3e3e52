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
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from .graph import OPSET, ExportError, export_onnx_graphs
from .manifest import MANIFEST, find_graph, model_hash, read_manifest, tensor_specs, update_manifest

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
    from ..engine.runners import TorchRunner

    ref = window_scores(TorchRunner(model), feeds)
    try:
        got = window_scores(runner, feeds)
    except Exception as err:  # e.g. a shape traced as a constant fails on another number of windows
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ExportError(
            f"the exported graph does not reproduce the PyTorch scores (it fails on a batch of {len(ref)} windows: "
            f"{first}): part of the model was traced as a constant"
        ) from err
    same_shape = got.shape == ref.shape
    diff = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-12))) if same_shape else float("inf")
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
    from ..engine.runners import OnnxRuntimeRunner, OpenVINORunner

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
    probe = _probe(extractor)
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


def onnx_to_openvino(
    model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, onnx_dir: str | Path, output_dir: str | Path
) -> dict[str, Any]:
    """Convert an ONNX export of `model` (every precision in it) to OpenVINO IR, without tracing again."""
    onnx_dir, output_dir = Path(onnx_dir), Path(output_dir)
    source = read_manifest(onnx_dir)
    if not source or source.get("format") != "onnx" or source.get("model_hash") != model_hash(model):
        raise ExportError(f"{onnx_dir} holds no ONNX export of this model")
    output_dir.mkdir(parents=True, exist_ok=True)
    base = _base_manifest(model, extractor, "openvino")
    head = to_openvino(onnx_dir / source["head_file"], output_dir / FILES["openvino"]["head"])
    manifest = {}
    for precision, graph in source["graphs"].items():
        final = to_openvino(onnx_dir / graph["file"], output_dir / FILES["openvino"][precision])
        info = {k: v for k, v in graph.items() if k != "file"}
        if precision == "fp32":
            info["max_rel_diff_vs_torch"] = check_parity(model, _runner("openvino", final, head), _probe(extractor))
        manifest = update_manifest(output_dir, base, precision, {"file": final.name, **info})
    return manifest


def _probe(extractor: LoopSVDDFeatureExtractor) -> list[dict[str, np.ndarray]]:
    tone = np.sin(np.arange(extractor.sampling_rate * 12) / 7.0).astype(np.float32) * 0.3
    return feature_batches(extractor, [tone[: extractor.sampling_rate * 3], tone])  # short and longer than 10 s


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


def add_onnx_to_repo(model_dir: str | Path, repo_dir: str | Path) -> list[str]:
    """Put the ONNX export of the detector in `model_dir` under `repo_dir/onnx/` (the Hub's ONNX convention): the
    one in `model_dir/onnx` when it was exported from this very model, else a fresh fp32 export. Returns the names
    of the files added, relative to `repo_dir`."""
    import shutil

    from ..models.model_io import load_detector

    model, extractor = load_detector(model_dir)
    source, target = Path(model_dir) / "onnx", Path(repo_dir) / "onnx"
    manifest = read_manifest(source)
    if manifest and manifest.get("format") == "onnx" and manifest.get("model_hash") == model_hash(model):
        names = [MANIFEST, manifest["head_file"], *(g["file"] for g in manifest["graphs"].values())]
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy2(source / name, target / name)
    else:
        manifest = export_model(model, extractor, target, "onnx")
        names = [MANIFEST, manifest["head_file"], *(g["file"] for g in manifest["graphs"].values())]
    return [f"onnx/{name}" for name in names]
