"""`loop-svdd benchmark --protocol defects`: its arguments (light to import, so `--help` stays fast; the protocol
itself is :mod:`loop_svdd.bench.defects`)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    """The `loop-svdd benchmark --protocol defects` options."""
    g = parser.add_argument_group("defects protocol (--protocol defects)")
    g.add_argument(
        "--corpus", help="a loop corpus (default: the command builds its own, 80 FluidR3_GM bass loops, seed 7)"
    )
    g.add_argument("--normal", action="append", default=[], help="COLUMN=VALUE filter of the normal loops")
    g.add_argument("--encoder", default="default", help="encoder of the detector, as for `loop-svdd train`")
    g.add_argument("--n-bank", type=int, default=40, help="normal loops to train on (default 40)")
    g.add_argument(
        "--n-test",
        type=int,
        default=30,
        help="held-out loops, each defective once per kind, levels cycled (default 30)",
    )
    g.add_argument("--seed", type=int, default=0, help="which loops, beats and defects (default 0)")
    g.add_argument("--workdir", help="where the trained detector is kept (default: a temporary folder)")
