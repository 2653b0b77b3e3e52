"""Train a detector on a loop corpus: select the normal loops, embed them once (cached), fit the Deep SVDD
head, calibrate the threshold, and save a `from_pretrained` folder."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ..audio.corpora import (
    CorpusError,
    RowFilter,
    audio_column,
    load_corpus,
    select,
    small_data_warnings,
)
from ..audio.decoding import CorpusDecoding, corpus_waveforms, decodable_rows, public_skipped, require_loops
from ..detectors.deep_svdd import SVDDTrainingConfig
from ..engine.cache import embed_decodable
from ..engine.detector import Detector
from ..engine.time_bank import build_time_bank
from ..models.encoders import describe_encoder, resolve_default_encoder
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..settings import TRAIN

SUMMARY_FILE = "training_summary.json"
MIN_NORMAL_LOOPS = TRAIN.min_normal_loops  # below this `train` stops: too few loops to fit, calibrate, hold out


@dataclass
class CorpusTrainingResult:
    model: LoopSVDDModel
    extractor: LoopSVDDFeatureExtractor
    output_dir: Path
    summary: dict[str, Any]
    embeddings: np.ndarray  # (len(corpus), D): every row, for evaluation without another encoder pass


def row_names(dataset: datasets.Dataset) -> list[str]:
    """A stable name per row: the audio file's name (what a user recognises in tables)."""
    column = audio_column(dataset)
    raw = dataset.cast_column(column, datasets.Audio(decode=False))[column]
    return [Path(a["path"]).name if a.get("path") else f"row-{i}" for i, a in enumerate(raw)]


def split_normals(indices: np.ndarray, holdout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out test) rows of the normal class; the held-out rows are never seen in training."""
    order = np.random.default_rng(seed).permutation(indices)
    n_test = int(np.floor(holdout_fraction * len(order)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


@dataclass
class _Rows:
    """The rows of a corpus a training run uses: normal loops for fitting, calibration and evaluation."""

    train: np.ndarray  # fit + calibration
    fit: np.ndarray
    calibration: np.ndarray
    heldout: np.ndarray
    skipped: list  # undecodable files among the normal loops


def split_training_rows(
    normal_rows: np.ndarray, holdout: float, calibration_fraction: float, seed: int, skipped: list | None = None
) -> _Rows:
    """The normal rows split three ways (held out, calibration, fit), or a one-line `CorpusError` when fewer
    than 2 rows would be left to fit the heads on."""
    train_rows, test_rows = split_normals(normal_rows, holdout, seed)
    fit_rows, calib_rows = split_normals(train_rows, calibration_fraction, seed + 1)
    if len(fit_rows) < 2:
        raise CorpusError(f"only {len(fit_rows)} loop(s) left to fit the head on; add normal loops")
    return _Rows(train_rows, fit_rows, calib_rows, test_rows, list(skipped or []))


def _split_rows(
    dataset: datasets.Dataset,
    normal: list[RowFilter],
    holdout: float,
    calibration_fraction: float,
    seed: int,
    decoding: CorpusDecoding,
) -> _Rows:
    for name, fraction in (("holdout_fraction", holdout), ("calibration_fraction", calibration_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {fraction}")
    matching = select(dataset, normal)
    normal_rows, skipped = decoding.restrict(matching), decoding.skipped_among(matching)
    require_loops(
        len(normal_rows), MIN_NORMAL_LOOPS, f"training ({' and '.join(map(str, normal)) or 'the corpus'})", skipped
    )
    return split_training_rows(normal_rows, holdout, calibration_fraction, seed, skipped)


def train_on_corpus(
    corpus: str | Path,
    normal: list[RowFilter],
    output_dir: str | Path,
    encoder: str | None = None,
    training: SVDDTrainingConfig | None = None,
    holdout_fraction: float = TRAIN.holdout_fraction,
    ensemble_size: int | None = None,
    batch_size: int = TRAIN.encoder_batch_size,
    split: str = "train",
    progress: bool = True,
    accelerator: Any = None,
    calibration_fraction: float = TRAIN.calibration_fraction,
    detector_options: dict[str, Any] | None = None,
) -> CorpusTrainingResult:
    """Train on the loops of `corpus` matching every `normal` filter; resumable (checkpoints in output_dir).
    `encoder=None` takes the paper's encoder where it can be had, else the embedded default (see
    :func:`~loop_svdd.models.encoders.resolve_default_encoder`).

    The normal loops are split three ways: `holdout_fraction` is kept out for evaluation (never seen), then
    `calibration_fraction` of the rest calibrates the threshold, and the remainder fits `ensemble_size`
    (default `training.ensemble_size`) heads with the benchmark's `DeepSVDD` detector (through the engine's
    :class:`~loop_svdd.engine.detector.Detector`), whose heads the saved model takes over as they are.
    `detector_options` go to that detector (any `DeepSVDD` parameter or training field, e.g. `epochs`, or
    `val_fraction` for an early-stopping split: none by default, whatever `training.val_fraction` says).
    """
    training = training or SVDDTrainingConfig()
    if ensemble_size is not None:
        training = replace(training, ensemble_size=ensemble_size)
    options = dict(detector_options or {})
    dataset = load_corpus(corpus, split=split)
    decoding = decodable_rows(dataset, progress=progress)
    rows = _split_rows(dataset, normal, holdout_fraction, calibration_fraction, training.seed, decoding)
    output_dir = Path(output_dir)
    run = {"accelerator": accelerator, "checkpoint_dir": str(output_dir / "checkpoints"), "progress": progress}
    detector = Detector.for_training(encoder or resolve_default_encoder(), training, **{**run, **options})
    model, extractor = detector.model, detector.extractor
    embeddings = embed_decodable(model, extractor, dataset, decoding, batch_size=batch_size, progress=progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    detector.fit(embeddings[rows.fit])
    if not extractor.fusion:  # memory bank of normal time steps, for time_scores (docs/localisation.md)
        build_time_bank(model, extractor, corpus_waveforms(dataset, rows.fit, extractor.sampling_rate), training.seed)
    detector.calibrate(embeddings[rows.calibration if len(rows.calibration) else rows.fit])
    summary = _summary(corpus, split, dataset, normal, rows, detector, _recorded(training, detector, options))
    summary["calibration_fraction"] = calibration_fraction
    detector.save(output_dir, {SUMMARY_FILE: summary})
    return CorpusTrainingResult(model.eval(), extractor, output_dir, summary, embeddings)


def _recorded(training: SVDDTrainingConfig, detector: Detector, options: dict[str, Any]) -> dict[str, Any]:
    """The training settings the summary records: `training`'s, with what `options` changed."""
    effective = detector.training_config.to_dict()
    return {**training.to_dict(), **{k: effective[k] for k in options if k in effective}}


def _summary(corpus, split, dataset, normal, rows: _Rows, detector: Detector, training: dict) -> dict[str, Any]:
    """`training_summary.json`: what was trained on what, for evaluation and the model card."""
    names = row_names(dataset)
    model, results = detector.model, detector.fit_results
    calibration = model.config.calibration_scores
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "corpus": str(corpus),
        "split": split,
        "corpus_rows": len(dataset),
        "normal_filter": [str(f) for f in normal],
        "train_rows": rows.train.tolist(),
        "calibration_rows": rows.calibration.tolist(),
        "ensemble_size": detector.training_config.ensemble_size,
        "heldout_rows": rows.heldout.tolist(),
        "train_files": [names[i] for i in rows.train],
        "heldout_files": [names[i] for i in rows.heldout],
        "encoder": describe_encoder(model.config),
        "encoder_pretrained": model.config.encoder_pretrained,
        "training": training,
        "threshold": model.config.threshold,
        "calibration_loops": len(calibration),
        "skipped_files": public_skipped(rows.skipped),
        "warnings": small_data_warnings(len(rows.fit), len(calibration)),
        "final_losses": [{k: (v[-1] if v else None) for k, v in r.history.items()} for r in results],
        "epochs_run": [{k: len(v) for k, v in r.history.items()} for r in results],
    }
