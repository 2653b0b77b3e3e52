"""Neighbour search (faiss): exact below the switch, HNSW above it, itself left out, deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from loop_svdd.bench.neighbours import clustered_vectors, recall
from loop_svdd.cli import main
from loop_svdd.curation import duplicates
from loop_svdd.curation.verdicts import neighbour_ratio
from loop_svdd.detectors import KNN
from loop_svdd.detectors.neighbours import NeighbourIndex, nearest_others


@pytest.fixture(scope="module")
def clusters() -> np.ndarray:
    return clustered_vectors(3000, 24, np.random.default_rng(0))


def test_exact_search_matches_scikit_learn(clusters):
    dist, idx = nearest_others(clusters[:800], 5)
    want_dist, want_idx = NearestNeighbors(n_neighbors=5).fit(clusters[:800]).kneighbors(None)
    assert np.allclose(dist, want_dist, atol=1e-3) and (idx == want_idx).mean() > 0.999


def test_a_vector_is_never_its_own_neighbour_even_with_exact_copies(clusters):
    x = np.vstack([clusters[:100], clusters[:100]])
    dist, idx = nearest_others(x, 3)
    assert not (idx == np.arange(200)[:, None]).any()
    assert (idx[:100, 0] == np.arange(100, 200)).all() and np.allclose(dist[:, 0], 0.0, atol=1e-4)


def test_hnsw_recall_and_determinism(clusters):
    truth = NeighbourIndex(clusters, exact=True).search_self(12)[1]
    first = NeighbourIndex(clusters, exact=False).search_self(12)[1]
    again = NeighbourIndex(clusters, exact=False).search_self(12)[1]
    assert recall(first, truth) >= 0.99
    assert (first == again).all()


def test_cosine_distances_and_queries(clusters):
    index = NeighbourIndex(clusters[:500], metric="cosine")
    dist, idx = index.search(clusters[:3] * 7.0, 1)  # a scaled copy is at cosine distance 0 from itself
    assert (idx[:, 0] == np.arange(3)).all() and np.allclose(dist[:, 0], 0.0, atol=1e-5)


def test_bad_input_is_refused_in_one_line():
    with pytest.raises(ValueError, match="2-d array"):
        NeighbourIndex(np.zeros(5))
    with pytest.raises(ValueError, match="unknown metric"):
        NeighbourIndex(np.zeros((5, 2)), metric="manhattan")
    with pytest.raises(ValueError, match="at least two"):
        NeighbourIndex(np.zeros((1, 2))).search_self(3)


def test_callers_use_it(clusters, monkeypatch):
    """The k-NN scorer, the neighbour ratio and the duplicate candidates all go through NeighbourIndex."""
    built = []
    real_init = NeighbourIndex.__init__

    def counting_init(self, vectors, *args, **kwargs):
        built.append(len(vectors))
        real_init(self, vectors, *args, **kwargs)

    monkeypatch.setattr(NeighbourIndex, "__init__", counting_init)
    KNN().fit(clusters[:300]).decision_function(clusters[300:310])
    ratio = neighbour_ratio(clusters[:300])
    assert abs(float(np.median(ratio)) - 1.0) < 1e-6
    fps = [duplicates.Fingerprint(logmel=rng_logmel(i), raw=rng_logmel(i), seconds=1.0) for i in range(250)]
    pairs = duplicates.candidate_pairs(fps)
    assert built == [300, 300, 250]
    assert all(i < j for i, j in pairs) and len(pairs) <= 250 * duplicates.CANDIDATES


def rng_logmel(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(20, duplicates.N_MELS)).astype(np.float32)


def test_benchmark_neighbours_prints_recall_and_ratios(tmp_path, capsys):
    out = tmp_path / "nb.json"
    main(["benchmark", "neighbours", "--sizes", "500", "--dims", "16", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    names = [r["search"] for r in rows]
    assert names[0] == "faiss exact" and rows[0]["recall"] == 1.0
    assert all(r["recall"] >= 0.99 for r in rows) and "scikit-learn brute" in names
    assert "x exact" in capsys.readouterr().out
