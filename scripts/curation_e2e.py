"""Curation end to end on a pack with known strays: curate's AUROC vs the detector trained on the clean pack.

Usage: python scripts/curation_e2e.py PACK_DIR CURATE_OUTPUT_DIR NORMAL_WORD [--encoder E]
Strays are the files whose name lacks NORMAL_WORD (e.g. `bass` for a corpus built by `loop-svdd corpus build`).
Reads the embeddings from CURATE_OUTPUT_DIR/cache (no encoder pass when curate ran with the same encoder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from loop_svdd.bench.contaminated import precision_at_k
from loop_svdd.curation.pack import embed_pack, list_pack
from loop_svdd.curation.scoring import cross_fit_scores, detector_factory, in_sample_scores
from loop_svdd.models.encoders import DEFAULT_ENCODER, build_model


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("pack")
    p.add_argument("output_dir")
    p.add_argument("normal_word")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    args = p.parse_args()
    model, extractor = build_model(args.encoder)
    emb = embed_pack(model, extractor, list_pack(args.pack), Path(args.output_dir) / "cache", progress=False)
    labels = np.array([args.normal_word not in f.name for f in emb.files], dtype=int)
    ranking = json.loads((Path(args.output_dir) / "ranking.json").read_text())
    by_path = {r["path"]: r["score"] for r in ranking["loops"]}
    factory = detector_factory("deep_svdd")
    scores = {
        "curate (cross-fitted, trimmed)": np.array([by_path[str(f)] for f in emb.files]),
        "in-sample on the contaminated pack (train then score)": in_sample_scores(emb.clip, factory),
        "cross-fitted, trained on the clean pack only (labels known)": cross_fit_scores(
            emb.clip, factory, exclude=labels.astype(bool)
        ),
    }
    strays = [f.name for f, y in zip(emb.files, labels, strict=True) if y]
    print(f"{len(labels)} loops, {labels.sum()} strays: {strays}")
    for name, s in scores.items():
        print(f"{name}: AUROC {roc_auc_score(labels, s):.4f}, precision at k {precision_at_k(s, labels):.3f}")
    flagged = {r["file"] for r in ranking["loops"] if r["verdict"] == "stray"}
    print(f"verdict 'stray': {sorted(flagged)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
