import os

import numpy as np
import pytest
import torch

from loop_svdd.detectors.deep_svdd import PRESETS, SVDDTrainingConfig, TrainingDivergedError, fit_deep_svdd
from loop_svdd.models.loop_svdd.svdd_head import score_array


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(40, 32)).astype(np.float32)


def _config(**kw):
    base = dict(hidden_dims=[16, 8], pretrain_epochs=4, epochs=6, batch_size=16, patience=100, val_fraction=0.2)
    return SVDDTrainingConfig(**{**base, **kw})


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("objective", ["one-class", "soft-boundary"])
@pytest.mark.parametrize("stop_at", [2, 4, 7])  # inside pretraining, at the phase switch, inside Deep SVDD
def test_resume_matches_uninterrupted(x, tmp_path, objective, stop_at):
    config = _config(objective=objective, warmup_epochs=1, dropout=0.2)
    full = fit_deep_svdd(x, config, progress=False)

    def interrupt(info):
        if info["global_epoch"] == stop_at:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit_deep_svdd(x, config, checkpoint_dir=str(tmp_path), progress=False, on_epoch_end=interrupt)
    resumed = fit_deep_svdd(x, config, checkpoint_dir=str(tmp_path), progress=False)
    assert resumed.history == full.history
    torch.testing.assert_close(resumed.center, full.center, rtol=0, atol=0)
    assert resumed.radius == full.radius and resumed.threshold == full.threshold
    np.testing.assert_array_equal(resumed.val_scores, full.val_scores)
    for (k, a), (_, b) in zip(resumed.head.state_dict().items(), full.head.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    files = os.listdir(tmp_path)
    assert not [f for f in files if f.endswith((".pt", ".pth", ".pkl", ".pickle", ".bin", ".tmp"))]
    assert sorted(f.rsplit(".", 1)[-1] for f in files) == ["json", "safetensors"]
    # calling again on a finished checkpoint returns the same result without training
    again = fit_deep_svdd(x, config, checkpoint_dir=str(tmp_path), progress=False)
    np.testing.assert_array_equal(again.val_scores, full.val_scores)


def test_checkpoint_for_other_config_is_refused(x, tmp_path):
    fit_deep_svdd(x, _config(epochs=2, pretrain_epochs=1), checkpoint_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="another config"):
        fit_deep_svdd(x, _config(epochs=3, pretrain_epochs=1), checkpoint_dir=str(tmp_path), progress=False)


def test_result_and_determinism(x):
    res = fit_deep_svdd(x, _config(), progress=False)
    assert not res.head.training
    assert (res.center.abs() >= 0.1 - 1e-7).all()
    assert len(res.val_scores) == 8
    assert res.threshold == pytest.approx(np.quantile(res.val_scores, 0.95))
    torch.testing.assert_close(res.head.center, res.center, rtol=0, atol=0)  # the centre ships in the head
    s = score_array([res.head], x).numpy()
    assert s.shape == (40,) and np.ptp(s) > 0 and (s >= 0).all()
    np.testing.assert_array_equal(fit_deep_svdd(x, _config(), progress=False).val_scores, res.val_scores)
    assert not np.array_equal(fit_deep_svdd(x, _config(seed=1), progress=False).val_scores, res.val_scores)


def test_soft_boundary_radius(x):
    res = fit_deep_svdd(x, _config(objective="soft-boundary", warmup_epochs=0), progress=False)
    assert res.radius > 0 and float(res.head.radius) == pytest.approx(res.radius)
    assert (score_array([res.head], x).numpy() < 0).any()


def test_nan_input_and_divergence(x):
    bad = x.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_deep_svdd(bad, _config(), progress=False)
    with pytest.raises(TrainingDivergedError, match="loss became"):
        fit_deep_svdd(x * 1e30, _config(standardize=False, l2_normalize=False, lr=1.0), progress=False)


@pytest.mark.parametrize(
    "kw", [{"objective": "x"}, {"nu": 0}, {"epochs": 0}, {"val_fraction": 1.0}, {"head_type": "cnn"}]
)
def test_config_validation(kw):
    with pytest.raises(ValueError):
        SVDDTrainingConfig(**kw)


@pytest.mark.parametrize("objective", ["one-class", "soft-boundary"])
def test_trainer_loss_is_the_models_loss(x, objective):
    """The validation loss the trainer records is the head's own loss, the one `forward(return_loss=True)` uses."""
    from loop_svdd.models.loop_svdd.svdd_head import ensemble_loss

    config = _config(objective=objective, warmup_epochs=0, epochs=3, patience=100)
    res = fit_deep_svdd(x, config, progress=False)
    # the head kept is the best epoch's (lowest validation loss)
    val = torch.from_numpy(x[np.sort(np.random.default_rng(config.seed).permutation(len(x))[:8])])
    with torch.no_grad():
        loss = float(ensemble_loss([res.head], val))
        manual = res.head.distance(val)
        if objective == "soft-boundary":
            r2 = res.head.radius**2
            manual = r2 + torch.clamp(manual - r2, min=0).mean() / config.nu
        else:
            manual = manual.mean()
    assert loss == pytest.approx(float(manual), rel=1e-6)
    if objective == "one-class":
        assert loss == pytest.approx(min(res.history["svdd_val_loss"]), rel=1e-5)


def test_presets_select_the_two_sets_of_defaults():
    assert SVDDTrainingConfig() == SVDDTrainingConfig.from_preset("tuned")
    paper = SVDDTrainingConfig.from_preset("paper", seed=3)
    assert paper.hidden_dims == [512, 256, 128, 64, 32] and not paper.l2_normalize and paper.lr == 1e-3
    assert paper.seed == 3 and PRESETS["paper"]["epochs"] == paper.epochs
    tuned = SVDDTrainingConfig()
    assert tuned.hidden_dims == [512, 256] and tuned.l2_normalize and tuned.lr == 1e-4
    with pytest.raises(ValueError, match="unknown preset"):
        SVDDTrainingConfig.from_preset("fast")


# -- every training size (issue 27) --------------------------------------------------------------------------------
def _legacy_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """The batching every trained figure was made with (it raised IndexError for n = batch_size + 1)."""
    perm = torch.randperm(n, generator=generator)
    batches = list(torch.split(perm, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] = torch.cat([batches[-2], batches.pop()])
    return batches


def test_batches_never_hold_one_row_and_match_the_old_batches():
    from loop_svdd.detectors.deep_svdd.trainer import mini_batches

    crashed = []
    for batch_size in (2, 3, 4, 5, 8, 16, 32, 33, 64):
        for n in range(2, 301):
            new = mini_batches(n, batch_size, torch.Generator().manual_seed(n))
            assert min(len(b) for b in new) >= 2, (n, batch_size)
            try:
                old = _legacy_batches(n, batch_size, torch.Generator().manual_seed(n))
            except IndexError:
                crashed.append((n, batch_size))
                assert n == batch_size + 1 and len(new) == 1 and sorted(new[0].tolist()) == list(range(n))
                continue
            assert len(new) == len(old) and all(torch.equal(a, b) for a, b in zip(new, old, strict=True))
    assert (33, 32) in crashed and len(crashed) == 9  # exactly the n = batch_size + 1 cases, one per batch size


def test_train_splits_serve_every_corpus_size_or_say_why():
    """`train`'s three-way split (held out, calibration, fit) on every number of normal loops from the smallest
    allowed to 200, for `--holdout` 0 (curate's model), 0.2 (the default), 0.5 and 0.9: each gives rows Deep SVDD
    can fit (every fit size is fitted below, with the detector `train_on_corpus` builds), or a one-line error."""
    from loop_svdd.audio.corpora import CorpusError
    from loop_svdd.detectors import DeepSVDD
    from loop_svdd.settings import DEEP_SVDD, TRAIN
    from loop_svdd.training.from_corpus import MIN_NORMAL_LOOPS, split_training_rows

    training = SVDDTrainingConfig(hidden_dims=[8, 4], epochs=1, pretrain_epochs=1)
    fit_sizes, refused = set(), {}
    for holdout in (0.0, 0.2, 0.5, 0.9):
        for n in range(MIN_NORMAL_LOOPS, 201):
            rows = np.arange(n) + 7  # row numbers of the normal loops in a larger corpus
            try:
                split = split_training_rows(rows, holdout, TRAIN.calibration_fraction, training.seed)
            except CorpusError as err:
                refused.setdefault(holdout, []).append(n)
                assert len(str(err).splitlines()) == 1 and "left to fit the head on" in str(err)
                continue
            parts = np.r_[split.fit, split.calibration, split.heldout]
            assert sorted(parts.tolist()) == rows.tolist() and len(split.fit) >= 2
            fit_sizes.add(len(split.fit))
    assert set(refused) == {0.9} and max(refused[0.9]) < 30  # only tiny corpora with 90% held out
    X = np.random.default_rng(0).normal(size=(max(fit_sizes), 16)).astype(np.float32)
    for size in sorted(fit_sizes):
        detector = DeepSVDD.from_training_config(training, val_fraction=DEEP_SVDD.detector_val_fraction).fit(X[:size])
        assert len(detector.heads_) == training.ensemble_size and np.isfinite(detector.decision_scores_).all()
