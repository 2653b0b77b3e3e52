"""Neighbour search: recall against exact search, and speed, of the libraries that could serve the k-NN scorer,
the verdicts' neighbour ratio and the near-duplicate candidates.

    loop-svdd benchmark neighbours --sizes 10000 100000 --json OUT.json [--embeddings DIR] [--seed 0]

Vectors: with ``--embeddings``, jittered copies of real embeddings (each a real loop's embedding plus Gaussian noise
of a quarter of the typical distance to its nearest neighbour, like the transformed copies a library holds);
without, a seeded mixture of 64 anisotropic Gaussian clusters. Every vector's ``--k`` nearest other vectors are
searched; recall@k is the share of exact search's neighbours found. Rows: faiss exact (``IndexFlat``: the truth),
faiss HNSW as :mod:`loop_svdd.detectors.neighbours` builds it (single-threaded, deterministic), usearch HNSW at
the same graph settings (when ``usearch`` is installed), scikit-learn's brute-force search (what the k-NN scorer
used before; only up to 20,000 vectors). Seconds are wall time (build + query) in one run, with ratios to exact.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from ..detectors import neighbours
from .one_vs_rest import load_embedding_set
from .report import BenchmarkError, BenchResult, add_report_options

NAME = "neighbours"
DESCRIPTION = "neighbour search: recall against exact search and speed (faiss, usearch, scikit-learn)"
SKLEARN_UP_TO = 20_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="vector counts (default: 10000 100000)"
    )
    p.add_argument(
        "--dims", type=int, default=96, help="vector size without --embeddings (default: 96, as the duplicate search)"
    )
    p.add_argument("--k", type=int, default=12, help="neighbours per vector (default: 12, as the duplicate candidates)")
    p.add_argument("--embeddings", help="a folder of embeddings (nff.npy, index.csv) to jitter instead of clusters")
    p.add_argument("--seed", type=int, default=0, help="seed of the vectors and the jitter (default: 0)")
    add_report_options(p)


def clustered_vectors(n: int, d: int, rng: np.random.Generator, clusters: int = 64) -> np.ndarray:
    """``n`` vectors from ``clusters`` Gaussian clusters, each with its own random scale per direction."""
    centres = rng.normal(size=(clusters, d)) * 3.0
    scales = rng.gamma(2.0, 0.5, size=(clusters, d))
    which = rng.integers(0, clusters, size=n)
    return (centres[which] + rng.normal(size=(n, d)) * scales[which]).astype(np.float32)


def jittered_vectors(folder: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` jittered copies of the real embeddings in ``folder`` (``nff.npy`` + ``index.csv``)."""
    real = load_embedding_set(folder).embeddings.astype(np.float32)
    dist, _ = neighbours.nearest_others(real, 1)
    noise = 0.25 * float(np.median(dist)) / np.sqrt(real.shape[1])
    picks = rng.integers(0, len(real), size=n)
    return (real[picks] + rng.normal(size=(n, real.shape[1])) * noise).astype(np.float32)


def faiss_search(x: np.ndarray, k: int, exact: bool) -> np.ndarray:
    return neighbours.NeighbourIndex(x, exact=exact).search_self(k)[1]


def usearch_search(x: np.ndarray, k: int) -> np.ndarray:
    from usearch.index import Index

    index = Index(
        ndim=x.shape[1],
        metric="l2sq",
        connectivity=neighbours.HNSW_M,
        expansion_add=neighbours.HNSW_EF_CONSTRUCTION,
        expansion_search=neighbours.HNSW_EF_SEARCH,
    )
    index.add(np.arange(len(x)), x, threads=neighbours.BUILD_THREADS)
    found = index.search(x, k + 1, threads=0).keys.astype(np.int64)
    return neighbours.without_self(np.zeros(found.shape), found, k)[1]


def sklearn_search(x: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x).kneighbors(None)[1]


def searches(n: int) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """The searches measured at ``n`` vectors, exact first."""
    rows = {
        "faiss exact": lambda x, k: faiss_search(x, k, True),
        "faiss HNSW (shipped above 20,000)": lambda x, k: faiss_search(x, k, False),
    }
    try:
        import usearch.index  # noqa: F401

        rows["usearch HNSW"] = usearch_search
    except ImportError:
        pass
    if n <= SKLEARN_UP_TO:
        rows["scikit-learn brute"] = sklearn_search
    return rows


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true neighbours found, over all rows."""
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth, strict=True))
    return hits / truth.size


def measure_size(x: np.ndarray, k: int) -> list[dict]:
    rows, truth, exact_s = [], None, None
    for name, search in searches(len(x)).items():
        start = time.perf_counter()
        found = search(x, k)
        seconds = time.perf_counter() - start
        truth = found if truth is None else truth
        exact_s = seconds if exact_s is None else exact_s
        rows.append(
            {
                "search": name,
                "n": len(x),
                "recall": recall(found, truth),
                "seconds": seconds,
                "vs_exact": seconds / exact_s,
            }
        )
        print(f"  n={len(x)} {name}: recall {rows[-1]['recall']:.4f}, {seconds:.2f} s", flush=True)
    return rows


def run(args: argparse.Namespace) -> BenchResult:
    if min(args.sizes) < 2 or args.k < 1:
        raise BenchmarkError("--sizes must be at least 2 and --k at least 1")
    start, rows = time.perf_counter(), []
    for n in args.sizes:
        rng = np.random.default_rng(args.seed)
        x = jittered_vectors(args.embeddings, n, rng) if args.embeddings else clustered_vectors(n, args.dims, rng)
        rows += measure_size(x, min(args.k, n - 1))
    lines = ["| vectors | search | recall@k | seconds | x exact |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['n']} | {r['search']} | {r['recall']:.4f} | {r['seconds']:.2f} | {r['vs_exact']:.2f} |" for r in rows
    ]
    settings = {
        "sizes": args.sizes,
        "k": args.k,
        "dims": args.dims,
        "embeddings": args.embeddings,
        "seed": args.seed,
        "exact_below": neighbours.EXACT_BELOW,
    }
    return BenchResult(
        NAME,
        settings,
        "\n".join(lines) + "\n",
        {"settings": settings, "rows": rows},
        title="# Neighbour search\n\n",
        seconds=time.perf_counter() - start,
    )
