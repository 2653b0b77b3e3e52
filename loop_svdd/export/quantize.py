"""int8 versions of an exported fp32 graph (ONNX Runtime quantisation): dynamic (weights int8, activations
quantised on the fly) and static (activations calibrated on the model's own normal loops, QDQ format).

The Deep SVDD head(s) stay fp32 in both: the ranking is made of the head's small latent distances (quantising the
head too costs ranking, see `loop_svdd.engine.precision`). `pick_int8` builds both, measures the Spearman correlation of
each one's window scores with the fp32 graph's on held-out loops, and keeps the better one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .feeds import feature_batches

ScoreGraph = Callable[[Path, list[dict[str, np.ndarray]]], np.ndarray]  # (graph file, feeds) -> window scores


def _head_nodes(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    names = [n.name for n in graph.node]
    encoder = {n for n in names if n.startswith("/encoder/")}  # the HTS-AT nodes; the rest is the head(s)
    return [n for n in names if n not in encoder]


def _quiet() -> None:
    for name in ("onnxruntime", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)


def quantize_dynamic_graph(fp32_path: Path, out_path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _quiet()
    quantize_dynamic(
        str(fp32_path),
        str(out_path),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=_head_nodes(fp32_path),
    )
    return out_path


class _Reader:
    """`CalibrationDataReader` over batches of window features."""

    def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_static_graph(fp32_path: Path, out_path: Path, batches: list[dict[str, np.ndarray]]) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    _quiet()
    quantize_static(
        str(fp32_path),
        str(out_path),
        _Reader(batches),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=_head_nodes(fp32_path),
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )
    return out_path


def rank_agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """Spearman correlation of two score vectors (1.0 for a single pair of equal scores)."""
    if len(reference) < 2:
        return 1.0 if np.allclose(reference, other) else 0.0
    return float(spearmanr(reference, other).statistic)


def pick_int8(
    fp32_path: Path,
    out_dir: Path,
    calibration: list[dict[str, np.ndarray]] | None,
    held_out: list[dict[str, np.ndarray]] | None,
    run_scores: ScoreGraph,
) -> tuple[Path, dict]:
    """Build the dynamic int8 graph and, with calibration batches, the static one; keep the one whose window
    scores on `held_out` rank like the fp32 graph's (ties go to static). Returns (path, how it was chosen)."""
    dynamic = quantize_dynamic_graph(fp32_path, out_dir / "model_int8_dynamic.onnx")
    if not calibration or not held_out:
        final = dynamic.rename(out_dir / "model_int8.onnx")
        return final, {"method": "dynamic", "why": "no calibration loops"}
    static = quantize_static_graph(fp32_path, out_dir / "model_int8_static.onnx", calibration)
    reference = run_scores(fp32_path, held_out)
    rho = {
        name: rank_agreement(reference, run_scores(p, held_out))
        for name, p in (("static", static), ("dynamic", dynamic))
    }
    method = "static" if rho["static"] >= rho["dynamic"] else "dynamic"
    chosen, other = (static, dynamic) if method == "static" else (dynamic, static)
    other.unlink()
    final = chosen.rename(out_dir / "model_int8.onnx")
    return final, {"method": method, "spearman_vs_fp32": rho, "held_out_windows": int(len(reference))}


def build_int8(
    extractor: LoopSVDDFeatureExtractor,
    fp32_path: Path,
    calibration_waves: list[np.ndarray] | None,
    log: Callable[[str], None],
    run_scores: ScoreGraph,
) -> tuple[Path, dict]:
    """The int8 graph of the fp32 graph at `fp32_path` (`pick_int8`), calibrated on the even `calibration_waves`
    and compared on the odd ones (on all of them when there are fewer than 4). Returns (path, manifest entry)."""
    calibration = held_out = None
    if calibration_waves:
        calib_waves = calibration_waves[::2] if len(calibration_waves) >= 4 else calibration_waves
        held_waves = calibration_waves[1::2] if len(calibration_waves) >= 4 else calibration_waves
        calibration, held_out = feature_batches(extractor, calib_waves), feature_batches(extractor, held_waves)
        log(f"int8: static (calibrated on {len(calib_waves)} normal loops) vs dynamic, Spearman vs fp32 ...")
    else:
        log("int8: no calibration loops, dynamic quantisation")
    path, info = pick_int8(fp32_path, fp32_path.parent, calibration, held_out, run_scores)
    return path, {"precision": "int8", "quantization": info}
