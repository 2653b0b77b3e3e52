"""`loop-svdd benchmark PROTOCOL [options]`: run one protocol of `loop_svdd.bench` and write its report.

Each protocol's parser is given its options on first use (`ProtocolParser`): the protocols import torch, and
building `loop-svdd --help` must not.
"""

from __future__ import annotations

import argparse
import sys

from ..bench import PROTOCOLS


class ProtocolParser(argparse.ArgumentParser):
    """The parser of one protocol, filled by the protocol's `add_arguments` when it is first used."""

    protocol = ""
    _filled = False

    def parse_known_args(self, args=None, namespace=None):
        self.fill()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.fill()
        return super().format_help()

    def fill(self) -> None:
        if self._filled:
            return
        from ..bench import protocol_module

        module = protocol_module(self.protocol)
        self.description = module.DESCRIPTION
        module.add_arguments(self)
        self._filled = True


def add_protocol_parser(sub: argparse._SubParsersAction, name: str, protocol: str, **kwargs) -> ProtocolParser:
    """`sub.add_parser(name, **kwargs)`, made the lazily filled parser of `protocol`, running it."""
    parser = sub.add_parser(name, **kwargs)
    parser.__class__ = ProtocolParser  # the same parser object; only its first parse or help differs
    parser.protocol = protocol
    parser.set_defaults(func=run, protocol=protocol)
    return parser


class DeprecatedProtocolFlag(argparse.Action):
    """`loop-svdd benchmark --protocol X ...` (the old form): the flag is dropped, so `X` is the protocol."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print("loop-svdd benchmark: --protocol is deprecated; write `loop-svdd benchmark PROTOCOL`", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "benchmark",
        help="benchmark the detectors and the pipeline: one-vs-rest, contaminated packs, injected defects, "
        "near-duplicates, speed, encoder transfer, ...",
        description="Run one benchmark protocol; `loop-svdd benchmark PROTOCOL --help` shows its options.",
    )
    p.add_argument(
        "--protocol",
        nargs=0,
        action=DeprecatedProtocolFlag,
        dest="_protocol_flag",
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    protocols = p.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    for name, summary in PROTOCOLS.items():
        add_protocol_parser(protocols, name, name, help=summary)


def run(args: argparse.Namespace) -> int:
    from ..bench import protocol_module
    from ..bench.report import write_report

    result = protocol_module(args.protocol).run(args)
    write_report(result, args.json, getattr(args, "markdown", None))
    return 0
