"""The contaminated-pack benchmark: can a detector find the strays of an unlabelled pack?

Protocol (on a folder of embeddings, ``<features>.npy`` + ``index.csv`` as in :mod:`loop_svdd.bench.one_vs_rest`): for
each folder F, contamination fraction c and seed s, the pack is every row of F plus
``m = max(1, round(c * |F| / (1 - c)))`` rows drawn from the other folders with
``numpy.random.default_rng(s)`` (so strays are a share c of the pack). The detector sees the pack without labels
and ranks all of it; strays are label 1. Metrics: AUROC and precision at k = m (the share of strays among the m
highest scores), averaged over folders and seeds. Scoring modes:

- ``in_sample``: fit on the whole pack, score the whole pack (``train`` then ``score`` on one folder);
- ``cross_fitted``: K-fold cross-fitting, every row scored by a detector that never saw it;
- ``cross_fitted_robust``: cross-fitting with trimming (:func:`loop_svdd.curation.scoring.robust_cross_fit`).

The ``curate`` row is exactly what ``loop-svdd curate`` ranks with (:func:`loop_svdd.curation.ranking.rank_pack`:
the shipped members, cross-fitted with trimming, combined, averaged over fold seeds) and its verdicts, at
curate's defaults (``--contamination auto``, so trimming "auto" whatever ``--trim`` says); it is computed once per
pack whatever ``--modes`` says.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..curation.ranking import rank_pack
from ..curation.scoring import (
    DEFAULT_FOLDS,
    DEFAULT_TRIM,
    cross_fit_scores,
    detector_factory,
    in_sample_scores,
    robust_cross_fit,
)
from ..curation.verdicts import DEFAULT_RULE, RULES, stray_verdicts, verdict_metrics
from ..metrics import compute_anomaly_metrics
from .one_vs_rest import EmbeddingSet, add_embedding_options, check_embedding_options, load_embedding_set, run_settings
from .report import BenchmarkError, BenchResult

MODES = ("in_sample", "cross_fitted", "cross_fitted_robust")
CURATE_ROW = "curate"  # the detector name of what `curate` ships
FOLD_SEED_STRIDE = 1000  # --fold-seeds: fold seed j of a pack of seed s is s + 1000 j
VERDICT_KEYS = ("verdict_precision", "verdict_recall", "verdict_f1")


def n_strays(pack_size: int, fraction: float) -> int:
    """How many stray rows make them a share ``fraction`` of a pack with ``pack_size`` own rows (at least one,
    except for a clean pack, ``fraction`` 0)."""
    if fraction <= 0.0:
        return 0
    return max(1, int(round(fraction * pack_size / (1.0 - fraction))))


def make_pack(data: EmbeddingSet, folder: str, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels): every row of ``folder`` (label 0) plus strays from the other folders (label 1)."""
    members = np.flatnonzero(data.folders == folder)
    others = np.flatnonzero(data.folders != folder)
    strays = np.random.default_rng(seed).choice(others, size=n_strays(len(members), fraction), replace=False)
    rows = np.concatenate([members, np.sort(strays)])
    return rows, np.concatenate([np.zeros(len(members), int), np.ones(len(strays), int)])


def precision_at_k(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of true strays among the k highest scores, k = number of strays."""
    k = int(labels.sum())
    return float(labels[np.argsort(-scores, kind="stable")[:k]].mean())


def pack_scores(
    X: np.ndarray, detector: str, modes: Sequence[str], seed: int, folds: int, trim: float | str, **kw
) -> dict[str, np.ndarray]:
    """Scores of every row of a pack under each scoring mode (cross-fitted = the robust variant's first pass,
    so both come from one call)."""
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODES)}")
    if detector == CURATE_ROW:
        return {CURATE_ROW: rank_pack(X, folds=folds, trim="auto", seed=seed, **kw).scores}  # curate's defaults
    factory = detector_factory(detector, **kw)
    out = {}
    if "in_sample" in modes:
        out["in_sample"] = in_sample_scores(X, factory, seed)
    if "cross_fitted_robust" in modes:
        robust = robust_cross_fit(X, factory, folds, trim, seed)
        out["cross_fitted"], out["cross_fitted_robust"] = robust.first_pass, robust.scores
    elif "cross_fitted" in modes:
        out["cross_fitted"] = cross_fit_scores(X, factory, folds, seed)
    return {m: out[m] for m in modes}


@dataclass
class PackRecord:
    fraction: float
    detector: str
    mode: str
    folder: str
    seed: int
    auroc: float
    precision_at_k: float
    seconds: float
    verdict_precision: float = float("nan")
    verdict_recall: float = float("nan")
    verdict_f1: float = float("nan")
    fold_seed: int = 0  # which of --fold-seeds scored the pack (its folds and detector seeds differ)


def run_contaminated(
    data: EmbeddingSet,
    detectors: Sequence[str],
    fractions: Sequence[float],
    seeds: Sequence[int],
    modes: Sequence[str] = MODES,
    folds: int = DEFAULT_FOLDS,
    trim: float | str = DEFAULT_TRIM,
    detector_kwargs: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    on_record: Callable[[PackRecord], None] | None = None,
    verdict_rule: str = DEFAULT_RULE,
    verdict_param: float | None = None,
    fold_seeds: int = 1,
) -> list[PackRecord]:
    """Every (fraction, detector, mode, folder, seed) pack, scored and measured (verdicts by ``verdict_rule``,
    :mod:`loop_svdd.curation.verdicts`), ``fold_seeds`` times: the same pack with other folds each time."""
    from tqdm.auto import tqdm

    jobs = [
        (c, d, f, s, j)
        for c in fractions
        for d in detectors
        for s in seeds
        for f in data.classes
        for j in range(fold_seeds)
    ]
    records = []
    for c, d, f, s, j in tqdm(jobs, desc="contaminated", disable=not progress):
        rows, labels = make_pack(data, f, c, s)
        start = time.perf_counter()
        options = (detector_kwargs or {}).get(d, {})
        by_mode = pack_scores(data.embeddings[rows], d, modes, s + FOLD_SEED_STRIDE * j, folds, trim, **options)
        seconds = (time.perf_counter() - start) / len(by_mode)
        for m, scores in by_mode.items():
            auroc = compute_anomaly_metrics(scores, labels)["auroc"]
            verdicts = verdict_metrics(stray_verdicts(scores, verdict_rule, verdict_param), labels)
            rec = PackRecord(c, d, m, f, s, float(auroc), precision_at_k(scores, labels), seconds, **verdicts)
            rec.fold_seed = j
            records.append(rec)
            if on_record is not None:
                on_record(rec)
    return records


def summarize_contaminated(records: Sequence[PackRecord], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"protocol": "contaminated", "results": {"0.05": {detector: {mode: {auroc, precision_at_k,
    verdict_precision, verdict_recall, verdict_f1}}}}}`` (means over folders and seeds)."""
    results: dict[str, Any] = {}
    for r in records:
        results.setdefault(f"{r.fraction:g}", {}).setdefault(r.detector, {}).setdefault(r.mode, []).append(r)
    for by_det in results.values():
        for by_mode in by_det.values():
            for mode, rs in by_mode.items():
                by_mode[mode] = {
                    "auroc": float(np.mean([r.auroc for r in rs])),
                    "precision_at_k": float(np.mean([r.precision_at_k for r in rs])),
                    **{k: float(np.mean([getattr(r, k) for r in rs])) for k in VERDICT_KEYS},
                    "seconds": float(sum(r.seconds for r in rs)),
                    **fold_seed_ranges(rs),
                }
    out: dict[str, Any] = {"protocol": "contaminated", "results": results}
    if settings:
        out["settings"] = settings
    return out


def fold_seed_ranges(records: Sequence[PackRecord]) -> dict[str, float]:
    """Per pack (folder, seed), the range of its AUROC over fold seeds; their mean and maximum (0 with one)."""
    by_pack: dict[tuple[str, int], list[float]] = {}
    for r in records:
        by_pack.setdefault((r.folder, r.seed), []).append(r.auroc)
    ranges = [max(a) - min(a) for a in by_pack.values()]
    return {"fold_seed_range_mean": float(np.mean(ranges)), "fold_seed_range_max": float(np.max(ranges))}


def contaminated_markdown(summary: dict[str, Any]) -> str:
    """One table per contamination fraction: AUROC / precision at k / verdict F1 per detector and mode."""
    lines = []
    for fraction, by_det in summary["results"].items():
        modes = list(dict.fromkeys(m for d in by_det.values() for m in d))
        lines += [f"Contamination {fraction}: AUROC / precision at k / verdict F1 (precision, recall)", ""]
        lines += ["| detector | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
        for det, by_mode in by_det.items():
            cells = [_cell(by_mode[m]) if m in by_mode else "-" for m in modes]
            lines.append(f"| {det} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(m: dict[str, float]) -> str:
    spread = f"; fold seeds' AUROC range {m['fold_seed_range_max']:.3f} max" if m["fold_seed_range_max"] else ""
    return (
        f"{m['auroc']:.4f} / {m['precision_at_k']:.3f} / {m['verdict_f1']:.3f} "
        f"({m['verdict_precision']:.3f}, {m['verdict_recall']:.3f}){spread}"
    )


# -- the protocol: `loop-svdd benchmark contaminated` ------------------------------------------------------------
NAME = "contaminated"
DESCRIPTION = (
    "For each folder F, stray fraction c and seed s: a pack of every row of F plus rows of the other folders "
    "(a share c of the pack), ranked without labels. Reports AUROC, precision at k and the stray verdicts' "
    "precision / recall / F1 per detector and scoring mode."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_embedding_options(parser)
    parser.add_argument(
        "--contamination",
        type=float,
        nargs="+",
        default=[0.02, 0.05, 0.1],
        help="stray fractions of each pack (default: 0.02 0.05 0.1)",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds (default: 5)")
    parser.add_argument(
        "--trim", default="0.1", help="fraction trimmed by the robust variant, or 'auto' (default: 0.1)"
    )
    parser.add_argument(
        "--verdict-rule", default=None, help="stray rule: fence, ratio, bh or mixture (default: shipped)"
    )
    parser.add_argument("--verdict-param", type=float, default=None, help="its parameter (default: the shipped one)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), help=f"scoring modes (default: {' '.join(MODES)})")
    parser.add_argument(
        "--fold-seeds",
        type=int,
        default=1,
        help="score every pack this many times with other folds; reports each pack's AUROC range (default: 1)",
    )
    parser.add_argument(
        "--folders", nargs="+", default=None, help="only the packs of these folders (default: every folder)"
    )


class _Subset(EmbeddingSet):
    """An embedding set whose packs are only those of some folders (strays still come from every folder)."""

    def __init__(self, data: EmbeddingSet, folders: Sequence[str]) -> None:
        super().__init__(data.embeddings, data.folders)
        self.only = sorted(folders)

    @property
    def classes(self) -> list[str]:
        return self.only


def only_folders(data: EmbeddingSet, folders: Sequence[str]) -> EmbeddingSet:
    """``data`` with packs made of ``folders`` only (a one-line error for a folder it does not have)."""
    missing = sorted(set(folders) - set(data.classes))
    if missing:
        raise BenchmarkError(f"--folders: no folder {', '.join(map(repr, missing))}; have {', '.join(data.classes)}")
    return _Subset(data, folders)


def checked_options(args: argparse.Namespace) -> tuple[float | str, str]:
    """(trim, verdict rule) of the command line, after refusing values the protocol cannot run."""
    if any(not 0.0 < c < 0.5 for c in args.contamination):
        raise BenchmarkError("--contamination fractions must be in (0, 0.5)")
    if args.folds < 2 or set(args.modes) - set(MODES) or args.fold_seeds < 1:
        raise BenchmarkError(f"--folds must be >= 2, --fold-seeds >= 1 and --modes among {', '.join(MODES)}")
    trim = args.trim if args.trim == "auto" else float(args.trim)
    rule = args.verdict_rule or DEFAULT_RULE
    if rule not in RULES:
        raise BenchmarkError(f"--verdict-rule must be one of {', '.join(RULES)}")
    return trim, rule


def run(args: argparse.Namespace) -> BenchResult:
    check_embedding_options(args, extra=(CURATE_ROW,))
    trim, rule = checked_options(args)
    data = load_embedding_set(args.embeddings, args.features)
    data = only_folders(data, args.folders) if args.folders else data
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
        fold_seeds=args.fold_seeds,
    )
    elapsed = time.perf_counter() - start
    settings = run_settings(
        args, elapsed, folds=args.folds, trim=trim, verdict_rule=rule, verdict_param=args.verdict_param
    )
    settings.update(fold_seeds=args.fold_seeds, folders=args.folders)
    summary = summarize_contaminated(records, settings)
    return BenchResult(NAME, settings, contaminated_markdown(summary), summary, seconds=elapsed)
