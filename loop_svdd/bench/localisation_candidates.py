"""Measure candidate time-resolved scorers on the defect benchmark (docs/localisation.md).

    loop-svdd benchmark localisation-candidates CORPUS --n-bank 40 --n-test 20 --seed 0 [--json OUT]

One encoder pass (the embedded default encoder) over the bank, clean and defective loops, then every candidate
(sources x pooling x fold) fitted on the bank and scored; prints a table of mean loop AUROC / hit rate /
per-step AUROC, and the clip-level baseline (1-NN distance of clip embeddings to the bank's).
"""

from __future__ import annotations

import argparse
import time

import torch

from ..engine.embedding import EncodedLoops, encode_loops
from ..engine.time_bank import content_steps
from ..models.encoders import build_model
from ..models.loop_svdd.time_scoring import fit_time_scorer, fold_time_scores, nn_distance
from .defects import DefectSet, curves_numpy, kind_metrics, make_defect_set, summarise
from .report import BenchResult, add_report_options

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


def encode_sets(model, extractor, data: DefectSet) -> dict[str, EncodedLoops]:
    """Every source of the bank, clean and defective loops, in one encoder pass per set."""
    enc = {
        "bank": encode_loops(model, extractor, data.bank, ALL_SOURCES),
        "clean": encode_loops(model, extractor, data.clean, ALL_SOURCES),
    }
    for kind, items in data.defective.items():
        enc[kind] = encode_loops(model, extractor, [w for w, _ in items], ALL_SOURCES)
    return enc


def clip_embeddings(e: EncodedLoops) -> torch.Tensor:
    n = len(e.duration_s)
    sums = torch.zeros(n, e.pooled.shape[1]).index_add_(0, e.clip_index, e.pooled.float())
    return torch.nn.functional.normalize(sums / torch.bincount(e.clip_index, minlength=n)[:, None], dim=1)


def clip_level(enc: dict[str, EncodedLoops], data: DefectSet) -> dict:
    """The clip-level baseline: 1-NN distance of each loop's clip embedding to the bank's."""
    bank_clip = clip_embeddings(enc["bank"])
    clip = {k: nn_distance(clip_embeddings(e), bank_clip).numpy() for k, e in enc.items() if k != "bank"}
    return summarise(
        {k: kind_metrics(clip["clean"], clip[k], [d for _, d in data.defective[k]], data.beats) for k in data.defective}
    )


def candidate(model, extractor, enc: dict[str, EncodedLoops], data: DefectSet, spec: tuple, bank_size: int, seed: int):
    """`summarise` of one candidate `(sources, pooling, steps, fold)`, fitted on the bank loops."""
    sources, pooling, steps, reduce = spec
    window_s, padding = float(extractor.max_length_s), extractor.padding
    per_loop = {src: content_steps(enc["bank"], src, window_s, padding) for src in sources}
    scorer = fit_time_scorer(model.config.audio_config, per_loop, bank_size, steps, pooling, seed)
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
    return summarise(per_kind)


def row(name: str, r: dict) -> str:
    nan = float("nan")
    kinds = " ".join(f"{k[:5]} {m['auroc']:.2f}/{m.get('hit_rate', nan):.2f}" for k, m in r["defects"].items())
    return (
        f"{name:<30} AUROC {r['mean_auroc']:.3f} contrast {r.get('mean_auroc_contrast', nan):.3f} "
        f"hit {r.get('mean_hit_rate', nan):.3f} (chance {r.get('mean_chance_hit_rate', nan):.3f}) "
        f"stepAUROC {r.get('mean_time_auroc', nan):.3f} | {kinds}"
    )


# -- the protocol: `loop-svdd benchmark localisation-candidates` -------------------------------------------------
NAME = "localisation-candidates"
DESCRIPTION = __doc__.splitlines()[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="a loop corpus (all its loops are normal)")
    parser.add_argument("--n-bank", type=int, default=40, help="normal loops to fit on (default: 40)")
    parser.add_argument("--n-test", type=int, default=20, help="held-out loops (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="which loops, beats and defects (default: 0)")
    parser.add_argument("--bank-size", type=int, default=4096, help="memory bank size (default: 4096)")
    parser.add_argument("--only", nargs="*", help="candidate names to run")
    add_report_options(parser, json_required=False)


def run(args: argparse.Namespace) -> BenchResult:
    t0 = time.perf_counter()
    data = make_defect_set(args.corpus, [], args.n_bank, args.n_test, args.seed)
    model, extractor = build_model("default")
    enc = encode_sets(model, extractor, data)
    print(f"encoded in {time.perf_counter() - t0:.0f} s", flush=True)
    results = {"clip-level (1-NN of clip embeddings)": clip_level(enc, data)}
    for name, spec in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        results[name] = candidate(model, extractor, enc, data, spec, args.bank_size, args.seed)
        print(row(name, results[name]), flush=True)
    table = "\n".join(["", *(row(name, r) for name, r in results.items()), f"total {time.perf_counter() - t0:.0f} s"])
    settings = {k: getattr(args, k) for k in ("corpus", "n_bank", "n_test", "seed", "bank_size", "only")}
    return BenchResult(NAME, settings, table, results)
