"""Small detector folders for the Hub and demo tests (built in about a second from conftest's small model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import SR, small_model, synth_loop

EVALUATION = {
    "model": "runs/bass",
    "corpus": "corpora/bass-loops",
    "normal_filter": ["instrument=bass"],
    "anomaly_filter": ["instrument=guitar"],
    "grouped_by": None,
    "n_normal_test": 10,
    "n_anomaly_test": 12,
    "n_train": 30,
    "threshold": 1.0,
    "encoder_pretrained": False,
    "detectors": {
        "loop_svdd": {"auroc": 0.91, "auprc": 0.83, "pauc": 0.71, "f1": 0.62},
        "isolation_forest": {"auroc": 0.74, "auprc": 0.66, "pauc": 0.58, "f1": 0.51},
        "pca": {"auroc": 0.69, "auprc": 0.61, "pauc": 0.55, "f1": 0.47},
    },
}

SUMMARY = {
    "created": "2026-01-01T00:00:00+00:00",
    "corpus": "corpora/bass-loops",
    "split": "train",
    "corpus_rows": 52,
    "normal_filter": ["instrument=bass"],
    "train_rows": list(range(30)),
    "heldout_rows": list(range(30, 40)),
    "train_files": [f"bass_{i:02d}.wav" for i in range(30)],
    "heldout_files": [f"bass_{i:02d}.wav" for i in range(30, 40)],
    "encoder_pretrained": False,
    "training": {"head_type": "ae", "hidden_dims": [32, 8], "epochs": 5, "val_fraction": 0.2, "seed": 0},
    "threshold": 1.0,
    "final_losses": {"svdd": 0.1},
    "epochs_run": {"svdd": 5},
}


def build_model_folder(path: Path, evaluation: bool = True, summary: bool = True) -> Path:
    """A saved small detector with a calibrated threshold (from the scores of a few synthetic loops)."""
    from loop_svdd import LoopSVDDFeatureExtractor
    from loop_svdd.engine.scoring import score_waveforms
    from loop_svdd.models.model_io import save_detector

    model = small_model()
    model.config.encoder_name_or_path = "random-tiny (seed 0)"
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    waves = [synth_loop(2.0, seed=i, freq=100.0 + 5 * i) for i in range(8)]
    centre = np.full(model.config.latent_dim, 0.1)
    model.set_svdd_state(centre)
    scores = sorted(s.score for s in score_waveforms(model, extractor, waves, SR))
    model.set_svdd_state(centre, threshold=float(np.quantile(scores, 0.95)), calibration_scores=scores)
    extra = {}
    if evaluation:
        extra["evaluation.json"] = EVALUATION
    if summary:
        extra["training_summary.json"] = SUMMARY
    return save_detector(model, extractor, path, extra)


def write_wav(path: Path, wave: np.ndarray, sr: int = SR) -> Path:
    import soundfile as sf

    sf.write(path, wave, sr, subtype="FLOAT")
    return path
