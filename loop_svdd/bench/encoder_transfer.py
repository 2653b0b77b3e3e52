"""Measuring an encoder for anomaly detection: one-vs-rest splits of a corpus with every detector on the
encoder's embeddings (the protocol of :mod:`loop_svdd.bench.one_vs_rest`), to compare random and pretrained encoders.

Leave-sources-out (out of domain): pretrain without source S (`loop-svdd pretrain-encoder --hold-out-source S`),
then :func:`held_out_source` evaluates one-vs-rest detection on the loops of S only and reports the gain over
random weights of the encoder's shape. On the command line::

    loop-svdd benchmark encoder-transfer CORPUS --source S --encoder DIR [--encoder DIR2] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from .one_vs_rest import EmbeddingSet, run_benchmark, summarize
from .report import BenchmarkError, BenchResult, add_report_options

DETECTORS = ("deep_svdd", "isolation_forest", "pca", "knn", "ocsvm")
MIN_CLASS_SIZE = 8


def corpus_classes(dataset: datasets.Dataset) -> np.ndarray:
    """One class per row: `instrument (soundfont)` for soundfont loops, else the source kind (`drumkit`,
    `recording`), so every class is large enough to split."""
    out = []
    for inst, kind, src in zip(dataset["instrument"], dataset["source_kind"], dataset["source"], strict=True):
        out.append(f"{inst} ({src})" if kind == "soundfont" else str(kind))
    return np.array(out)


def source_classes(dataset: datasets.Dataset) -> np.ndarray:
    """Classes inside one source: the instrument for soundfont loops and recordings, the kit kind (acoustic,
    electronic, hand percussion) for drum-kit loops, the game for game-music excerpts."""
    kind_column = {"drumkit": "program_family", "game-music": "source"}
    cols = {c: dataset[c] for c in ("instrument", "program_family", "source")}
    return np.array(
        [str(cols[kind_column.get(kind, "instrument")][i]) for i, kind in enumerate(dataset["source_kind"])]
    )


def source_mask(dataset: datasets.Dataset, sources: str | Sequence[str]) -> np.ndarray:
    """Rows whose `source` or `source_kind` is one of `sources` (case-insensitive)."""
    wanted = {s.lower() for s in ([sources] if isinstance(sources, str) else sources)}
    return np.array(
        [
            bool(wanted & {str(a).lower(), str(b).lower()})
            for a, b in zip(dataset["source"], dataset["source_kind"], strict=True)
        ]
    )


def heard_sources(encoder: str) -> set[str] | None:
    """The sources (soundfonts, kits, games...) a pretrained encoder folder was trained on, from its `pretraining.json`
    (None when it does not say: a random or foreign encoder)."""
    from ..models.encoders import DEFAULT_ENCODER, DEFAULT_ENCODER_DIR

    path = Path(DEFAULT_ENCODER_DIR if encoder == DEFAULT_ENCODER else encoder) / "pretraining.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    if "sources" not in info:
        return None
    return {str(s).lower() for s in info["sources"]}


RANDOM_LIKE = "random-like:"  # prefix: seeded random weights of the named encoder's shape


def random_twin(encoder: str) -> str:
    """Random weights of `encoder`'s shape: `random-<size>` for a named HTS-AT size (the shipped encoder is
    `small`), else `random-like:<encoder>` (see :func:`build_encoder`)."""
    from ..models.encoders import build_model, is_random_encoder
    from ..models.loop_svdd.configuration_loop_svdd import HTSAT_SIZES

    if is_random_encoder(encoder) or encoder.startswith(RANDOM_LIKE):
        return encoder
    ac = build_model(encoder)[0].config.audio_config
    for size, shape in HTSAT_SIZES.items():
        if all(list(np.atleast_1d(getattr(ac, k))) == list(np.atleast_1d(v)) for k, v in shape.items()):
            return f"random-{size}"
    return RANDOM_LIKE + encoder


def build_encoder(encoder: str):
    """:func:`build_model`, plus `random-like:<encoder>` (seeded random weights of its shape)."""
    import torch

    from ..models.encoders import RANDOM_ENCODER_SEED, build_model
    from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel

    if not encoder.startswith(RANDOM_LIKE):
        return build_model(encoder)
    model, extractor = build_model(encoder.removeprefix(RANDOM_LIKE))
    model.config.encoder_pretrained = False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_ENCODER_SEED)
        return LoopSVDDModel(model.config).eval(), extractor


def embed_corpus(encoder: str, corpus: str | Path, batch_size: int = 8, progress: bool = False) -> np.ndarray:
    """`(n, D)` clip embeddings of every loop of `corpus` by `encoder` (cached by `embed_dataset`)."""
    from ..audio.corpora import load_corpus
    from ..engine.cache import embed_dataset
    from ..pretraining.teacher import is_teacher, teacher_embeddings

    if is_teacher(encoder):
        return teacher_embeddings(encoder, load_corpus(corpus), progress=progress)
    model, extractor = build_encoder(encoder)
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


def held_out_source(
    corpus: str | Path,
    source: str | Sequence[str] | None,
    encoders: Sequence[str],
    detectors: Sequence[str] = ("deep_svdd",),
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = False,
) -> dict[str, Any]:
    """One-vs-rest detection (classes: :func:`source_classes`) on the loops of `source` (one or several) in
    `corpus` (all its loops when None), for each encoder and for random weights of its shape; gains are
    encoder minus random twin."""
    from ..audio.corpora import load_corpus

    dataset = load_corpus(corpus)
    missing = sorted({"instrument", "source", "source_kind", "program_family"} - set(dataset.column_names))
    if missing:
        raise ValueError(f"{corpus}: no column(s) {', '.join(missing)} (a corpus from build_corpus is needed)")
    mask = source_mask(dataset, source) if source else np.ones(len(dataset), dtype=bool)
    if isinstance(source, str):
        source = [source]
    if mask.sum() < 2 * MIN_CLASS_SIZE:
        raise ValueError(f"only {int(mask.sum())} loops of source {source} in {corpus}")
    classes = source_classes(dataset)[mask]
    from ..pretraining.teacher import is_teacher

    twins = {enc: random_twin(enc) for enc in encoders if not is_teacher(enc)}  # a teacher is a reference row
    results = {}
    for enc in dict.fromkeys([*encoders, *twins.values()]):
        results[enc] = one_vs_rest(embed_corpus(enc, corpus, progress=progress)[mask], classes, detectors, seeds)
    report: dict[str, Any] = {"corpus": str(corpus), "source": source, "n_loops": int(mask.sum()), "results": results}
    present = {str(v).lower() for v in np.asarray(dataset["source"], dtype=object)[mask]}
    report["heard_source"] = {e: _heard_any(e, present) for e in encoders}
    report["gain_over_random"] = {
        enc: {
            d: results[enc]["detectors"][d]["mean_auroc"] - results[twin]["detectors"][d]["mean_auroc"]
            for d in detectors
        }
        for enc, twin in twins.items()
    }
    return report


def _heard_any(encoder: str, present: set[str]) -> bool | None:
    """Whether `encoder` was pretrained on any of the (lower-cased) sources `present`."""
    heard = heard_sources(encoder)
    return None if heard is None else bool(heard & present)


def held_out_lines(report: dict[str, Any], detector: str = "deep_svdd") -> list[str]:
    """A per-class table and the gain line of :func:`held_out_source`'s report."""
    name = ", ".join(report["source"] or ["all"])
    lines = [f"source {name} ({report['n_loops']} loops) of {report['corpus']}, {detector}:"]
    lines.append(comparison_table(report["results"], detector))
    for enc, gains in report["gain_over_random"].items():
        heard = report["heard_source"][enc]
        note = "" if heard is None else (" (WARNING: the encoder heard this source)" if heard else " (never heard)")
        lines.append(f"gain of {enc} over random weights of its shape: {gains[detector]:+.3f}{note}")
    return lines


# -- the protocol: `loop-svdd benchmark encoder-transfer` --------------------------------------------------------
NAME = "encoder-transfer"
DESCRIPTION = (
    "Out-of-domain check of pretrained encoders: one-vs-rest detection on the loops of one source, against random "
    "weights of each encoder's shape."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="corpus holding the held-out source's loops")
    parser.add_argument(
        "--source", action="append", default=None, help="source or source kind to evaluate on (repeat; default: all)"
    )
    parser.add_argument("--encoder", action="append", required=True, help="encoder(s) to measure (repeat)")
    parser.add_argument("--detectors", nargs="+", default=["deep_svdd"], help="detectors to run (default: deep_svdd)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="split seeds (default: 0 1 2)")
    add_report_options(parser, json_required=False)


def run(args: argparse.Namespace) -> BenchResult:
    try:
        report = held_out_source(args.corpus, args.source, args.encoder, args.detectors, args.seeds)
    except (ValueError, OSError) as err:
        raise BenchmarkError(str(err).splitlines()[0]) from err
    table = "\n".join("\n".join(held_out_lines(report, detector)) for detector in args.detectors)
    settings = {"corpus": str(args.corpus), "sources": args.source, "encoders": args.encoder}
    settings |= {"detectors": list(args.detectors), "seeds": list(args.seeds)}
    return BenchResult(NAME, settings, table, report)
