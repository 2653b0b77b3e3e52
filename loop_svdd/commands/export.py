"""`loop-svdd export MODEL --format onnx|openvino`: the detector as ONNX or OpenVINO graphs, optionally int8."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from .common import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a detector to ONNX or OpenVINO (fp32, optionally int8)",
        description="Write the encoder and the head(s) as one graph (window features in; window embeddings and "
        "window scores out), the head(s) alone as a second graph (pooled loop embeddings in; loop scores out), and "
        "export.json (inputs, outputs, opset, precision, model hash). The fp32 graph is checked against PyTorch "
        "before it is written. `score --backend onnxruntime|openvino` finds graphs in MODEL/onnx and MODEL/openvino.",
    )
    p.add_argument("model", help="model folder or Hub id")
    p.add_argument("--format", choices=("onnx", "openvino"), default="onnx", dest="fmt")
    p.add_argument("--output-dir", default=None, help="where to write (default: MODEL/onnx or MODEL/openvino)")
    p.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="also write an int8 graph: static (calibrated on normal loops) or dynamic, whichever ranks loops "
        "closer to fp32 (Spearman on held-out normal loops)",
    )
    p.add_argument(
        "--calibration",
        nargs="+",
        default=None,
        metavar="AUDIO",
        help="normal loops (files or folders) to calibrate int8 on (default: the model's training loops when its "
        "corpus folder is here; without any, dynamic int8)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.graphs import ExportError, export_model, normal_loops
    from ..models.model_io import ModelLoadError, load_detector

    needed = ["onnx", "onnxruntime"] + (["openvino"] if args.fmt == "openvino" else [])
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise CLIError(f"export needs {', '.join(missing)}: pip install 'loop-svdd[export]'")
    try:
        model, extractor = load_detector(args.model)
    except ModelLoadError as err:
        raise CLIError(str(err)) from err
    if not Path(args.model).is_dir() and args.output_dir is None:
        raise CLIError(f"{args.model} is not a local folder: give --output-dir")
    out = Path(args.output_dir) if args.output_dir else Path(args.model) / args.fmt
    calibration = None
    if args.quantize:
        calibration = _load_calibration(args.calibration, extractor) if args.calibration else None
        calibration = calibration or normal_loops(args.model, extractor)
    try:
        manifest = export_model(model, extractor, out, args.fmt, args.quantize, calibration, log=_log)
    except ExportError as err:
        raise CLIError(str(err)) from err
    for precision, graph in manifest["graphs"].items():
        print(f"{precision}: {out / graph['file']}{_describe(graph)}")
    print(f"head: {out / manifest['head_file']}; manifest: {out / 'export.json'} (model {manifest['model_hash']})")
    return 0


def _describe(graph: dict) -> str:
    how = graph.get("quantization")
    if not how:
        return f" (max relative difference from PyTorch {graph.get('max_rel_diff_vs_torch', 0.0):.2g})"
    rho = how.get("spearman_vs_fp32")
    ranked = ", ".join(f"{k} {v:.4f}" for k, v in rho.items()) if rho else how.get("why", "")
    return f" ({how['method']} int8; Spearman vs fp32: {ranked})" if rho else f" ({how['method']} int8: {ranked})"


def _log(message: str) -> None:
    print(f"loop-svdd export: {message}", file=sys.stderr)


def _load_calibration(inputs: list[str], extractor) -> list:
    from ..audio.decode import find_audio_files
    from ..audio.decoding import decode_file

    files = find_audio_files(inputs)
    if not files:
        raise CLIError(f"--calibration: no audio files in {' '.join(inputs)}")
    loops = []
    for path in files[:32]:
        decoded = decode_file(path, extractor.sampling_rate, max_seconds=60.0)
        if decoded.ok:
            loops.append(decoded.waveform)
        else:
            _log(f"calibration: skipped {decoded.path}: {decoded.reason}")
    return loops
