"""Choose the stray rule by verdict precision / recall / F1 on contaminated packs, never on the packs reported.

Packs are those of `loop-svdd benchmark contaminated` (:func:`loop_svdd.bench.contaminated.make_pack`, scored by
`pack_scores`); per-pack scores are cached as .npz under `--cache` so rules are compared without refitting.
Two hold-outs:

- seeds: each rule's parameter is chosen by mean F1 on the packs of `--tune-seeds` and reported on the packs of
  `--report-seeds` (different strays, different folds);
- folders: on the report seeds, the parameter is chosen on half of the folders and reported on the other half
  (and the other way round): a pack's own folder never tunes its threshold.

    loop-svdd benchmark verdict-calibration --embeddings /work/shared/data/musicradar-bass-392 \
        --detectors deep_svdd knn --cache /tmp/verdict-cache
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..curation.verdicts import stray_verdicts, verdict_metrics
from .contaminated import CURATE_ROW, VERDICT_KEYS, make_pack, pack_scores, precision_at_k
from .one_vs_rest import EmbeddingSet, load_embedding_set
from .report import BenchmarkError, BenchResult, add_report_options

MOST_FALSE_PER_100 = 1.0  # the goal on clean packs: at most one false stray call per 100 loops
GRID = {
    "fence": [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0],
    "ratio": [1.2, 1.35, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0],
    "bh": [0.001, 0.01, 0.05, 0.1, 0.2, 0.3],
    "mixture": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5],
}


def pack_file(cache: Path, detector: str, fraction: float, seed: int, folder: str) -> Path:
    return cache / f"{detector}-{fraction:g}-{seed}-{folder.replace(' ', '_').replace('&', 'and')}.npz"


def detector_modes(detector: str, modes: list[str]) -> list[str]:
    """The scoring modes of ``detector``: the ``curate`` row has one, its own."""
    return [CURATE_ROW] if detector == CURATE_ROW else modes


def cached_pack(data: EmbeddingSet, args: argparse.Namespace, detector: str, fraction: float, seed: int, folder: str):
    """The pack's scores per mode and labels, from the cache (computed and stored on first use)."""
    path = pack_file(args.cache, detector, fraction, seed, folder)
    if not path.exists():
        rows, labels = make_pack(data, folder, fraction, seed)
        by_mode = pack_scores(data.embeddings[rows], detector, args.modes, seed, 5, 0.1)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, labels=labels, **by_mode)
        print(f"scored {path.name}", flush=True)
    return np.load(path)


def scored_packs(data: EmbeddingSet, args: argparse.Namespace, seeds: list[int]) -> list[dict]:
    """Every pack of `seeds` (scores per mode and labels), computed once and cached."""
    packs = []
    for detector in args.detectors:
        for c in args.fractions:
            for s in seeds:
                for f in data.classes:
                    z = cached_pack(data, args, detector, c, s, f)
                    packs += [
                        {
                            "detector": detector,
                            "mode": m,
                            "fraction": c,
                            "seed": s,
                            "folder": f,
                            "scores": z[m],
                            "labels": z["labels"],
                        }
                        for m in detector_modes(detector, args.modes)
                        if m in z
                    ]
    return packs


def pack_metrics(pack: dict, rule: str, param: float) -> dict[str, float]:
    """Verdict precision / recall / F1 of one pack, and its false calls per 100 loops."""
    stray = stray_verdicts(pack["scores"], rule, param)
    false_calls = float(100.0 * (stray & (pack["labels"] == 0)).sum() / len(stray))
    return {**verdict_metrics(stray, pack["labels"]), "false_per_100": false_calls}


def aggregate(ms: list[dict[str, float]], packs: list[dict]) -> dict[str, float]:
    """Means of per-pack metrics: precision / recall / F1 over contaminated packs (a clean pack has no stray to
    find), false calls per 100 loops over clean packs (0 when there are none)."""
    dirty = [m for m, p in zip(ms, packs, strict=True) if p["labels"].any()]
    clean = [m for m, p in zip(ms, packs, strict=True) if not p["labels"].any()]
    out = {k: float(np.mean([m[k] for m in dirty])) if dirty else float("nan") for k in VERDICT_KEYS}
    return {**out, "false_per_100": float(np.mean([m["false_per_100"] for m in clean])) if clean else 0.0}


def mean_metrics(packs: list[dict], rule: str, param: float) -> dict[str, float]:
    """:func:`aggregate` of the packs' :func:`pack_metrics` under ``rule`` at ``param``."""
    return aggregate([pack_metrics(p, rule, param) for p in packs], packs)


def best_param(packs: list[dict], rule: str, most_false: float = MOST_FALSE_PER_100) -> float:
    """The grid value with the best mean F1 among those that call at most `most_false` clean loops per 100
    (all values when none does); ties go to the middle of the grid."""
    metrics = {q: mean_metrics(packs, rule, q) for q in GRID[rule]}
    allowed = [q for q, m in metrics.items() if m["false_per_100"] <= most_false] or list(metrics)
    return max(allowed, key=lambda q: (metrics[q]["verdict_f1"], -abs(q - GRID[rule][2])))


def fmt(m: dict[str, float]) -> str:
    """F1 (precision, recall), then the false calls per 100 loops of clean packs when there are any."""
    p, r = m["verdict_precision"], m["verdict_recall"]
    f1 = "" if np.isnan(m["verdict_f1"]) else f"{m['verdict_f1']:.3f} ({p:.3f}, {r:.3f})"
    clean = f"{m['false_per_100']:.2f} false / 100" if m["false_per_100"] or np.isnan(m["verdict_f1"]) else ""
    return "; ".join(x for x in (f1, clean) if x)


def folder_held_out(held: list[dict], rule: str, folders: list[str], most_false: float) -> dict[str, float]:
    """Mean verdict metrics of each half of the folders, with the parameter chosen on the other half."""
    half = [set(folders[0::2]), set(folders[1::2])]
    out = []
    for a, b in ((0, 1), (1, 0)):
        qa = best_param([p for p in held if p["folder"] in half[a]], rule, most_false)
        out += [(p, qa) for p in held if p["folder"] in half[b]]
    return aggregate([pack_metrics(p, rule, qa) for p, qa in out], [p for p, _ in out])


def calibrate(
    tune: list[dict], held: list[dict], fractions: list[float], folders: list[str], most_false: float
) -> dict[str, Any]:
    """For each rule: the parameter chosen on the tune packs, its tuning F1, the verdict metrics per fraction on
    the reported packs, and the folder-held-out figure."""
    out = {}
    for rule in GRID:
        q = best_param(tune, rule, most_false)
        tuning = mean_metrics(tune, rule, q)
        out[rule] = {
            "param": q,
            "tuning_f1": tuning["verdict_f1"],
            "tuning_false_per_100": tuning["false_per_100"],
            "fractions": {f"{c:g}": mean_metrics([p for p in held if p["fraction"] == c], rule, q) for c in fractions},
            "folder_held_out": folder_held_out(held, rule, folders, most_false),
        }
    return out


def chosen_rule(rules: dict[str, Any], most_false: float) -> str:
    """The rule to ship, by the tuning packs alone: the best tuning F1 among the rules whose chosen parameter
    keeps clean packs' false calls within `most_false` per 100 (among all rules when none does)."""
    within = [r for r, v in rules.items() if v["tuning_false_per_100"] <= most_false] or list(rules)
    return max(within, key=lambda r: rules[r]["tuning_f1"])


def calibration_table(rules: dict[str, Any], fractions: list[float], most_false: float) -> list[str]:
    """The markdown lines of `calibrate`'s result."""
    lines = [
        "| rule | tuned on seeds | tuning F1; clean packs' false calls | "
        + " | ".join(f"{c:g}: F1 (P, R)" for c in fractions)
        + " | folder-held-out, all fractions |"
    ]
    lines.append("|---|---|---|" + "---|" * (len(fractions) + 1))
    for rule, r in rules.items():
        cells = [fmt(m) for m in r["fractions"].values()]
        lines.append(
            f"| {rule} | {r['param']:g} | {r['tuning_f1']:.3f}; {r['tuning_false_per_100']:.2f} / 100 | "
            + " | ".join(cells)
            + f" | {fmt(r['folder_held_out'])} |"
        )
    best = chosen_rule(rules, most_false)
    return [*lines, "", f"chosen on the tuning packs: {best} {rules[best]['param']:g}"]


def fixed_settings(held: list[dict], settings: list[str], fractions: list[float]) -> dict[str, dict]:
    """The verdict metrics per fraction of each ``RULE=PARAM`` of `settings` on the reported packs."""
    out = {}
    for setting in settings:
        rule, _, param = setting.partition("=")
        if rule not in GRID or not param:
            raise BenchmarkError(f"--compare: expected RULE=PARAM with RULE one of {', '.join(GRID)}, got {setting!r}")
        by_fraction = [(c, [p for p in held if p["fraction"] == c]) for c in fractions]
        out[setting] = {f"{c:g}": mean_metrics(packs, rule, float(param)) for c, packs in by_fraction}
    return out


def best_cutoff_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    """The verdict F1 of the best cutoff of this ranking, known only with the labels: what no rule can beat."""
    hits = np.cumsum(np.asarray(labels)[np.argsort(-np.asarray(scores), kind="stable")] > 0)
    called = np.arange(1, len(hits) + 1)
    return float(np.max(2 * hits / (called + hits[-1])))


def ranking_quality(held: list[dict], fractions: list[float]) -> dict[str, dict[str, float]]:
    """Per stray fraction (contaminated packs only), the means of the ranking's stray AUROC, precision at k and
    best-cutoff F1 (:func:`best_cutoff_f1`): how much of the verdicts' shortfall is the ranking's."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for c in fractions:
        packs = [p for p in held if p["fraction"] == c and p["labels"].any()]
        if packs:
            out[f"{c:g}"] = {
                "auroc": float(np.mean([roc_auc_score(p["labels"], p["scores"]) for p in packs])),
                "precision_at_k": float(np.mean([precision_at_k(p["scores"], p["labels"]) for p in packs])),
                "best_cutoff_f1": float(np.mean([best_cutoff_f1(p["scores"], p["labels"]) for p in packs])),
            }
    return out


def ranking_line(quality: dict[str, dict[str, float]]) -> str:
    """`ranking_quality` in one line."""
    cells = [
        f"{c}: {m['auroc']:.4f} / {m['precision_at_k']:.3f} / {m['best_cutoff_f1']:.3f}" for c, m in quality.items()
    ]
    return "the ranking (AUROC / precision at k / F1 of the best cutoff): " + " | ".join(cells)


# -- the protocol: `loop-svdd benchmark verdict-calibration` -----------------------------------------------------
NAME = "verdict-calibration"
DESCRIPTION = __doc__.splitlines()[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embeddings", required=True, help="folder with nff.npy and index.csv (row,file,folder)")
    parser.add_argument("--detectors", nargs="+", default=["deep_svdd"], help="detectors (default: deep_svdd)")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["cross_fitted", "cross_fitted_robust"],
        help="scoring modes (default: cross_fitted cross_fitted_robust)",
    )
    parser.add_argument(
        "--fractions", nargs="+", type=float, default=[0.02, 0.05, 0.1], help="stray fractions (default: 0.02 0.05 0.1)"
    )
    parser.add_argument(
        "--tune-seeds",
        nargs="+",
        type=int,
        default=[5, 6, 7, 8, 9],
        help="seeds the parameters are chosen on (default: 5-9)",
    )
    parser.add_argument(
        "--report-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="seeds reported (default: 0-4)"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="RULE=PARAM",
        help="also report these fixed settings on the reported packs (e.g. mixture=2, the rule before)",
    )
    parser.add_argument(
        "--most-false-per-100",
        type=float,
        default=MOST_FALSE_PER_100,
        help="a parameter may call at most this many loops in 100 of a clean pack (fraction 0) strays; 100: no "
        "limit (default: 1)",
    )
    parser.add_argument("--cache", type=Path, required=True, help="folder of the cached pack scores (.npz)")
    parser.add_argument("--score-only", action="store_true", help="fill the cache, print nothing else")
    add_report_options(parser, json_required=False)


def run(args: argparse.Namespace) -> BenchResult:
    args.cache.mkdir(parents=True, exist_ok=True)
    data = load_embedding_set(args.embeddings)
    held = scored_packs(data, args, args.report_seeds)
    tune = scored_packs(data, args, args.tune_seeds)
    settings = {k: getattr(args, k) for k in ("detectors", "modes", "fractions", "tune_seeds", "report_seeds")}
    settings["embeddings"] = str(args.embeddings)
    results: dict[str, Any] = {}
    blocks = []
    for detector in [] if args.score_only else args.detectors:
        for mode in detector_modes(detector, args.modes):
            sel = [p for p in tune if p["detector"] == detector and p["mode"] == mode]
            rep = [p for p in held if p["detector"] == detector and p["mode"] == mode]
            rules = calibrate(sel, rep, args.fractions, list(data.classes), args.most_false_per_100)
            results.setdefault(detector, {})[mode] = rules
            fixed = fixed_settings(rep, args.compare, args.fractions)
            results[detector][f"{mode} fixed"] = fixed
            quality = ranking_quality(rep, args.fractions)
            results[detector][f"{mode} ranking"] = quality
            head = (
                f"\n{detector} {mode}: {len(rep)} reported packs (seeds {args.report_seeds}), "
                f"{len(sel)} tuning packs (seeds {args.tune_seeds})\n\n"
            )
            blocks.append(head + "\n".join(calibration_table(rules, args.fractions, args.most_false_per_100)))
            blocks += [f"{name}, fixed: " + " | ".join(fmt(m) for m in by_c.values()) for name, by_c in fixed.items()]
            blocks.append(ranking_line(quality))
    payload = {"protocol": NAME, "results": results, "settings": settings}
    return BenchResult(NAME, settings, "\n".join(blocks), payload)
