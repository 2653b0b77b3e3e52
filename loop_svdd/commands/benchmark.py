"""``loop-svdd benchmark``: the one-vs-rest benchmark of every detector on a folder of embeddings."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..cli import CLIError

DEFAULT_DETECTORS = ("deep_svdd", "deep_svdd_residual", "isolation_forest", "pca", "knn", "ocsvm")
PROTOCOLS = ("one-vs-rest", "contaminated", "defects", "duplicates")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "benchmark",
        help="benchmark the detectors: one-vs-rest, contaminated packs, injected defects, near-duplicates",
        description=(
            "For each folder F and seed s: train on 70% of F (shuffled with numpy.random.default_rng(s)), "
            "test on the rest of F (normal) plus every other folder (anomalies). Reports AUROC, AUPRC and "
            "pAUC (FPR <= 0.1) averaged over folders and seeds."
        ),
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="one-vs-rest",
        help="one-vs-rest (embeddings), contaminated (packs with strays, embeddings), defects (a corpus) or "
        "duplicates (copies injected into packs of real audio, --audio)",
    )
    p.add_argument("--embeddings", help="folder with <features>.npy and index.csv (row,file,folder)")
    p.add_argument("--features", default="nff", help="which array to read: <features>.npy (default: nff)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="split seeds (default: 0-4)")
    p.add_argument("--detectors", nargs="+", default=list(DEFAULT_DETECTORS), help="detectors to run")
    p.add_argument("--json", required=True, help="where to write the results JSON")
    p.add_argument("--markdown", help="also write a markdown table here")
    p.add_argument("--plots", help="folder for ROC curves and score histograms (PNG)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the heads are tiny and extra threads only contend)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    from .benchmark_contaminated import add_arguments as add_contaminated_arguments
    from .benchmark_defects import add_arguments as add_defect_arguments
    from .benchmark_duplicates import add_arguments as add_duplicate_arguments

    add_defect_arguments(p)
    add_duplicate_arguments(p)
    add_contaminated_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.one_vs_rest import (
        BenchmarkDataError,
        load_embedding_set,
        run_benchmark,
        save_plots,
        summarize,
        to_markdown,
    )
    from ..detectors import DETECTORS

    if args.protocol == "defects":
        from ..bench.defects import run_cli

        return run_cli(args)
    if args.protocol == "duplicates":
        from .benchmark_duplicates import run as run_duplicates

        return run_duplicates(args)
    if not args.embeddings:
        raise CLIError("--embeddings is required for the one-vs-rest protocol")
    if args.threads < 1:
        raise CLIError("--threads must be >= 1")
    import torch

    torch.set_num_threads(args.threads)
    unknown = [d for d in args.detectors if d not in DETECTORS]
    if unknown:
        raise CLIError(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(DETECTORS)}")
    if args.protocol == "contaminated":
        from .benchmark_contaminated import run as run_contaminated

        return run_contaminated(args)
    try:
        data = load_embedding_set(args.embeddings, args.features)
    except BenchmarkDataError as err:
        raise CLIError(str(err)) from None
    print(
        f"{len(data.embeddings)} embeddings of dim {data.embeddings.shape[1]} in {len(data.classes)} folders; "
        f"detectors: {', '.join(args.detectors)}; seeds: {' '.join(map(str, args.seeds))}"
    )
    start = time.perf_counter()
    try:
        records = run_benchmark(data, args.detectors, args.seeds, progress=not args.no_progress)
    except BenchmarkDataError as err:
        raise CLIError(str(err)) from None
    elapsed = time.perf_counter() - start
    protocol = "one-vs-rest, 70% of the normal folder for training (floor), rest + other folders for test"
    summary = summarize(records, run_settings(args, elapsed, protocol=protocol))
    if args.plots:
        save_plots(records, args.plots)
    title = f"# Benchmark: {args.embeddings} ({args.features}), seeds {' '.join(map(str, args.seeds))}\n\n"
    report(args, summary, to_markdown(summary), elapsed, title)
    return 0


def run_settings(args: argparse.Namespace, elapsed: float, **extra: Any) -> dict[str, Any]:
    """What every embeddings protocol records next to its results."""
    common = {"embeddings": str(args.embeddings), "features": args.features, "seeds": list(args.seeds)}
    return {**common, **extra, "seconds": round(elapsed, 1)}


def report(args: argparse.Namespace, summary: dict[str, Any], table: str, elapsed: float, title: str = "") -> None:
    """Write a run's results JSON (and markdown table, with `--markdown`) and print the table."""
    from ..bench.one_vs_rest import write_json

    write_json(summary, args.json)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(title + table)
    print(table)
    print(f"done in {elapsed:.1f} s; results in {args.json}")
