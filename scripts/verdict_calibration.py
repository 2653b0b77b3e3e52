"""Choose the stray rule by verdict precision / recall / F1 on contaminated packs, never on the packs reported.

Packs are those of ``loop-svdd benchmark --protocol contaminated`` (``benchmark_contaminated.make_pack``, scored
by ``pack_scores``); per-pack scores are cached as .npz under ``--cache`` so rules are compared without refitting.
Two hold-outs:

- seeds: each rule's parameter is chosen by mean F1 on the packs of ``--tune-seeds`` and reported on the packs of
  ``--report-seeds`` (different strays, different folds);
- folders: on the report seeds, the parameter is chosen on half of the folders and reported on the other half
  (and the other way round): a pack's own folder never tunes its threshold.

    python scripts/verdict_calibration.py --embeddings /work/shared/data/musicradar-bass-392 \
        --detectors deep_svdd knn --cache /tmp/verdict-cache
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from loop_svdd.bench.contaminated import make_pack, pack_scores
from loop_svdd.bench.one_vs_rest import load_embedding_set
from loop_svdd.curation.verdicts import stray_verdicts, verdict_metrics

GRID = {
    "fence": [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0],
    "ratio": [1.2, 1.35, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0],
    "bh": [0.01, 0.05, 0.1, 0.2, 0.3],
    "mixture": [1.0, 1.5, 2.0, 2.5, 3.0],
}


def pack_file(cache: Path, detector: str, fraction: float, seed: int, folder: str) -> Path:
    return cache / f"{detector}-{fraction:g}-{seed}-{folder.replace(' ', '_').replace('&', 'and')}.npz"


def scored_packs(data, args, seeds) -> list[dict]:
    """Every pack of ``seeds`` (scores per mode and labels), computed once and cached."""
    packs = []
    for detector in args.detectors:
        for c in args.fractions:
            for s in seeds:
                for f in data.classes:
                    path = pack_file(args.cache, detector, c, s, f)
                    if not path.exists():
                        rows, labels = make_pack(data, f, c, s)
                        by_mode = pack_scores(data.embeddings[rows], detector, args.modes, s, 5, 0.1)
                        np.savez(path, labels=labels, **by_mode)
                        print(f"scored {path.name}", flush=True)
                    z = np.load(path)
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
                        for m in args.modes
                        if m in z
                    ]
    return packs


def mean_metrics(packs: list[dict], rule: str, param: float) -> dict[str, float]:
    ms = [verdict_metrics(stray_verdicts(p["scores"], rule, param), p["labels"]) for p in packs]
    return {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}


def best_param(packs: list[dict], rule: str) -> float:
    return max(GRID[rule], key=lambda q: (mean_metrics(packs, rule, q)["verdict_f1"], -abs(q - GRID[rule][2])))


def fmt(m: dict[str, float]) -> str:
    return f"{m['verdict_f1']:.3f} ({m['verdict_precision']:.3f}, {m['verdict_recall']:.3f})"


def report(tune: list[dict], held: list[dict], fractions: list[float], folders: list[str]) -> None:
    """For each rule: the parameter chosen on the tune packs, F1 (P, R) per fraction on the reported packs,
    and the folder-held-out figure."""
    half = [set(folders[0::2]), set(folders[1::2])]
    print(
        "| rule | tuned on seeds | tuning F1 | "
        + " | ".join(f"{c:g}: F1 (P, R)" for c in fractions)
        + " | folder-held-out, all fractions |"
    )
    print("|---|---|---|" + "---|" * (len(fractions) + 1))
    for rule in GRID:
        q = best_param(tune, rule)
        cells = [fmt(mean_metrics([p for p in held if p["fraction"] == c], rule, q)) for c in fractions]
        out = []
        for a, b in ((0, 1), (1, 0)):
            qa = best_param([p for p in held if p["folder"] in half[a]], rule)
            out += [(p, qa) for p in held if p["folder"] in half[b]]
        ms = [verdict_metrics(stray_verdicts(p["scores"], rule, qa), p["labels"]) for p, qa in out]
        folder_fig = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
        tuned = mean_metrics(tune, rule, q)["verdict_f1"]
        print(f"| {rule} | {q:g} | {tuned:.3f} | " + " | ".join(cells) + f" | {fmt(folder_fig)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--detectors", nargs="+", default=["deep_svdd"])
    ap.add_argument("--modes", nargs="+", default=["cross_fitted", "cross_fitted_robust"])
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.02, 0.05, 0.1])
    ap.add_argument("--tune-seeds", nargs="+", type=int, default=[5, 6, 7, 8, 9])
    ap.add_argument("--report-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--score-only", action="store_true", help="fill the cache, print nothing else")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    data = load_embedding_set(args.embeddings)
    held = scored_packs(data, args, args.report_seeds)
    tune = scored_packs(data, args, args.tune_seeds)
    if args.score_only:
        return
    for detector in args.detectors:
        for mode in args.modes:
            sel = [p for p in tune if p["detector"] == detector and p["mode"] == mode]
            rep = [p for p in held if p["detector"] == detector and p["mode"] == mode]
            print(
                f"\n{detector} {mode}: {len(rep)} reported packs (seeds {args.report_seeds}), "
                f"{len(sel)} tuning packs (seeds {args.tune_seeds})\n"
            )
            report(sel, rep, args.fractions, list(data.classes))


if __name__ == "__main__":
    main()
