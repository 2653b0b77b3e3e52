"""The ``loop-svdd`` command line. Each subcommand lives in ``loop_svdd/commands/<name>.py`` and exposes
``register(subparsers)`` which adds its parser and sets ``func`` (taking the parsed args, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable

from .commands.common import ENCODER_HELP, RANDOM_ENCODERS, CLIError
from .errors import LoopSVDDError

# CLIError, ENCODER_HELP and RANDOM_ENCODERS live in commands/common.py (commands never import this module); they
# stay importable from here for older callers.
__all__ = ["CLIError", "ENCODER_HELP", "RANDOM_ENCODERS", "build_parser", "main", "quiet_libraries", "show_defaults"]

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


def _default_text(default: object) -> str:
    if isinstance(default, (list, tuple)):
        return " ".join(map(str, default))
    return str(default)


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append "(default: X)" to the help of every option of `parser` and its subcommands that has a default
    and does not already name it (argparse's ArgumentDefaultsHelpFormatter would print "default: None" and
    skip options without help)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):
                show_defaults(subparser)
            continue
        default = action.default
        if action.help == argparse.SUPPRESS or default in (None, argparse.SUPPRESS) or isinstance(default, bool):
            continue
        if default == [] or "default" in (action.help or "").lower():
            continue
        note = f"(default: {_default_text(default)})".replace("%", "%%")
        action.help = f"{action.help} {note}" if action.help else note


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
    show_defaults(parser)
    return parser


def quiet_libraries(no_progress: bool) -> Callable[[], None]:
    """transformers' "Loading weights" bars and warnings are noise on a command line; with --no-progress the
    bars of `datasets` (map, filter, cast) go too. Returns what turns `datasets`' bars back on (for callers of
    `main` in a longer-lived process, such as the tests)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if not no_progress:
        return lambda: None
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    return datasets.enable_progress_bars if was_enabled else lambda: None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    restore = quiet_libraries(bool(getattr(args, "no_progress", False)))
    try:
        return int(args.func(args) or 0)
    except LoopSVDDError as err:  # CLIError and every package error: one line, no traceback
        print(f"loop-svdd {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"loop-svdd {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `loop-svdd ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        restore()


if __name__ == "__main__":
    # `python -m loop_svdd.cli` runs this file as __main__, a second copy of the module: call the package's own
    # copy, so that anything still importing from `loop_svdd.cli` shares its globals with the one that runs.
    from loop_svdd.cli import main as package_main

    sys.exit(package_main())
