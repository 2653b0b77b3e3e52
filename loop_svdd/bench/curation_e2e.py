"""Curation end to end on a pack with known strays: curate's AUROC vs the detector trained on the clean pack.

    loop-svdd benchmark curation-e2e PACK_DIR CURATE_OUTPUT_DIR NORMAL_WORD [--encoder E]

Strays are the files whose name lacks NORMAL_WORD (e.g. `bass` for a corpus built by `loop-svdd corpus build`).
Reads the embeddings from CURATE_OUTPUT_DIR/cache (no encoder pass when curate ran with the same encoder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from ..curation.pack import list_pack
from ..curation.scoring import cross_fit_scores, detector_factory, in_sample_scores
from ..engine.cache import embed_files
from ..models.encoders import DEFAULT_ENCODER, build_model
from .contaminated import precision_at_k
from .report import BenchResult, add_report_options


def pack_scores(pack: str, output_dir: str, normal_word: str, encoder: str) -> tuple[list[str], np.ndarray, dict]:
    """(file names, stray labels, scores per scorer): curate's ranking, in-sample on the contaminated pack, and
    cross-fitted on the clean pack only (labels known)."""
    model, extractor = build_model(encoder)
    emb = embed_files(model, extractor, list_pack(pack), Path(output_dir) / "cache", progress=False)
    labels = np.array([normal_word not in f.name for f in emb.files], dtype=int)
    ranking = json.loads((Path(output_dir) / "ranking.json").read_text())
    by_path = {r["path"]: r["score"] for r in ranking["loops"]}
    factory = detector_factory("deep_svdd")
    scores = {
        "curate (cross-fitted, trimmed)": np.array([by_path[str(f)] for f in emb.files]),
        "in-sample on the contaminated pack (train then score)": in_sample_scores(emb.clip, factory),
        "cross-fitted, trained on the clean pack only (labels known)": cross_fit_scores(
            emb.clip, factory, exclude=labels.astype(bool)
        ),
    }
    return [f.name for f in emb.files], labels, scores


# -- the protocol: `loop-svdd benchmark curation-e2e` ------------------------------------------------------------
NAME = "curation-e2e"
DESCRIPTION = __doc__.splitlines()[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pack", help="the pack curate ran on")
    parser.add_argument("output_dir", help="curate's --output-dir (ranking.json, cache/)")
    parser.add_argument("normal_word", help="word in the name of every normal file (the others are strays)")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help=f"curate's encoder (default: {DEFAULT_ENCODER})")
    add_report_options(parser, json_required=False)


def run(args: argparse.Namespace) -> BenchResult:
    names, labels, scores = pack_scores(args.pack, args.output_dir, args.normal_word, args.encoder)
    strays = [n for n, y in zip(names, labels, strict=True) if y]
    figures = {
        name: {"auroc": float(roc_auc_score(labels, s)), "precision_at_k": precision_at_k(s, labels)}
        for name, s in scores.items()
    }
    ranking = json.loads((Path(args.output_dir) / "ranking.json").read_text())
    flagged = sorted({r["file"] for r in ranking["loops"] if r["verdict"] == "stray"})
    lines = [f"{len(labels)} loops, {labels.sum()} strays: {strays}"]
    lines += [f"{n}: AUROC {m['auroc']:.4f}, precision at k {m['precision_at_k']:.3f}" for n, m in figures.items()]
    lines.append(f"verdict 'stray': {flagged}")
    settings = {k: str(getattr(args, k)) for k in ("pack", "output_dir", "normal_word", "encoder")}
    payload = {"protocol": NAME, "loops": len(labels), "strays": strays, "scores": figures, "flagged": flagged}
    return BenchResult(NAME, settings, "\n".join(lines), {**payload, "settings": settings})
