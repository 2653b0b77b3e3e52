"""What every protocol returns (`BenchResult`) and the one writer of its report (JSON, markdown, printed table)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..errors import LoopSVDDError

STDOUT = "-"  # `--json -`: the JSON goes to stdout, the table to stderr


class BenchmarkError(LoopSVDDError, ValueError):
    """A benchmark that cannot run as asked (bad option values, missing inputs)."""


@dataclass
class BenchResult:
    """One protocol run: `payload` is the JSON written by `--json` (unchanged by the writer), `table` the markdown
    printed and written by `--markdown` (after `title`), `seconds` the wall time (None: no "done in" line)."""

    protocol: str
    settings: dict[str, Any]
    table: str
    payload: dict[str, Any] = field(repr=False)
    title: str = ""
    seconds: float | None = None


def add_report_options(parser: argparse.ArgumentParser, json_required: bool = True) -> None:
    """`--json` and `--markdown`, as every protocol names them."""
    parser.add_argument("--json", required=json_required, help="where to write the results JSON")
    parser.add_argument("--markdown", help="also write a markdown table here")


def report_stream(json_path: str | None) -> TextIO:
    """Where tables and progress lines go: stderr when the JSON itself goes to stdout."""
    return sys.stderr if json_path == STDOUT else sys.stdout


def write_json(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """`payload` as indented JSON at `path`, written atomically (parent folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def write_report(result: BenchResult, json_path: str | None = None, markdown_path: str | None = None) -> None:
    """Write `result.payload` to `json_path` (`-`: print it on stdout) and `result.title + result.table` to
    `markdown_path`; print the table (if any), and with `result.seconds` how long it took and where the results are."""
    out = report_stream(json_path)
    if json_path and json_path != STDOUT:
        write_json(result.payload, json_path)
    if markdown_path:
        Path(markdown_path).write_text(result.title + result.table)
    if result.table:
        print(result.table, file=out)
    if result.seconds is not None:
        print(f"done in {result.seconds:.1f} s; results in {json_path}", file=out)
    if json_path == STDOUT:
        print(json.dumps(result.payload, indent=2))
