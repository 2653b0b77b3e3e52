"""Throughput benchmark: the naive transformers pipeline vs our batched scoring path, and the fast mode.

All three do the same work on the same loops: every 10 s window of every loop goes through the front end and
the HTS-AT encoder, and the head scores the clip. `naive` is what a user writes from the transformers docs
(`ClapFeatureExtractor` then `ClapAudioModel`, one window at a time, fp32: :mod:`loop_svdd.engine.reference`);
`ours` is `loop-svdd score`'s batched path (the engine); `fast` is the same with the precision mode (dynamic int8
Linear layers on CPU, bf16 on GPU).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from ..engine.embedding import embed_waveforms
from ..engine.precision import apply_precision
from ..engine.reference import clap_front_end, encoder_flops_per_window, run_naive, timed_encoder, window_slices
from ..engine.scoring import score_waveforms
from ..models.encoders import build_model
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.loop_svdd.svdd_head import init_center
from ..settings import SAMPLING_RATE
from .report import STDOUT, BenchmarkError, BenchResult, report_stream


def make_loops(
    n: int, seed: int = 0, min_s: float = 1.0, max_s: float = 30.0, sr: int = SAMPLING_RATE
) -> list[np.ndarray]:
    """`n` deterministic test loops of mixed lengths: plucked harmonic notes on a beat grid, plus noise."""
    rng = np.random.default_rng(seed)
    loops = []
    for _ in range(n):
        seconds = rng.uniform(min_s, max_s)
        t = np.arange(int(seconds * sr)) / sr
        beat = 60.0 / rng.uniform(70, 180)
        f0 = 55.0 * 2 ** (rng.integers(0, 36) / 12)
        env = np.exp(-rng.uniform(2, 10) * (t % beat))
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
        loops.append((0.3 * env * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32))
    return loops


def run_batched(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    loops: list[np.ndarray],
    batch_size: int,
    autocast: torch.dtype | None = None,
) -> tuple[np.ndarray, float, float]:
    """Our batched path; returns (scores, seconds, seconds inside the encoder)."""
    totals: dict[str, float] = {}
    device_type = model.device.type
    with timed_encoder(model, totals), torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
        start = time.perf_counter()
        results = score_waveforms(model, extractor, loops, extractor.sampling_rate, batch_size=batch_size)
        elapsed = time.perf_counter() - start
    return np.array([r.score for r in results]), elapsed, totals.get("encoder_s", 0.0)


def time_front_ends(
    extractor: LoopSVDDFeatureExtractor, clap_extractor: Any, loops: list[np.ndarray], reps: int = 3
) -> dict[str, float]:
    """`ClapFeatureExtractor` (one window at a time, as transformers' docs do) vs our batched front end on every
    10 s window of `loops`, interleaved: each repetition runs both, so load on a shared machine falls on both alike.
    Wall-time ratio (`front_end_speedup`) and the less load-sensitive process-CPU-time ratio."""
    windows = [w for ws in window_slices(extractor, loops) for w in ws]
    wall = {"ref": 0.0, "ours": 0.0}
    cpu = {"ref": 0.0, "ours": 0.0}
    for _ in range(reps):
        for name in ("ref", "ours"):
            start, start_cpu = time.perf_counter(), time.process_time()
            if name == "ref":
                ref = [
                    clap_extractor(w, sampling_rate=SAMPLING_RATE, return_tensors="np")["input_features"][0, 0]
                    for w in windows
                ]
            else:
                ours = extractor(loops, sampling_rate=extractor.sampling_rate)["input_features"]
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
    diff = np.abs(ours[:, 0].numpy() - np.stack(ref))
    return {
        "front_end_speedup": wall["ref"] / wall["ours"],
        "front_end_cpu_speedup": cpu["ref"] / cpu["ours"],
        "front_end_max_abs_diff": float(diff.max()),
        "front_end_mean_abs_diff": float(diff.mean()),
        "front_end_ref_s": wall["ref"] / reps,
        "front_end_ours_s": wall["ours"] / reps,
        "front_end_reps": reps,
    }


def run_front_end_speed(n_loops: int = 24, seed: int = 0, reps: int = 3) -> dict[str, Any]:
    """`loop-svdd speed --front-end-only`: the front-end comparison alone (no encoder)."""
    extractor = LoopSVDDFeatureExtractor()
    loops = make_loops(n_loops, seed)
    extractor(loops[:1], sampling_rate=extractor.sampling_rate)  # warm-up (filters, FFT plans)
    result = time_front_ends(extractor, clap_front_end(extractor), loops, reps)
    windows = sum(len(extractor.window_starts(len(x))) for x in loops)
    return {**result, "loops": n_loops, "windows": windows, "machine": machine()}


def machine() -> str:
    return f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def run_speed(
    encoder: str = "tiny",
    n_loops: int = 24,
    batch_size: int = 8,
    precision: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    log: Callable[[str], None] = print,
    backends: bool = False,
    reps: int = 2,
) -> dict[str, Any]:
    """The naive pipeline, ours and the fast mode on the same `n_loops` loops, the front ends, and the backend rows
    (PyTorch's alone unless `backends`; export backends on CPU only)."""
    if str(device).startswith("cuda") and precision == "int8":
        raise ValueError("int8 is CPU-only (dynamic int8 Linear layers); on a GPU use --precision bf16 or fp32")
    model, extractor = build_model(f"random-{encoder}")
    model = model.to(device).eval()
    on_gpu = model.device.type == "cuda"
    precision = precision or ("bf16" if on_gpu else "int8")
    loops = make_loops(n_loops, seed)
    n_windows = sum(len(extractor.window_starts(len(x))) for x in loops)
    clap = clap_front_end(extractor)
    log(f"{n_loops} loops, {n_windows} windows of 10 s; HTS-AT {encoder}, random weights; device {model.device}")
    centre_head(model, extractor, loops)
    run_batched(model, extractor, loops[:2], batch_size)  # warm-up (allocator, kernels)
    log("naive ...")
    naive = run_naive(model, loops, clap)
    log("ours ...")
    ours = run_batched(model, extractor, loops, batch_size)
    log(f"fast ({precision}) ...")
    fast_model = model if on_gpu else apply_precision(model, precision)
    autocast = {"bf16": torch.bfloat16}.get(precision) if on_gpu else None
    fast = run_batched(fast_model, extractor, loops, batch_size, autocast=autocast)
    flops = encoder_flops_per_window(model, extractor)
    result = {
        **pipeline_figures(naive, ours, fast, flops * n_windows),
        "fast_precision": precision,
        "encoder": encoder,
        "encoder_gflops_per_window": flops / 1e9,
        "loops": n_loops,
        "windows": n_windows,
        "batch_size": batch_size,
        "device": str(model.device),
        "machine": machine(),
    }
    result.update(time_front_ends(extractor, clap, loops))
    rows = torch_rows(precision, ours[0], ours[1], fast[0], fast[1], n_loops)
    result.update({"backends": rows, **best_backends(rows)})
    if backends and not on_gpu:
        result.update(run_backend_speed(model, extractor, loops, batch_size, reps, seed, log))
    return result


def centre_head(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, loops: list[np.ndarray]) -> None:
    """Centre the (untrained) head on these loops' fp32 latents, as Deep SVDD's centre initialisation would: scores
    then measure distance from the typical loop, like a trained model's, and the ranking is meaningful."""
    with torch.inference_mode():
        emb = embed_waveforms(model, extractor, loops, extractor.sampling_rate)[0]
        model.set_svdd_state(center=init_center(model.score_embeddings(emb)[1]))


def pipeline_figures(
    naive: tuple[np.ndarray, float],
    ours: tuple[np.ndarray, float, float],
    fast: tuple[np.ndarray, float, float],
    flops: float,
) -> dict[str, float]:
    """Loops/s and ratios of the three pipelines ((scores, seconds[, encoder seconds]) each), the encoder's share
    of our time and its GFLOP/s (`flops`: of every window), and how far naive and ours disagree."""
    (naive_scores, naive_s), (ours_scores, ours_s, enc_s), (fast_scores, fast_s, _) = naive, ours, fast
    n_loops = len(naive_scores)
    return {
        "naive_loops_per_s": n_loops / naive_s,
        "ours_loops_per_s": n_loops / ours_s,
        "speedup": naive_s / ours_s,
        "fast_loops_per_s": n_loops / fast_s,
        "fast_speedup": naive_s / fast_s,
        "fast_spearman": float(spearmanr(ours_scores, fast_scores).statistic),
        "encoder_share": enc_s / ours_s,
        "encoder_gflops_per_s": flops / enc_s / 1e9,
        "naive_vs_ours_score_max_rel_diff": float(np.max(np.abs(naive_scores - ours_scores) / np.abs(naive_scores))),
    }


def torch_rows(
    precision: str, ours: np.ndarray, ours_s: float, fast: np.ndarray, fast_s: float, n_loops: int
) -> dict[str, dict[str, float]]:
    """The backend rows of the PyTorch runs above (`torch-fp32`, `torch-<precision>`), for `--no-backends`."""
    rows = {"torch-fp32": {"loops_per_s": n_loops / ours_s, "speedup": 1.0, "spearman": 1.0, "max_rel_diff": 0.0}}
    if precision != "fp32":
        rows[f"torch-{precision}"] = {
            "loops_per_s": n_loops / fast_s,
            "speedup": ours_s / fast_s,
            "spearman": float(spearmanr(ours, fast).statistic),
            "max_rel_diff": float(np.max(np.abs(fast - ours) / np.abs(ours))),
        }
    return rows


def format_result(r: dict[str, Any]) -> str:
    rows = [
        ("naive (ClapFeatureExtractor + ClapAudioModel, 1 window at a time, fp32)", r["naive_loops_per_s"], 1.0),
        ("ours (loop-svdd score batched path, fp32)", r["ours_loops_per_s"], r["speedup"]),
        (f"fast ({r['fast_precision']})", r["fast_loops_per_s"], r["fast_speedup"]),
    ]
    lines = [f"{'pipeline':<74} {'loops/s':>8} {'vs naive':>9}"]
    lines += [f"{name:<74} {lps:>8.3f} {ratio:>8.2f}x" for name, lps, ratio in rows]
    lines += [
        f"fast mode keeps the ranking: Spearman {r['fast_spearman']:.4f} with fp32 scores",
        f"share of our fp32 time inside the encoder forward: {r['encoder_share']:.1%}",
        f"encoder: {r['encoder_gflops_per_window']:.1f} GFLOPs per window, "
        f"{r['encoder_gflops_per_s']:.1f} GFLOP/s achieved",
        format_front_end(r),
        f"naive and ours agree: max relative score difference {r['naive_vs_ours_score_max_rel_diff']:.2g}",
        f"machine: {r['machine']}; {r['loops']} loops, {r['windows']} windows",
    ]
    return "\n".join(lines)


def format_front_end(r: dict[str, Any]) -> str:
    return (
        f"front end alone: {r['front_end_speedup']:.2f}x faster than ClapFeatureExtractor "
        f"({r['front_end_cpu_speedup']:.2f}x in CPU time; {r['front_end_reps']} interleaved repetitions), "
        f"max |diff| {r['front_end_max_abs_diff']:.3g} dB, mean {r['front_end_mean_abs_diff']:.2g} dB"
    )


# -- backends side by side (loop-svdd score --backend ...) ------------------------------------------------------
def backend_models(
    model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, workdir: Any, calibration: list[np.ndarray], log=print
) -> dict[str, Any]:
    """`{"<backend>-<precision>": model-like}`: PyTorch fp32 and int8, and every installed export backend at fp32
    and int8 (graphs exported into `workdir`, int8 calibrated on `calibration`)."""
    from pathlib import Path

    from ..engine.backends import BackendModel, installed
    from ..engine.graphs import FILES, export_model, onnx_to_openvino
    from ..engine.runners import OnnxRuntimeRunner, OpenVINORunner

    models: dict[str, Any] = {"torch-fp32": model, "torch-int8": apply_precision(model, "int8")}
    for name, fmt, runner in (("onnxruntime", "onnx", OnnxRuntimeRunner), ("openvino", "openvino", OpenVINORunner)):
        if not (installed(name) and installed("onnxruntime")):
            log(f"{name} is not installed: skipped")
            continue
        log(f"exporting to {fmt} (fp32 + int8) ...")
        folder = Path(workdir) / fmt
        if fmt == "openvino" and (Path(workdir) / "onnx").is_dir():  # the same graphs as onnxruntime's, converted
            manifest = onnx_to_openvino(model, extractor, Path(workdir) / "onnx", folder)
        else:
            manifest = export_model(model, extractor, folder, fmt, "int8", calibration)
        for precision, graph in manifest["graphs"].items():
            run = runner(folder / graph["file"], folder / FILES[fmt]["head"], precision)
            models[f"{name}-{precision}"] = BackendModel(model.config, run)
    return models


def time_backends(
    models: dict[str, Any], extractor: LoopSVDDFeatureExtractor, loops: list[np.ndarray], batch_size: int, reps: int
) -> dict[str, dict[str, float]]:
    """End-to-end loops/s of every backend (front end, encoder, pooling, head), interleaved: each repetition runs
    every backend once, so load on a shared machine falls on all of them alike. Speedups are vs PyTorch fp32."""
    seconds = dict.fromkeys(models, 0.0)
    scores: dict[str, np.ndarray] = {}
    for _ in range(reps):
        for name, m in models.items():
            start = time.perf_counter()
            results = score_waveforms(m, extractor, loops, extractor.sampling_rate, batch_size=batch_size)
            seconds[name] += time.perf_counter() - start
            scores[name] = np.array([r.score for r in results])
    ref = "torch-fp32"
    return {
        name: {
            "loops_per_s": reps * len(loops) / seconds[name],
            "speedup": seconds[ref] / seconds[name],
            "spearman": float(spearmanr(scores[ref], scores[name]).statistic),
            "max_rel_diff": float(np.max(np.abs(scores[name] - scores[ref]) / np.abs(scores[ref]))),
        }
        for name in models
    }


def best_backends(rows: dict[str, dict[str, float]], min_spearman: float = 0.99) -> dict[str, float]:
    """The fastest fp32 backend, and the fastest reduced-precision one among those keeping Spearman >= 0.99 (the
    fastest of all when none does; the fp32 rows when there is no reduced-precision row)."""
    fp32 = [r for name, r in rows.items() if name.endswith("-fp32")]
    fast = [r for name, r in rows.items() if not name.endswith("-fp32")] or fp32
    kept = [r for r in fast if r["spearman"] >= min_spearman] or fast
    best_fast = max(kept, key=lambda r: r["speedup"])
    return {
        "best_fp32_speedup": max(r["speedup"] for r in fp32),
        "best_fast_speedup": best_fast["speedup"],
        "best_fast_spearman": best_fast["spearman"],
    }


def run_backend_speed(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    loops: list[np.ndarray],
    batch_size: int,
    reps: int = 2,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """`{"backends": {...}, "best_fp32_speedup", "best_fast_speedup", "best_fast_spearman"}` for `loop-svdd speed`."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="loop-svdd-speed-") as tmp:
        models = backend_models(model, extractor, tmp, make_loops(8, seed + 1), log)
        log(f"backends, {reps} interleaved repetitions: {', '.join(models)} ...")
        rows = time_backends(models, extractor, loops, batch_size, reps)
    return {"backends": rows, **best_backends(rows)}


def format_backends(r: dict[str, Any]) -> str:
    lines = [f"{'backend':<20} {'loops/s':>8} {'vs torch fp32':>14} {'Spearman':>9} {'max rel diff':>13}"]
    for name, row in r["backends"].items():
        lines.append(
            f"{name:<20} {row['loops_per_s']:>8.3f} {row['speedup']:>13.2f}x {row['spearman']:>9.4f} "
            f"{row['max_rel_diff']:>13.2g}"
        )
    lines.append(
        f"best fp32 backend {r['best_fp32_speedup']:.2f}x PyTorch fp32; best reduced precision "
        f"{r['best_fast_speedup']:.2f}x at Spearman {r['best_fast_spearman']:.4f}"
    )
    return "\n".join(lines)


# -- the protocol: `loop-svdd benchmark speed` (and its alias `loop-svdd speed`) ----------------------------------
NAME = "speed"
DESCRIPTION = (
    "Measures, in one run on the same loops of mixed lengths (1-30 s), the naive transformers pipeline, our "
    "batched scoring path (fp32) and the fast mode."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", choices=("tiny", "base"), default="base", help="HTS-AT size (default: base)")
    parser.add_argument("--loops", type=int, default=24, help="test loops of 1-30 s (default: 24)")
    parser.add_argument("--batch-size", type=int, default=8, help="loops per batch of our path (default: 8)")
    parser.add_argument(
        "--precision",
        choices=("int8", "bf16", "fp32"),
        default=None,
        help="fast mode (default: int8 on CPU, bf16 on GPU; int8 is CPU-only)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--no-backends",
        dest="backends",
        action="store_false",
        help="skip the rows per backend and precision (torch, onnxruntime, openvino; fp32 and int8)",
    )
    parser.add_argument(
        "--front-end-only",
        action="store_true",
        help="time only the log-mel front end against ClapFeatureExtractor (no encoder)",
    )
    parser.add_argument("--reps", type=int, default=2, help="interleaved repetitions of the backend rows (default 2)")
    parser.add_argument(
        "--json",
        nargs="?",
        const=STDOUT,
        default=None,
        metavar="OUT",
        help="write every figure as JSON to OUT, or print it on stdout (the tables then go to stderr)",
    )


def check(args: argparse.Namespace) -> None:
    """Refuse sizes and devices the run cannot use, before any model is built."""
    if args.loops < 2 or args.batch_size < 1:
        raise BenchmarkError("--loops must be >= 2 and --batch-size >= 1")
    if args.reps < 1:
        raise BenchmarkError("--reps must be >= 1")
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BenchmarkError("--device cuda: no CUDA device is available")
        if args.precision == "int8":
            raise BenchmarkError("--precision int8 is CPU-only (dynamic int8 Linear layers); on cuda use bf16 or fp32")


def run(args: argparse.Namespace) -> BenchResult:
    """The front end alone (`--front-end-only`), or the pipelines and one row per backend and precision (recorded
    for `--backend auto` when measured on the CPU)."""
    check(args)
    out = report_stream(args.json)
    settings = {k: getattr(args, k) for k in ("encoder", "loops", "batch_size", "precision", "device", "reps")}
    if args.front_end_only:
        result = run_front_end_speed(args.loops, reps=args.reps)
        return BenchResult(NAME, settings, format_front_end(result), result)
    say = partial(print, file=out)
    result = run_speed(
        args.encoder,
        args.loops,
        args.batch_size,
        args.precision,
        args.device,
        log=say,
        backends=args.backends,
        reps=args.reps,
    )
    tables = [format_result(result), format_backends(result)]
    if args.backends and not args.device.startswith("cuda"):
        from ..engine.backends import record_speed

        tables.append(f"measured speeds recorded for --backend auto: {record_speed(by_precision(result['backends']))}")
    return BenchResult(NAME, settings, "\n".join(tables), result)


def by_precision(rows: dict[str, dict]) -> dict[str, dict[str, float]]:
    """`{"onnxruntime-int8": {"loops_per_s": ..}}` -> `{"int8": {"onnxruntime": ..}}` (what `auto` reads)."""
    out: dict[str, dict[str, float]] = {}
    for name, row in rows.items():
        backend, precision = name.rsplit("-", 1)
        out.setdefault(precision, {})[backend] = row["loops_per_s"]
    return out
