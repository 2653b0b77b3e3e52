"""Measure candidate time-resolved scorers on the defect benchmark (docs/localisation.md).

    python scripts/localisation_candidates.py CORPUS --n-bank 40 --n-test 20 --seed 0 [--json OUT]

One encoder pass (the embedded default encoder) over the bank, clean and defective loops, then every candidate
(sources x pooling x fold) fitted on the bank and scored; prints a table of mean loop AUROC / hit rate /
per-step AUROC, and the clip-level baseline (1-NN distance of clip embeddings to the bank's).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from loop_svdd.bench.defects import curves_numpy, kind_metrics, make_defect_set, summarise
from loop_svdd.models.encoders import build_model
from loop_svdd.models.loop_svdd.time_scoring import (
    content_steps,
    encode_loops,
    fit_time_scorer,
    fold_time_scores,
    nn_distance,
)

CANDIDATES = {
    "last grid (stage4)": (("stage4",), "max", 32, "mean"),
    "stage3": (("stage3",), "max", 64, "mean"),
    "stage2": (("stage2",), "max", 64, "mean"),
    "stage1": (("stage1",), "max", 64, "mean"),
    "mel (spectral baseline)": (("mel",), "max", 64, "mean"),
    "mel, mean-pooled": (("mel",), "mean", 64, "mean"),
    "stage1 + mel": (("stage1", "mel"), "max", 64, "mean"),
    "stage2 + mel": (("stage2", "mel"), "max", 64, "mean"),
    "stage1 + stage4 + mel": (("stage1", "stage4", "mel"), "max", 64, "mean"),
    "stage1, fold max": (("stage1",), "max", 64, "max"),
    "stage1, 128 steps": (("stage1",), "max", 128, "mean"),
    "stage1, mean-pooled": (("stage1",), "mean", 64, "mean"),
}
ALL_SOURCES = ["mel", "stage1", "stage2", "stage3", "stage4"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--n-bank", type=int, default=40)
    ap.add_argument("--n-test", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bank-size", type=int, default=4096)
    ap.add_argument("--only", nargs="*", help="candidate names to run")
    ap.add_argument("--json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = make_defect_set(args.corpus, [], args.n_bank, args.n_test, args.seed)
    model, ex = build_model("default")
    enc = {
        "bank": encode_loops(model, ex, data.bank, ALL_SOURCES),
        "clean": encode_loops(model, ex, data.clean, ALL_SOURCES),
    }
    for kind, items in data.defective.items():
        enc[kind] = encode_loops(model, ex, [w for w, _ in items], ALL_SOURCES)
    print(f"encoded in {time.perf_counter() - t0:.0f} s", flush=True)
    window_s, padding = float(ex.max_length_s), ex.padding
    results = {}
    bank_clip = clip_embeddings(enc["bank"])
    clip = {k: nn_distance(clip_embeddings(e), bank_clip).numpy() for k, e in enc.items() if k != "bank"}
    results["clip-level (1-NN of clip embeddings)"] = summarise(
        {k: kind_metrics(clip["clean"], clip[k], [d for _, d in data.defective[k]], data.beats) for k in data.defective}
    )
    for name, (sources, pooling, steps, reduce) in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        per_loop = {src: content_steps(enc["bank"], src, window_s, padding) for src in sources}
        scorer = fit_time_scorer(model.config.audio_config, per_loop, args.bank_size, steps, pooling, args.seed)
        curves = {
            k: curves_numpy(
                *fold_time_scores(
                    scorer.score_grids(e.grids), e.clip_index, e.start_s, e.duration_s, window_s, padding, reduce
                )
            )
            for k, e in enc.items()
            if k != "bank"
        }
        per_kind = {
            k: kind_metrics(curves["clean"], curves[k], [d for _, d in data.defective[k]], data.beats)
            for k in data.defective
        }
        results[name] = summarise(per_kind)
        print_row(name, results[name], flush=True)
    print()
    for name, r in results.items():
        print_row(name, r)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def clip_embeddings(e) -> torch.Tensor:
    n = len(e.duration_s)
    sums = torch.zeros(n, e.pooled.shape[1]).index_add_(0, e.clip_index, e.pooled.float())
    return torch.nn.functional.normalize(sums / torch.bincount(e.clip_index, minlength=n)[:, None], dim=1)


def print_row(name: str, r: dict, flush: bool = False) -> None:
    nan = float("nan")
    kinds = " ".join(f"{k[:5]} {m['auroc']:.2f}/{m.get('hit_rate', nan):.2f}" for k, m in r["defects"].items())
    print(
        f"{name:<30} AUROC {r['mean_auroc']:.3f} contrast {r.get('mean_auroc_contrast', nan):.3f} "
        f"hit {r.get('mean_hit_rate', nan):.3f} (chance {r.get('mean_chance_hit_rate', nan):.3f}) "
        f"stepAUROC {r.get('mean_time_auroc', nan):.3f} | {kinds}",
        flush=flush,
    )


if __name__ == "__main__":
    main()
