"""The ``loop-svdd`` command line. Each subcommand lives in ``loop_svdd/commands/<name>.py`` and exposes
``register(subparsers)`` which adds its parser and sets ``func`` (taking the parsed args, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .errors import LoopSVDDError

# Order shown in --help. A module listed here that does not exist (yet) is skipped.
COMMANDS = (
    "quickstart",
    "corpus",
    "train",
    "curate",
    "score",
    "evaluate",
    "benchmark",
    "embed",
    "push",
    "export",
    "space",
    "demo",
    "speed",
    "pretrain_encoder",
)


class CLIError(LoopSVDDError):
    """An error to report to the user as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loop-svdd", description="Learn what 'normal' sounds like in a collection of musical loops."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"loop_svdd.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on a command line
    hf_logging.set_verbosity_error()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LoopSVDDError as err:  # CLIError and every package error: one line, no traceback
        print(f"loop-svdd {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"loop-svdd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # `python -m loop_svdd.cli`: run the imported module's main, so the commands' CLIError is the one caught here
    from loop_svdd.cli import main as _main

    sys.exit(_main())
