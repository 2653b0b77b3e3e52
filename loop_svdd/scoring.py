"""Scoring audio files with a detector: decode (in a background thread), batch, score, rank, report."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import AudioDecodeError, audio_duration, find_audio_files, iter_segments, load_audio
from .embedding import LoopScore, embed_waveforms, score_waveforms
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


STREAM_ABOVE_S = 120.0  # longer files are decoded and embedded window by window (bounded memory)


class LongFile:
    """A file too long to hold in memory: scored by streaming its windows."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s


def _decoded(files: list[Path], sampling_rate: int) -> Iterator[tuple[Path, np.ndarray | LongFile | None, str | None]]:
    """Decode files a few ahead of the consumer, so decoding overlaps with the encoder."""

    def job(path: Path) -> tuple[Path, np.ndarray | LongFile | None, str | None]:
        try:
            duration = audio_duration(path) if path.is_file() and path.stat().st_size > 0 else None
            if duration is not None and duration > STREAM_ABOVE_S:
                return path, LongFile(duration), None
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


@torch.inference_mode()
def score_long_file(
    model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, path: Path, duration_s: float, windows_per_step: int = 4
) -> LoopScore:
    """Score a long file window by window: at most `windows_per_step` windows are decoded and held at once.
    Gives the score of the whole-file path (mean of the window embeddings)."""
    sr, w = extractor.sampling_rate, extractor.nb_max_samples
    starts = extractor.window_starts(int(round(duration_s * sr)))
    embeddings, begin_s, chunk = [], [], []
    segments = iter_segments(path, sr, [st / sr for st in starts], w / sr)
    for start, wave in zip(starts, segments, strict=True):
        if wave.size:
            chunk.append(wave[:w])
            begin_s.append(start / sr)
        if len(chunk) == windows_per_step or (start == starts[-1] and chunk):
            embeddings.append(embed_waveforms(model, extractor, chunk, sr)[0])
            chunk = []
    if not embeddings:
        raise AudioDecodeError(f"{path}: the audio has no samples")
    window_emb = torch.cat(embeddings)
    clip_emb = window_emb.mean(0, keepdim=True)
    score = model.score_embeddings(clip_emb)[0]
    win_scores = model.score_embeddings(window_emb)[0]
    return LoopScore(float(score[0]), clip_emb[0].float().cpu().numpy(), win_scores.float().cpu().tolist(), begin_s)


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

    def add(path: Path, duration_s: float, s: LoopScore) -> None:
        windows = [{"start_s": t, "score": v} for t, v in zip(s.window_start_s, s.window_scores, strict=True)]
        results.append(
            {
                "file": str(path),
                "score": s.score,
                "verdict": verdict(s.score, cfg.threshold),
                "percentile": percentile_of(s.score, cfg.calibration_scores),
                "duration_s": duration_s,
                "windows": windows,
                "time_scores": s.time_scores,
                "time_scores_s": s.time_scores_s,
            }
        )

    def flush() -> None:
        scores = score_waveforms(model, extractor, [w for _, w in batch], extractor.sampling_rate, batch_size)
        for (path, wave), s in zip(batch, scores, strict=True):
            add(path, len(wave) / extractor.sampling_rate, s)
        batch.clear()

    for path, wave, error in _decoded(files, extractor.sampling_rate):
        if error is None and isinstance(wave, LongFile):
            try:
                add(path, wave.duration_s, score_long_file(model, extractor, path, wave.duration_s))
                continue
            except AudioDecodeError as err:
                error = str(err).removeprefix(f"{path}: ")
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
