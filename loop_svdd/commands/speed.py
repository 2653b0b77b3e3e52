"""`loop-svdd speed`: the alias of `loop-svdd benchmark speed` (naive transformers pipeline vs our batched path vs
the fast mode, side by side)."""

from __future__ import annotations

import argparse

from .benchmark import add_protocol_parser


def register(sub: argparse._SubParsersAction) -> None:
    add_protocol_parser(sub, "speed", "speed", help="throughput benchmark (loops/s, ratios, encoder share, GFLOP/s)")
