"""Measuring an encoder for anomaly detection: one-vs-rest splits of a corpus with every detector on the
encoder's embeddings (the protocol of :mod:`loop_svdd.benchmark`), to compare random and pretrained encoders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ..benchmark import EmbeddingSet, run_benchmark, summarize

DETECTORS = ("deep_svdd", "isolation_forest", "pca", "knn", "ocsvm")
MIN_CLASS_SIZE = 8


def corpus_classes(dataset: datasets.Dataset) -> np.ndarray:
    """One class per row: `instrument (soundfont)` for soundfont loops, else the source kind (`drumkit`,
    `recording`), so every class is large enough to split."""
    out = []
    for inst, kind, src in zip(dataset["instrument"], dataset["source_kind"], dataset["source"], strict=True):
        out.append(f"{inst} ({src})" if kind == "soundfont" else str(kind))
    return np.array(out)


def embed_corpus(encoder: str, corpus: str | Path, batch_size: int = 8, progress: bool = False) -> np.ndarray:
    """`(n, D)` clip embeddings of every loop of `corpus` by `encoder` (cached by `embed_dataset`)."""
    from ..data import load_corpus
    from ..embedding import embed_dataset
    from ..encoders import build_model

    model, extractor = build_model(encoder)
    return embed_dataset(model, extractor, load_corpus(corpus), batch_size=batch_size, progress=progress)


def one_vs_rest(
    embeddings: np.ndarray,
    classes: np.ndarray,
    detectors: Sequence[str] = DETECTORS,
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = False,
) -> dict[str, Any]:
    """Mean AUROC per detector and per normal class over `seeds` (classes under `MIN_CLASS_SIZE` rows dropped)."""
    names, counts = np.unique(classes, return_counts=True)
    keep = np.isin(classes, names[counts >= MIN_CLASS_SIZE])
    data = EmbeddingSet(np.asarray(embeddings, dtype=np.float32)[keep], classes[keep])
    return summarize(run_benchmark(data, list(detectors), list(seeds), progress=progress))


def comparison_table(summaries: dict[str, dict[str, Any]], detector: str = "deep_svdd") -> str:
    """Markdown: one row per normal class, one column per encoder (mean AUROC of `detector`)."""
    encoders = list(summaries)
    classes = sorted(next(iter(summaries.values()))["detectors"][detector]["per_class"])
    lines = ["| normal class | " + " | ".join(encoders) + " |", "|---|" + "---|" * len(encoders)]
    for c in classes:
        lines.append(
            f"| {c} | "
            + " | ".join(f"{s['detectors'][detector]['per_class'][c]:.3f}" for s in summaries.values())
            + " |"
        )
    lines.append(
        "| **mean** | "
        + " | ".join(f"**{s['detectors'][detector]['mean_auroc']:.3f}**" for s in summaries.values())
        + " |"
    )
    return "\n".join(lines)
