"""Nearest-neighbour search, one way for every caller: the k-NN scorer, the verdicts' neighbour ratio and the
near-duplicate candidates. Backed by faiss (``faiss-cpu``): exact search (``IndexFlat``, in query blocks, so no
n x n matrix is ever held) below :data:`EXACT_BELOW` vectors, HNSW graphs above it. Recall against exact search
and speed of faiss and usearch: ``loop-svdd benchmark neighbours`` (``docs/curation.md``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Metric = Literal["euclidean", "cosine"]

EXACT_BELOW = 20_000  # exact search up to this many indexed vectors; HNSW above
HNSW_M = 32  # graph degree
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
BUILD_THREADS = 1  # a single-threaded HNSW build is deterministic: a rerun finds the same neighbours


def _faiss():
    import faiss

    return faiss


def _prepare(vectors: np.ndarray, metric: Metric) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(f"neighbour search needs a 2-d array of vectors, got shape {x.shape}")
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


class NeighbourIndex:
    """Vectors ``(n, d)`` indexed for k-nearest-neighbour queries; distances are Euclidean or cosine
    (``1 - cos``). ``exact=None`` picks exact search below :data:`EXACT_BELOW` vectors."""

    def __init__(self, vectors: np.ndarray, metric: Metric = "euclidean", exact: bool | None = None) -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"unknown metric {metric!r}: use 'euclidean' or 'cosine'")
        self.metric = metric
        x = _prepare(vectors, metric)
        self.size = len(x)
        self.exact = self.size < EXACT_BELOW if exact is None else exact
        self.index_ = self._build(x)

    def _build(self, x: np.ndarray):
        faiss = _faiss()
        d = x.shape[1]
        inner = faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2
        if self.exact:
            index = faiss.IndexFlatIP(d) if self.metric == "cosine" else faiss.IndexFlatL2(d)
        else:
            index = faiss.IndexHNSWFlat(d, HNSW_M, inner)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(threads if self.exact else BUILD_THREADS)
        try:
            index.add(x)
        finally:
            faiss.omp_set_num_threads(threads)
        return index

    def _distances(self, raw: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            return np.clip(1.0 - raw, 0.0, 2.0)
        return np.sqrt(np.clip(raw, 0.0, None))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest indexed vectors of each query: distances and indices ``(m, k)``, nearest first."""
        k = min(k, self.size)
        raw, idx = self.index_.search(_prepare(queries, self.metric), k)
        return self._distances(raw).astype(np.float64), idx.astype(np.int64)

    def search_self(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest *other* indexed vectors of each indexed vector ``(n, k)`` (itself left out)."""
        k = min(k, self.size - 1)
        if k < 1:
            raise ValueError("neighbour search needs at least two vectors")
        x = self.index_.reconstruct_n(0, self.size)
        raw, idx = self.index_.search(x, k + 1)
        return without_self(self._distances(raw), idx, k)


def without_self(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (or, where the search missed it, its farthest hit), keeping ``k`` columns."""
    own = idx == np.arange(len(idx))[:, None]
    missing = ~own.any(axis=1)
    own[missing, -1] = True
    keep = ~own
    return dist[keep].reshape(len(idx), k).astype(np.float64), idx[keep].reshape(len(idx), k).astype(np.int64)


def nearest_others(vectors: np.ndarray, k: int, metric: Metric = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices ``(n, k)`` of each vector's ``k`` nearest other vectors."""
    return NeighbourIndex(vectors, metric).search_self(k)
