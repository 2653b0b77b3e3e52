import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from loop_svdd.detectors import DETECTORS, DeepSVDD, NotFittedError, make_detector

_DEEP = {"epochs": 15, "pretrain_epochs": 3, "ensemble_size": 1}
# The synthetic strays below differ by an offset, which unit-length rows hide: the contract test hands PyOD's
# peers the raw rows and gives KDE a bandwidth for these norms (the benchmarks measure them on real embeddings).
_RAW = {"l2_normalize": False}
FAST = {"deep_svdd": _DEEP, "deep_svdd_residual": _DEEP, "kde": {"bandwidth": 0.2}}
FAST.update({name: _RAW for name in DETECTORS if name.startswith("pyod_")})
MIN_AUROC = {name: 0.85 for name in DETECTORS if name.startswith("pyod_")}  # PyOD's own, not our bar (ECOD 0.887)
TORCH_PEERS = {"pyod_lunar", "pyod_deepsvdd", "pyod_autoencoder"}  # float32 torch sums: equal to ~1e-7


def refit_rtol(name: str) -> float:
    return 1e-5 if name in TORCH_PEERS else 1e-12


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(4, 64))
    normal = rng.normal(size=(80, 4)) @ basis + 0.1 * rng.normal(size=(80, 64))
    train, test_normal = normal[:60], normal[60:]
    anomalies = rng.normal(size=(20, 4)) @ basis + 0.1 * rng.normal(size=(20, 64)) + 3.0 * rng.normal(size=(1, 64))
    x_test = np.vstack([test_normal, anomalies])
    y_test = np.r_[np.zeros(len(test_normal)), np.ones(len(anomalies))]
    return train.astype(np.float32), x_test.astype(np.float32), y_test


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detector_contract(name, data):
    train, x_test, y_test = data
    det = make_detector(name, random_state=0, **FAST.get(name, {}))
    with pytest.raises(NotFittedError, match="not fitted"):
        det.decision_function(x_test)
    assert det.fit(train) is det
    scores = det.decision_function(x_test)
    assert scores.shape == (len(x_test),)
    assert np.ptp(scores) > 0, "scores are constant"
    assert roc_auc_score(y_test, scores) > MIN_AUROC.get(name, 0.9)  # higher = more abnormal
    np.testing.assert_array_equal(-scores, det.score_samples(x_test))  # scikit-learn: higher = more normal
    fitted = [k for k in vars(det) if k.endswith("_")]
    assert {"threshold_", "decision_scores_", "n_features_in_"} <= set(fitted)
    assert det.threshold_ == pytest.approx(np.quantile(det.decision_scores_, 0.95))
    np.testing.assert_array_equal(det.predict(x_test), (scores > det.threshold_).astype(int))
    again = make_detector(name, random_state=0, **FAST.get(name, {})).fit(train)
    np.testing.assert_allclose(again.decision_function(x_test), scores, rtol=refit_rtol(name), atol=0)
    with pytest.raises(ValueError, match="features"):
        det.decision_function(x_test[:, :10])


def test_deep_svdd_guards(data):
    train, _, _ = data
    det = DeepSVDD(epochs=5, pretrain_epochs=2, eps=0.1, ensemble_size=2).fit(train)
    assert len(det.heads_) == 2
    for head in det.heads_:
        assert (head.center.abs() >= 0.1 - 1e-7).all()  # Ruff's eps guard, in the head's buffer
        assert float(head.score_scale) > 0 and float(head.score_scale) != 1.0  # the ensemble's median scaling
        assert not any("bias" in n for n, _ in head.named_parameters())
        assert not any(m.affine for m in head.modules() if isinstance(m, torch.nn.BatchNorm1d))
        assert not head.training
        assert all(m.p == 0 for m in head.modules() if isinstance(m, torch.nn.Dropout))


def test_make_detector_unknown():
    with pytest.raises(KeyError, match="unknown detector"):
        make_detector("nope")
    with pytest.raises(TypeError, match="unknown option"):
        DeepSVDD(not_an_option=1)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detectors_are_sklearn_estimators(name, data):
    train, x_test, _ = data
    det = make_detector(name, random_state=3, **FAST.get(name, {}))
    params = det.get_params()
    assert params["random_state"] == 3 and params["threshold_quantile"] == 0.95
    twin = clone(det)
    assert type(twin) is type(det) and twin.get_params() == params and not hasattr(twin, "threshold_")
    twin.set_params(threshold_quantile=0.9)
    assert twin.get_params()["threshold_quantile"] == 0.9 and det.threshold_quantile == 0.95
    if name.startswith("deep_svdd"):
        assert params["ensemble_size"] == 1 and params["epochs"] == 15
        twin.set_params(epochs=2, lr=1e-3)
        assert twin.training_config().epochs == 2 and twin.training_config().lr == 1e-3
    np.testing.assert_allclose(
        clone(det).fit(train).decision_function(x_test), det.fit(train).decision_function(x_test), rtol=refit_rtol(name)
    )


def test_deep_svdd_detector_is_the_model_that_ships(data, tmp_path):
    """The benchmark's detector fits the heads a LoopSVDDModel ships: same buffers, same scores."""
    from loop_svdd import LoopSVDDConfig, LoopSVDDModel
    from loop_svdd.models.loop_svdd.svdd_head import HeadConfig

    train, x_test, _ = data  # 64-d embeddings: an HTS-AT whose pooled size is 64
    det = DeepSVDD(epochs=6, pretrain_epochs=2, ensemble_size=2, hidden_dims=[16, 8]).fit(train)
    audio = {"patch_embeds_hidden_size": 8, "hidden_size": 64, "depths": [1, 1, 1, 1], "num_attention_heads": [1] * 4}
    config = LoopSVDDConfig(audio_config=audio, ensemble_size=2, **HeadConfig.of(det.training_config()).head_kwargs())
    model = LoopSVDDModel(config).eval()
    model.load_heads(det.heads_)
    for mine, theirs in zip(model.heads, det.heads_, strict=True):
        for name in ("center", "radius", "score_scale", "input_mean"):
            assert torch.equal(getattr(mine, name), getattr(theirs, name)), name
    model.save_pretrained(tmp_path)
    loaded = LoopSVDDModel.from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        for m in (model, loaded):
            shipped = m.score_embeddings(torch.from_numpy(x_test))[0].double().numpy()
            np.testing.assert_allclose(shipped, det.decision_function(x_test), rtol=1e-6, atol=1e-6)


# -- every training size (issue 27: a training split of batch_size + 1 rows crashed Deep SVDD) --------------------
_TINY = {"epochs": 1, "pretrain_epochs": 1, "hidden_dims": [8, 4], "ensemble_size": 1}
SIZE_SWEEP = {
    "deep_svdd": ("deep_svdd", _TINY),
    "deep_svdd_ensemble": ("deep_svdd", {**_TINY, "ensemble_size": 2}),
    "deep_svdd_residual": ("deep_svdd_residual", _TINY),
    "deep_svdd_soft_boundary": ("deep_svdd", {**_TINY, "objective": "soft-boundary", "warmup_epochs": 0}),
    "deep_svdd_validation_split": ("deep_svdd", {**_TINY, "val_fraction": 0.2}),
    **{name: (name, {}) for name in ("isolation_forest", "pca", "knn", "ocsvm")},
}
MIN_ROWS, MAX_ROWS, BATCH = 2, 300, 32  # BaseDetector's floor; Deep SVDD's default batch size


def _edge_rows(variant: str) -> list[int]:
    """The fast subset: the smallest sizes and every size whose training rows (after the variant's validation
    split) sit next to a multiple of the batch size."""
    val = SIZE_SWEEP[variant][1].get("val_fraction", 0.0)
    near = {-1, 0, 1, 2}
    edges = {n for n in range(MIN_ROWS, MAX_ROWS + 1) if (n - math.floor(val * n)) % BATCH in {d % BATCH for d in near}}
    return sorted(edges | {*range(MIN_ROWS, 9), MAX_ROWS})


@pytest.fixture(scope="module")
def sweep_rows():
    return np.random.default_rng(1).normal(size=(MAX_ROWS, 16)).astype(np.float32)


def _fit_every_size(variant: str, sizes, X: np.ndarray) -> None:
    name, options = SIZE_SWEEP[variant]
    for n in sizes:
        det = make_detector(name, random_state=n, **options).fit(X[:n])
        scores = det.decision_function(X)
        assert det.decision_scores_.shape == (n,) and np.isfinite(det.threshold_), (variant, n)
        assert scores.shape == (MAX_ROWS,) and np.isfinite(scores).all(), (variant, n)


@pytest.mark.parametrize("variant", list(SIZE_SWEEP))
def test_every_detector_fits_sizes_next_to_batch_boundaries(variant, sweep_rows):
    _fit_every_size(variant, _edge_rows(variant), sweep_rows)
    with pytest.raises(ValueError, match=f"at least {MIN_ROWS} training samples"):
        make_detector(SIZE_SWEEP[variant][0], **SIZE_SWEEP[variant][1]).fit(sweep_rows[: MIN_ROWS - 1])


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(SIZE_SWEEP))
def test_every_detector_fits_every_size(variant, sweep_rows):
    edges = set(_edge_rows(variant))
    _fit_every_size(variant, [n for n in range(MIN_ROWS, MAX_ROWS + 1) if n not in edges], sweep_rows)


@pytest.mark.parametrize("variant", list(SIZE_SWEEP))
def test_every_detector_on_identical_rows(variant):
    """A pack whose loops are all the same: every detector fits and gives finite scores."""
    name, options = SIZE_SWEEP[variant]
    for n in (MIN_ROWS, BATCH + 1, 40):
        X = np.tile(np.random.default_rng(0).normal(size=(1, 16)), (n, 1)).astype(np.float32)
        det = make_detector(name, **options).fit(X)
        assert np.isfinite(det.decision_function(X)).all() and np.isfinite(det.threshold_), (variant, n)


def test_engine_detector_glues_model_and_estimator(encoder_dir, tmp_path):
    """`engine.Detector`: the estimator's heads in the model, the model's scores = the estimator's, the threshold
    calibrated in the model's config, and a saved folder that loads back to the same scores."""
    from loop_svdd.detectors.deep_svdd import SVDDTrainingConfig
    from loop_svdd.engine.detector import Detector

    training = SVDDTrainingConfig(hidden_dims=[16, 8], epochs=3, pretrain_epochs=1, seed=4)
    detector = Detector.for_training(str(encoder_dir), training, ensemble_size=2, lr=1e-3)
    config = detector.training_config
    assert (config.ensemble_size, config.lr, config.seed, config.val_fraction) == (2, 1e-3, 4, 0.0)
    assert detector.model.config.ensemble_size == 2 and detector.model.config.hidden_dims == [16, 8]
    X = np.random.default_rng(0).normal(size=(40, detector.model.config.embedding_dim)).astype(np.float32)
    detector.fit(X[:30])
    np.testing.assert_allclose(detector.score(X), detector.estimator.decision_function(X), rtol=1e-5, atol=1e-6)
    calibration = detector.calibrate(X[30:])
    assert detector.model.config.threshold == pytest.approx(float(np.quantile(calibration, 0.95)))
    assert len(detector.fit_results) == 2
    detector.save(tmp_path / "model")
    loaded = Detector.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.score(X), detector.score(X), rtol=1e-6)
    assert loaded.model.config.threshold == detector.model.config.threshold
    with pytest.raises(ValueError, match="for_training"):
        loaded.fit(X)
