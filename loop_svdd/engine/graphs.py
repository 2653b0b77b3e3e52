"""A detector's exported graphs: made (traced and written by `loop_svdd.export`, checked here against PyTorch on a
runner before anything is final), converted, found in a model folder or a cache, or made once into the cache.

Exported graphs are looked for in the model folder (`onnx/`, `openvino/`, as `loop-svdd export` and `push
--with-onnx` write them), then in the cache; when neither has a graph of this model, it is exported once into the
cache (a line on stderr says so). A graph whose manifest names another model (different config or weights) is never
used.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..export import (
    FILES,
    FORMATS,
    MANIFEST,
    ExportError,
    base_manifest,
    build_int8,
    export_onnx_graphs,
    find_graph,
    model_hash,
    place_graph,
    probe_feeds,
    read_manifest,
    to_openvino,
    update_manifest,
)
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from .runners import Runner, runner_for_format
from .runners.parity import check_parity, window_scores

__all__ = [
    "FILES",
    "ExportError",
    "add_onnx_to_repo",
    "ensure_graph",
    "export_model",
    "normal_loops",
    "onnx_to_openvino",
]


def open_graph(fmt: str, graph: Path, head: Path, precision: str = "fp32") -> Runner:
    """A runner of the `fmt` graph `graph` with its head graph `head`."""
    return runner_for_format(fmt)(graph, head, precision)


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
    base = base_manifest(model, extractor.num_frames, fmt)
    probe = probe_feeds(extractor)
    with tempfile.TemporaryDirectory(prefix="loop-svdd-export-", dir=output_dir) as tmp:
        log("tracing the encoder and head(s) to ONNX ...")
        onnx_paths = export_onnx_graphs(model, Path(tmp))
        diff = check_parity(model, open_graph("onnx", onnx_paths["model"], onnx_paths["head"]), probe)
        graphs = {"fp32": (onnx_paths["model"], {"precision": "fp32", "max_rel_diff_vs_torch": diff})}
        if quantize == "int8":
            scores = _onnx_window_scores(onnx_paths["head"])
            graphs["int8"] = build_int8(extractor, onnx_paths["model"], calibration_waves, log, scores)
        head = place_graph(fmt, onnx_paths["head"], output_dir / FILES[fmt]["head"])
        manifest = {}
        for precision, (path, info) in graphs.items():
            final = place_graph(fmt, path, output_dir / FILES[fmt][precision])
            if fmt == "openvino" and precision == "fp32":
                info["max_rel_diff_vs_torch"] = check_parity(model, open_graph(fmt, final, head), probe)
            manifest = update_manifest(output_dir, base, precision, {"file": final.name, **info})
    return manifest


def _onnx_window_scores(head: Path) -> Callable[[Path, list[dict[str, np.ndarray]]], np.ndarray]:
    """(ONNX window graph, feeds) -> its window scores, with the head graph `head`: what int8 graphs are ranked by."""

    def scores(path: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
        return window_scores(open_graph("onnx", path, head), feeds)

    return scores


def onnx_to_openvino(
    model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, onnx_dir: str | Path, output_dir: str | Path
) -> dict[str, Any]:
    """Convert an ONNX export of `model` (every precision in it) to OpenVINO IR, without tracing again."""
    onnx_dir, output_dir = Path(onnx_dir), Path(output_dir)
    source = read_manifest(onnx_dir)
    if not source or source.get("format") != "onnx" or source.get("model_hash") != model_hash(model):
        raise ExportError(f"{onnx_dir} holds no ONNX export of this model")
    output_dir.mkdir(parents=True, exist_ok=True)
    base = base_manifest(model, extractor.num_frames, "openvino")
    head = to_openvino(onnx_dir / source["head_file"], output_dir / FILES["openvino"]["head"])
    manifest = {}
    for precision, graph in source["graphs"].items():
        final = to_openvino(onnx_dir / graph["file"], output_dir / FILES["openvino"][precision])
        info = {k: v for k, v in graph.items() if k != "file"}
        if precision == "fp32":
            info["max_rel_diff_vs_torch"] = check_parity(
                model, open_graph("openvino", final, head), probe_feeds(extractor)
            )
        manifest = update_manifest(output_dir, base, precision, {"file": final.name, **info})
    return manifest


def ensure_graph(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    model_dir: str | Path,
    fmt: str,
    precision: str,
    cache: Path,
    log: Callable[[str], None],
) -> tuple[Path, Path]:
    """The files (window graph, head graph) of `model`'s `fmt` `precision` graph: found in `model_dir/<fmt>` or
    `cache/<model hash>/<fmt>`, or exported into the latter now (OpenVINO converts an ONNX export found there)."""
    digest = model_hash(model)
    places = [Path(model_dir) / fmt, cache / digest / fmt]
    graph = next((g for p in places if (g := find_graph(p, fmt, digest, precision))), None)
    if graph is None:
        log(f"no {fmt} {precision} graph of this model yet: exporting it once into {places[1]}")
        onnx = [p.parent / "onnx" for p in places if find_graph(p.parent / "onnx", "onnx", digest, precision)]
        if fmt == "openvino" and onnx:  # convert the ONNX graphs already there rather than trace again
            onnx_to_openvino(model, extractor, onnx[0], places[1])
        else:
            calibration = normal_loops(model_dir, extractor) if precision == "int8" else None
            export_model(model, extractor, places[1], fmt, "int8" if precision == "int8" else None, calibration)
        graph = find_graph(places[1], fmt, digest, precision)
    folder = Path(graph["folder"])
    return folder / graph["file"], folder / graph["head_file"]


def normal_loops(model_dir: str | Path, extractor: LoopSVDDFeatureExtractor, limit: int = 16) -> list[np.ndarray]:
    """Up to `limit` of the model's own normal loops (its training files, found through `training_summary.json`
    when its corpus is a local folder), to calibrate int8 graphs on; empty when none can be found."""
    from ..audio.decoding import decode_file
    from ..models.model_io import read_json

    summary = read_json(Path(model_dir) / "training_summary.json") if Path(model_dir).is_dir() else None
    if not summary or not Path(str(summary.get("corpus", ""))).is_dir():
        return []
    corpus, loops = Path(summary["corpus"]), []
    for name in [*summary.get("train_files", []), *summary.get("heldout_files", [])]:
        path = next((p for p in (corpus / name, *corpus.glob(f"*/{name}")) if p.is_file()), None)
        decoded = decode_file(path, extractor.sampling_rate, max_seconds=60.0) if path else None
        loops += [decoded.waveform] if decoded and decoded.ok else []  # changed on disk since training: left out
        if len(loops) == limit:
            break
    return loops


def add_onnx_to_repo(model_dir: str | Path, repo_dir: str | Path) -> list[str]:
    """Put the ONNX export of the detector in `model_dir` under `repo_dir/onnx/` (the Hub's ONNX convention): the
    one in `model_dir/onnx` when it was exported from this very model, else a fresh fp32 export. Returns the names
    of the files added, relative to `repo_dir`."""
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
