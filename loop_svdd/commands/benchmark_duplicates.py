"""`loop-svdd benchmark --protocol duplicates`: copies injected into packs of real audio, found again?
(hooked into `commands/benchmark.py`; the protocol itself is :mod:`loop_svdd.bench.duplicates`)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from ..cli import CLIError


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--protocol duplicates")
    g.add_argument("--audio", nargs="+", metavar="DIR", help="folders of real audio the packs are drawn from")
    g.add_argument("--work", help="where the packs are written (default: a temporary folder, removed after)")
    g.add_argument("--originals", type=int, default=60, help="distinct files per pack (default: 60)")
    g.add_argument("--copies", type=int, default=14, help="injected copies per pack (default: 14)")
    g.add_argument("--thresholds", type=float, nargs="+", help="match thresholds to report (default: the shipped one)")


def duplicates_markdown(summary: dict[str, Any]) -> str:
    """One row per threshold: pair precision, recall and recall per transformation."""
    kinds = list(next(iter(summary["results"].values()))["recall_by_transform"])
    lines = ["| threshold | precision | recall | pairs found / true | " + " | ".join(kinds) + " |"]
    lines.append("|---|---|---|---|" + "---|" * len(kinds))
    for t, r in summary["results"].items():
        cells = [f"{r['recall_by_transform'][k]:.2f}" for k in kinds]
        head = f"| {t} | {r['precision']:.3f} | {r['recall']:.3f} | {r['predicted_pairs']} / {r['true_pairs']} | "
        lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from ..bench.duplicates import run_duplicates
    from ..curation.duplicates import THRESHOLD
    from .benchmark import report

    if not args.audio:
        raise CLIError("--audio is required for the duplicates protocol (folders of real audio)")
    if args.originals < 2 or not 0 <= args.copies <= args.originals:
        raise CLIError("--originals must be >= 2 and --copies between 0 and --originals")
    thresholds = args.thresholds or [THRESHOLD]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dup-bench-") as tmp:
        try:
            summary = run_duplicates(
                args.audio, Path(args.work or tmp), args.seeds, thresholds, args.originals, args.copies
            )
        except (ValueError, OSError) as err:
            raise CLIError(str(err).strip().splitlines()[0]) from err
    elapsed = time.perf_counter() - start
    summary["settings"]["seconds"] = round(elapsed, 1)
    report(args, summary, duplicates_markdown(summary), elapsed)
    return 0
