"""Each default of loop-svdd, written once. Library functions take them as keyword defaults and the commands
derive their flags' defaults (and the numbers in their help) from them.

Two groups stay where they are, because a saved model folder carries its modelling code alone and that code may
not import this package: the Deep SVDD head's shape and objective (``models/loop_svdd/svdd_head.HeadConfig``, the
``tuned`` preset) and a model config's own fields (``LoopSVDDConfig``). The training hyper-parameters are the
fields of ``detectors.deep_svdd.SVDDTrainingConfig`` (its presets), whose cross-cutting ones read from here.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLING_RATE = 48_000  # Hz: the rate every encoder of the project reads, and the rate corpora are rendered at


@dataclass(frozen=True)
class DetectorDefaults:
    """Every one-class detector (``detectors``)."""

    threshold_quantile: float = 0.95  # the threshold: this quantile of normal scores (5% false alarms intended)


@dataclass(frozen=True)
class DeepSVDDDefaults:
    """The Deep SVDD trainer and detector.

    ``val_fraction`` is the trainer's validation split: the normals it holds out for early stopping (and, in
    ``fit_deep_svdd``, to set its threshold). It has two defaults, one per entry point, on purpose:
    ``fit_deep_svdd`` keeps 20% out; the ``DeepSVDD`` detector (what ``train``, ``curate`` and the benchmarks fit)
    keeps none, because with 11-51 training rows holding out 20% cost 0.002-0.003 AUROC on the benchmark.
    It is not the calibration split of ``train`` (:class:`TrainDefaults`).
    """

    ensemble_size: int = 3  # heads fitted (seeds seed, seed + 1, ...); a bare `LoopSVDDConfig` holds 1
    trainer_val_fraction: float = 0.2  # fit_deep_svdd / SVDDTrainingConfig.val_fraction
    detector_val_fraction: float = 0.0  # DeepSVDD(val_fraction=...), and so train, curate and the benchmarks


@dataclass(frozen=True)
class TrainDefaults:
    """``loop-svdd train`` / ``train_on_corpus``: how the normal loops of a corpus are split and embedded."""

    holdout_fraction: float = 0.2  # --holdout: normal loops kept out of training, for evaluation
    calibration_fraction: float = 0.2  # of the training loops: set aside to calibrate the threshold
    encoder_batch_size: int = 8  # --batch-size: loops per encoder batch when embedding
    min_normal_loops: int = 4  # fewer decodable normal loops: train stops with a one-line error


@dataclass(frozen=True)
class CurateDefaults:
    """``loop-svdd curate``: cross-fitting, trimming, the size check and the report."""

    folds: int = 5  # --folds: cross-fitting folds
    # the detectors whose cross-fitted scores are combined (chosen on contaminated packs of seeds 5-6, not reported)
    members: tuple[str, ...] = ("deep_svdd", "knn", "pca", "kde")
    member_heads: int = 1  # Deep SVDD heads per member fit: the fold seeds (repeats) already ensemble it
    repeats: int = 3  # --repeats: fold seeds the ranking is averaged over (a rank must not hinge on one fold)
    trim: float = 0.1  # share of the highest first-pass scores left out of every training fold (at least)
    min_loops: int = 20  # below this a pack is too small to say what is typical (refused unless --allow-small)
    absolute_min_loops: int = 8  # cross-fitting cannot run on fewer, even with --allow-small
    longest_loop_s: float = 600.0  # longer files (by their header) are listed as too long and never decoded
    players: int = 100  # --players: loops with an inline player and spectrogram in the report
    library_players: int = 20  # the same on each pack's page of a library (media cost ~0.14 s a loop)
    seed: int = 0  # --seed
    most_auto_jobs: int = 4  # --jobs auto: a library's packs in up to this many processes (one per core)


DETECTOR = DetectorDefaults()
DEEP_SVDD = DeepSVDDDefaults()
TRAIN = TrainDefaults()
CURATE = CurateDefaults()
