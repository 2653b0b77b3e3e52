"""`loop-svdd speed`: naive transformers pipeline vs our batched path vs the fast mode, side by side."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ..cli import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "speed",
        help="throughput benchmark (loops/s, ratios, encoder share, GFLOP/s)",
        description="Measures, in one run on the same loops of mixed lengths (1-30 s), the naive "
        "transformers pipeline, our batched scoring path (fp32) and the fast mode.",
    )
    p.add_argument("--encoder", choices=("tiny", "base"), default="base")
    p.add_argument("--loops", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--precision",
        choices=("int8", "bf16", "fp32"),
        default=None,
        help="fast mode (default: int8 on CPU, bf16 on GPU; int8 is CPU-only)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--no-backends",
        dest="backends",
        action="store_false",
        help="skip the rows per backend and precision (torch, onnxruntime, openvino; fp32 and int8)",
    )
    p.add_argument(
        "--front-end-only",
        action="store_true",
        help="time only the log-mel front end against ClapFeatureExtractor (no encoder)",
    )
    p.add_argument("--reps", type=int, default=2, help="interleaved repetitions of the backend rows (default 2)")
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="OUT",
        help="write every figure as JSON to OUT, or print it on stdout (the tables then go to stderr)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check(args)
    out = sys.stderr if args.json == "-" else sys.stdout

    def say(line: str) -> None:
        print(line, file=out)

    if args.front_end_only:
        from ..bench.speed import format_front_end, run_front_end_speed

        result = run_front_end_speed(args.loops, reps=args.reps)
        say(format_front_end(result))
    else:
        result = measure(args, say)
    if args.json == "-":
        print(json.dumps(result, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def check(args: argparse.Namespace) -> None:
    if args.loops < 2 or args.batch_size < 1:
        raise CLIError("--loops must be >= 2 and --batch-size >= 1")
    if args.reps < 1:
        raise CLIError("--reps must be >= 1")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CLIError("--device cuda: no CUDA device is available")
        if args.precision == "int8":
            raise CLIError("--precision int8 is CPU-only (dynamic int8 Linear layers); on cuda use bf16 or fp32")


def measure(args: argparse.Namespace, say: Callable[[str], None]) -> dict:
    """The full comparison: pipelines, front end, and one row per backend and precision."""
    from ..bench.speed import format_backends, format_result, run_speed

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
    say(format_result(result))
    say(format_backends(result))
    if args.backends and not args.device.startswith("cuda"):
        from ..engine.backends import record_speed

        say(f"measured speeds recorded for --backend auto: {record_speed(_by_precision(result['backends']))}")
    return result


def _by_precision(rows: dict[str, dict]) -> dict[str, dict[str, float]]:
    """`{"onnxruntime-int8": {"loops_per_s": ..}}` -> `{"int8": {"onnxruntime": ..}}` (what `auto` reads)."""
    out: dict[str, dict[str, float]] = {}
    for name, row in rows.items():
        backend, precision = name.rsplit("-", 1)
        out.setdefault(precision, {})[backend] = row["loops_per_s"]
    return out
