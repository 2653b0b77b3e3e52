"""PyOD peers behind our detector contract, and the ranking `curate` ships (members combined over fold seeds)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from loop_svdd.detectors import DETECTORS, PYOD_PEERS, make_detector
from loop_svdd.detectors.peers import PeerUnavailableError


def _clusters(seed: int = 0, n: int = 40, d: int = 16):
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=d)
    normal = centre + 0.1 * rng.normal(size=(n, d))
    test = np.r_[centre + 0.1 * rng.normal(size=(10, d)), -centre + 0.1 * rng.normal(size=(10, d))]
    return normal, test, np.r_[np.zeros(10), np.ones(10)]


@pytest.mark.parametrize("name", sorted(PYOD_PEERS))
def test_every_pyod_peer_separates_another_cluster(name):
    pytest.importorskip("pyod")
    normal, test, labels = _clusters()
    options = {"pyod_deepsvdd": {"options": {"epochs": 5}}, "pyod_autoencoder": {"options": {"epoch_num": 5}}}
    options = options.get(name, {})
    detector = make_detector(name, random_state=0, **options).fit(normal)
    scores = detector.decision_function(test)
    assert scores.shape == (20,) and np.isfinite(scores).all()
    if name not in ("pyod_ecod", "pyod_copod"):  # PyOD's ECOD/COPOD re-rank a test batch against itself
        assert roc_auc_score(labels, scores) > 0.9
    assert clone(detector).get_params() == detector.get_params()
    assert len(detector.decision_scores_) == len(normal)


def test_peers_are_registered_beside_ours():
    assert set(PYOD_PEERS) <= set(DETECTORS) and "deep_svdd" in DETECTORS


def test_missing_pyod_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyod.models.gmm", None)  # what Python does for a package not installed
    normal, _, _ = _clusters()
    with pytest.raises(PeerUnavailableError, match=r"pip install 'loop-svdd\[bench\]'"):
        make_detector("pyod_gmm").fit(normal)


def _pack(seed: int = 0, n: int = 40, strays: int = 4, d: int = 16):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 0.3 + 3.0
    X[:strays] = rng.normal(size=(strays, d)) * 0.3 - 3.0
    return X.astype(np.float32), np.r_[np.ones(strays), np.zeros(n - strays)]


FAST = {"deep_svdd": {"epochs": 5, "pretrain_epochs": 2, "ensemble_size": 1}}


def test_rank_pack_finds_planted_strays_and_scores_windows_alike():
    from loop_svdd.curation.ranking import rank_pack

    X, labels = _pack()
    ranking = rank_pack(X, folds=4, trim=0.1, seed=0, repeats=2, member_options=FAST)
    assert ranking.members == ("deep_svdd", "knn", "pca", "kde") and len(ranking.repeats) == 2
    assert roc_auc_score(labels, ranking.scores) == 1.0
    assert np.isclose(np.median(ranking.scores), 1.0, rtol=0.01)
    for i in (0, 10, 39):  # a loop's own row, scored as one of its windows would be, gets the loop's score
        assert np.isclose(ranking.row_scores(i, X[i : i + 1])[0], ranking.scores[i], rtol=1e-5)
    assert ranking.spread.shape == (40,) and (ranking.spread >= 0).all()


def test_rank_pack_trims_the_first_pass_top():
    from loop_svdd.curation.ranking import rank_pack

    X, _ = _pack()
    ranking = rank_pack(X, members=("pca", "knn"), folds=4, trim=0.1, seed=0, repeats=1)
    assert ranking.trimmed.sum() == 4 and ranking.trimmed[:4].all()


def test_rank_pack_refuses_no_members():
    from loop_svdd.curation.ranking import rank_pack

    X, _ = _pack()
    with pytest.raises(ValueError, match="at least one member"):
        rank_pack(X, members=(), repeats=1)


def test_the_reason_never_argues_against_the_verdict():
    from loop_svdd.curation.verdicts import reason

    fits = reason("fits", 2.4, 3.1, bar=3.0, confidence=0.8)
    assert fits.startswith("Fits (likely)") and "below the 3.0x" in fits and "though" in fits
    stray = reason("stray", 4.0, 1.0, bar=3.0, confidence=0.95)
    assert stray.startswith("Does not fit (sure)") and "though" in stray


def test_contaminated_benchmark_has_curate_and_peer_rows_and_fold_seed_ranges(tmp_path):
    """The `curate` row is exactly `rank_pack` at curate's defaults; a PyOD peer gets a row; --fold-seeds
    reports each pack's AUROC range."""
    pytest.importorskip("pyod")
    import json

    from test_benchmark import _make_folder

    from loop_svdd.bench import contaminated
    from loop_svdd.bench.one_vs_rest import load_embedding_set
    from loop_svdd.cli import main
    from loop_svdd.curation.ranking import rank_pack

    folder = _make_folder(tmp_path, n_per=(24, 24), dim=12)
    out = tmp_path / "c.json"
    argv = ["benchmark", "contaminated", "--embeddings", str(folder), "--json", str(out), "--no-progress"]
    argv += ["--contamination", "0.1", "--seeds", "0", "--detectors", "curate", "pyod_knn", "--fold-seeds", "2"]
    argv += ["--modes", "cross_fitted_robust", "--folders", "class0"]
    assert main(argv) == 0
    result = json.loads(out.read_text())["results"]["0.1"]
    assert set(result) == {"curate", "pyod_knn"} and set(result["curate"]) == {"curate"}
    assert result["curate"]["curate"]["auroc"] > 0.9 and result["pyod_knn"]["cross_fitted_robust"]["auroc"] > 0.9
    assert 0 <= result["curate"]["curate"]["fold_seed_range_max"] <= 1
    data = load_embedding_set(folder)
    rows, _ = contaminated.make_pack(data, "class0", 0.1, 0)
    X = data.embeddings[rows]
    shipped = contaminated.pack_scores(X, "curate", [], 0, 5, 0.1)["curate"]
    assert np.allclose(shipped, rank_pack(X, folds=5, trim="auto", seed=0).scores)


@pytest.mark.parametrize("peer", ["pyod_deepsvdd", "pyod_autoencoder"])
def test_deep_peers_fit_packs_smaller_than_a_batch(peer):
    """PyOD drops the last partial batch: an 11-row folder used to train nothing and crash the benchmark."""
    X = np.random.default_rng(0).normal(size=(11, 16)).astype(np.float32)
    scores = make_detector(peer).fit(X).decision_function(X)
    assert scores.shape == (11,) and np.isfinite(scores).all() and np.ptp(scores) > 0
