"""Scoring audio files with a detector: decode (in a background thread), batch, score, rank, report."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .audio import AudioDecodeError, find_audio_files, load_audio
from .embedding import score_waveforms
from .feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .modeling_loop_svdd import LoopSVDDModel


def percentile_of(score: float, calibration_scores: list[float] | None) -> float | None:
    """Percentage of held-out normal loops scoring at or below `score`."""
    if not calibration_scores:
        return None
    return 100.0 * bisect.bisect_right(calibration_scores, score) / len(calibration_scores)


def verdict(score: float, threshold: float | None) -> str:
    if threshold is None:
        return "uncalibrated"
    return "anomalous" if score > threshold else "normal"


def _decoded(files: list[Path], sampling_rate: int) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """Decode files one ahead of the consumer, so decoding overlaps with the encoder."""

    def job(path: Path) -> tuple[Path, np.ndarray | None, str | None]:
        try:
            return path, load_audio(path, sampling_rate), None
        except AudioDecodeError as err:
            return path, None, str(err).removeprefix(f"{path}: ")

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [pool.submit(job, f) for f in files[:4]]
        for i in range(len(files)):
            result = pending[i].result()
            if i + 4 < len(files):
                pending.append(pool.submit(job, files[i + 4]))
            pending[i] = None  # free the waveform once consumed
            yield result


def score_files(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    inputs: list[str | Path],
    batch_size: int = 8,
) -> dict[str, Any]:
    """Score every audio file in `inputs` (files or folders). Bad files are reported, not fatal.

    Returns `{"results": [...ranked, most anomalous first], "errors": [{"file", "error"}], "threshold": ...}`.
    """
    files = find_audio_files(inputs)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    batch: list[tuple[Path, np.ndarray]] = []
    cfg = model.config

    def flush() -> None:
        scores = score_waveforms(model, extractor, [w for _, w in batch], extractor.sampling_rate, batch_size)
        for (path, wave), s in zip(batch, scores, strict=True):
            results.append(
                {
                    "file": str(path),
                    "score": s.score,
                    "verdict": verdict(s.score, cfg.threshold),
                    "percentile": percentile_of(s.score, cfg.calibration_scores),
                    "duration_s": len(wave) / extractor.sampling_rate,
                    "windows": [
                        {"start_s": t, "score": v} for t, v in zip(s.window_start_s, s.window_scores, strict=True)
                    ],
                }
            )
        batch.clear()

    for path, wave, error in _decoded(files, extractor.sampling_rate):
        if error is not None:
            errors.append({"file": str(path), "error": error})
            continue
        batch.append((path, wave))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    results.sort(key=lambda r: r["score"], reverse=True)
    return {"threshold": cfg.threshold, "results": results, "errors": errors}
