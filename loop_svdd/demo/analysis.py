"""What the demo computes, without any UI: score a batch of uploaded files under limits, and the figures and
CSV for the results."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.decode import AudioDecodeError
from ..audio.decoding import Decoded, decode_file
from ..engine.records import ScoredLoop
from ..engine.scoring import score_paths
from ..figures import score_distribution_image, spectrogram_image
from ..models.encoders import describe_encoder
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel

TABLE_HEADERS = ["rank", "file", "score", "verdict", "percentile", "duration (s)", "windows"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_files: int = 16
    max_seconds: float = 60.0
    max_file_mb: float = 20.0


LoopResult = ScoredLoop  # the demo's name for the one scored-loop record


def _decode(path: Path, sampling_rate: int, limits: Limits) -> Decoded:
    """[`decode_file`] under the request's size and length limits."""
    size_mb = path.stat().st_size / 1e6 if path.is_file() else 0.0
    if size_mb > limits.max_file_mb:
        return Decoded(str(path), None, f"the file is {size_mb:.1f} MB, above the {limits.max_file_mb:g} MB limit")
    decoded = decode_file(path, sampling_rate, name=str(path), max_seconds=limits.max_seconds + 1.0)
    if decoded.ok and len(decoded.waveform) > limits.max_seconds * sampling_rate:
        return Decoded(str(path), None, f"the loop is longer than the {limits.max_seconds:g} s limit; trim it first")
    return decoded


def analyse_files(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    paths: list[str | Path],
    limits: Limits = Limits(),
    names: list[str] | None = None,
) -> tuple[list[ScoredLoop], list[tuple[str, str]]]:
    """Score `paths` under `limits` (`scoring.score_paths`); return (results, most anomalous first) and per-file
    errors `(name, reason)`."""
    files = [Path(p) for p in paths]
    names = names or [p.name for p in files]
    results, errors = score_paths(
        model, extractor, files, batch_size=4, decode=lambda p, sr: _decode(p, sr, limits), names=names
    )
    shown = dict(zip(files, names, strict=True))
    return results, [(shown[path], reason) for path, reason in errors]


def table_rows(results: list[ScoredLoop]) -> list[list[Any]]:
    return [
        [
            i,
            r.name,
            round(r.score, 6),
            r.verdict,
            None if r.percentile is None else round(r.percentile, 1),
            round(r.duration_s, 2),
            len(r.window_scores),
        ]
        for i, r in enumerate(results, 1)
    ]


def write_csv(results: list[ScoredLoop], path: str | Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_HEADERS)
        writer.writerows(table_rows(results))
    return Path(path)


@torch.inference_mode()
def spectrogram_for(extractor: LoopSVDDFeatureExtractor, result: ScoredLoop, threshold: float | None) -> np.ndarray:
    """The loop's log-mel (the encoder's own front end) with its per-window scores."""
    decoded = decode_file(result.file, extractor.sampling_rate, max_seconds=result.duration_s + 1.0)
    if decoded.waveform is None:  # changed on disk since it was scored
        raise AudioDecodeError(f"{result.file}: {decoded.reason}")
    wave = decoded.waveform
    kind = "htk" if extractor.fusion else "slaney"
    log_mel = extractor.log_mel(torch.from_numpy(wave)[None], kind)[0].numpy()
    return spectrogram_image(
        log_mel,
        extractor.hop_length / extractor.sampling_rate,
        result.window_start_s,
        result.window_scores,
        float(extractor.max_length_s),
        threshold,
        title=f"{result.name}: score {result.score:.4g} ({result.verdict})",
        time_scores=None if result.time_scores is None else (result.time_scores_s, result.time_scores),
    )


def distribution_for(model: LoopSVDDModel, results: list[ScoredLoop], selected: int) -> np.ndarray:
    """Scores of the held-out normal loops with every scored loop marked and `selected` highlighted."""
    marks = [(f"{r.name} ({r.score:.3g})", r.score) for r in results]
    return score_distribution_image(
        model.config.calibration_scores, model.config.threshold, marks=marks, highlight=selected
    )


def model_panel(source: str, model: LoopSVDDModel, limits: Limits) -> str:
    """Markdown: which encoder and threshold the model uses, and the request limits."""
    cfg = model.config
    n_cal = len(cfg.calibration_scores or [])
    if cfg.threshold is None:
        thr = "none: this model is not calibrated, so loops are ranked but get no verdict"
    else:
        thr = f"{cfg.threshold:.6g} ({100 * cfg.threshold_quantile:g}th percentile of {n_cal} held-out normal scores)"
    warning = "" if cfg.encoder_pretrained else "\n\n**Warning: the encoder has random weights** - a pipeline demo."
    return (
        f"### Model\n`{source}`\n\n"
        f"- **Encoder**: {describe_encoder(cfg)}\n"
        f"- **Head**: Deep SVDD ({cfg.objective}), latent size {cfg.latent_dim}\n"
        f"- **Threshold**: {thr}\n"
        f"- **Limits**: up to {limits.max_files} files per request, {limits.max_file_mb:g} MB and "
        f"{limits.max_seconds:g} s per loop{warning}"
    )
