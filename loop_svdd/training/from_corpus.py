"""Train a detector on a loop corpus: select the normal loops, embed them once (cached), fit the Deep SVDD
head, calibrate the threshold, and save a `from_pretrained` folder."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ..data import CorpusError, RowFilter, audio_column, load_corpus, select, waveform_of, with_decoding
from ..embedding import embed_dataset, model_scores
from ..encoders import DEFAULT_ENCODER, build_model, describe_encoder
from ..feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..localisation import build_time_bank
from ..model_io import save_detector
from ..modeling_loop_svdd import LoopSVDDModel
from .deep_svdd import SVDDTrainingConfig, fit_deep_svdd, score

SUMMARY_FILE = "training_summary.json"


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


def train_on_corpus(
    corpus: str | Path,
    normal: list[RowFilter],
    output_dir: str | Path,
    encoder: str = DEFAULT_ENCODER,
    training: SVDDTrainingConfig | None = None,
    holdout_fraction: float = 0.2,
    ensemble_size: int = 3,
    batch_size: int = 8,
    split: str = "train",
    progress: bool = True,
    accelerator: Any = None,
) -> CorpusTrainingResult:
    """Train on the loops of `corpus` matching every `normal` filter; resumable (checkpoints in output_dir).

    The normal loops are split three ways: `holdout_fraction` is kept out for evaluation (never seen), then
    `training.val_fraction` of the rest calibrates the threshold, and the remainder fits `ensemble_size` heads
    (seeds `seed, seed + 1, ...`), exactly as the benchmark's `DeepSVDD` detector does.
    """
    training = training or SVDDTrainingConfig()
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    dataset = load_corpus(corpus, split=split)
    normal_rows = select(dataset, normal)
    if len(normal_rows) < 4:
        raise CorpusError(
            f"only {len(normal_rows)} loop(s) match {' and '.join(map(str, normal)) or 'the corpus'}; need at least 4"
        )
    train_rows, test_rows = split_normals(normal_rows, holdout_fraction, training.seed)

    if ensemble_size < 1:
        raise ValueError(f"ensemble_size must be >= 1, got {ensemble_size}")
    fit_rows, calib_rows = split_normals(train_rows, training.val_fraction, training.seed + 1)
    if len(fit_rows) < 2:
        raise CorpusError(f"only {len(fit_rows)} loop(s) left to fit the head on; add normal loops")
    model, extractor = build_model(
        encoder,
        head_type=training.head_type,
        hidden_dims=training.hidden_dims,
        activation=training.activation,
        dropout=training.dropout,
        objective=training.objective,
        nu=training.nu,
        l2_normalize=training.l2_normalize,
        threshold_quantile=training.threshold_quantile,
        ensemble_size=ensemble_size,
    )
    embeddings = embed_dataset(model, extractor, dataset, batch_size=batch_size, progress=progress)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = [
        fit_deep_svdd(
            embeddings[fit_rows],
            replace(training, seed=training.seed + i, val_fraction=0.0),
            accelerator=accelerator,
            checkpoint_dir=str(output_dir / "checkpoints" / f"head{i}"),
            progress=progress,
        )
        for i in range(ensemble_size)
    ]
    scales = []
    for head, r in zip(model.heads, results, strict=True):
        head.load_state_dict(r.head.state_dict())
        member = score(r.head, r.center, r.radius, training.objective, embeddings[fit_rows], training.l2_normalize)
        scales.append(float(max(np.median(np.abs(member)), 1e-12)))
    state = {"center": [r.center for r in results], "radius": [r.radius for r in results], "score_scales": scales}
    model.set_svdd_state(**state)
    if not extractor.fusion:  # memory bank of normal time steps, for time_scores (docs/localisation.md)
        decoded, column = with_decoding(dataset, extractor.sampling_rate), audio_column(dataset)
        build_time_bank(model, extractor, (waveform_of(decoded[int(i)], column) for i in fit_rows), training.seed)
    calibration = model_scores(model, embeddings[calib_rows if len(calib_rows) else fit_rows])
    threshold = float(np.quantile(calibration, training.threshold_quantile))
    model.set_svdd_state(**state, threshold=threshold, calibration_scores=calibration.tolist())
    names = row_names(dataset)
    summary = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "corpus": str(corpus),
        "split": split,
        "corpus_rows": len(dataset),
        "normal_filter": [str(f) for f in normal],
        "train_rows": train_rows.tolist(),
        "calibration_rows": calib_rows.tolist(),
        "ensemble_size": ensemble_size,
        "heldout_rows": test_rows.tolist(),
        "train_files": [names[i] for i in train_rows],
        "heldout_files": [names[i] for i in test_rows],
        "encoder": describe_encoder(model.config),
        "encoder_pretrained": model.config.encoder_pretrained,
        "training": training.to_dict(),
        "threshold": threshold,
        "final_losses": [{k: (v[-1] if v else None) for k, v in r.history.items()} for r in results],
        "epochs_run": [{k: len(v) for k, v in r.history.items()} for r in results],
    }
    save_detector(model, extractor, output_dir, {SUMMARY_FILE: summary})
    return CorpusTrainingResult(model.eval(), extractor, output_dir, summary, embeddings)
