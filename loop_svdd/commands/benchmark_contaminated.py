"""`loop-svdd benchmark --protocol contaminated`: the arguments and the run of the contaminated-pack protocol
(hooked into `commands/benchmark.py`; the protocol itself is :mod:`loop_svdd.bench.contaminated`)."""

from __future__ import annotations

import argparse
import time

from ..cli import CLIError


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--protocol contaminated")
    g.add_argument(
        "--contamination",
        type=float,
        nargs="+",
        default=[0.02, 0.05, 0.1],
        help="stray fractions of each pack (default: 0.02 0.05 0.1)",
    )
    g.add_argument("--folds", type=int, default=5, help="cross-fitting folds (default: 5)")
    g.add_argument("--trim", default="0.1", help="fraction trimmed by the robust variant, or 'auto' (default: 0.1)")
    g.add_argument("--verdict-rule", default=None, help="stray rule: fence, ratio, bh or mixture (default: shipped)")
    g.add_argument("--verdict-param", type=float, default=None, help="its parameter (default: the shipped one)")
    g.add_argument(
        "--modes",
        nargs="+",
        default=["in_sample", "cross_fitted", "cross_fitted_robust"],
        help="scoring modes",
    )


def run(args: argparse.Namespace) -> int:
    from ..bench.contaminated import MODES, contaminated_markdown, run_contaminated, summarize_contaminated
    from ..bench.one_vs_rest import BenchmarkDataError, load_embedding_set
    from ..curation.verdicts import DEFAULT_RULE, RULES
    from .benchmark import report, run_settings

    if any(not 0.0 < c < 0.5 for c in args.contamination):
        raise CLIError("--contamination fractions must be in (0, 0.5)")
    if args.folds < 2 or set(args.modes) - set(MODES):
        raise CLIError(f"--folds must be >= 2 and --modes among {', '.join(MODES)}")
    trim = args.trim if args.trim == "auto" else float(args.trim)
    rule = args.verdict_rule or DEFAULT_RULE
    if rule not in RULES:
        raise CLIError(f"--verdict-rule must be one of {', '.join(RULES)}")
    try:
        data = load_embedding_set(args.embeddings, args.features)
    except BenchmarkDataError as err:
        raise CLIError(str(err)) from None
    start = time.perf_counter()
    records = run_contaminated(
        data,
        args.detectors,
        args.contamination,
        args.seeds,
        args.modes,
        args.folds,
        trim,
        progress=not args.no_progress,
        verdict_rule=rule,
        verdict_param=args.verdict_param,
    )
    elapsed = time.perf_counter() - start
    summary = summarize_contaminated(
        records,
        run_settings(args, elapsed, folds=args.folds, trim=trim, verdict_rule=rule, verdict_param=args.verdict_param),
    )
    report(args, summary, contaminated_markdown(summary), elapsed)
    return 0
