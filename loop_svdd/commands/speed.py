"""`loop-svdd speed`: naive transformers pipeline vs our batched path vs the fast mode, side by side."""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--loops", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--precision",
        choices=("int8", "bf16", "fp32"),
        default=None,
        help="fast mode (default: int8 on CPU, bf16 on GPU)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, metavar="OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..speed import format_result, run_speed

    if args.loops < 2 or args.batch_size < 1:
        raise CLIError("--loops must be >= 2 and --batch-size >= 1")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CLIError("--device cuda: no CUDA device is available")
    result = run_speed(args.encoder, args.loops, args.batch_size, args.precision, args.device)
    print(format_result(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0
