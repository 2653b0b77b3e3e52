"""Scoring audio files with a detector: decode (in a background thread), batch, score through
`LoopSVDDModel.forward`, rank, report. Files too long to hold are streamed window by window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.decode import AudioDecodeError, find_audio_files, iter_segments
from ..audio.decoding import Decoded, decode_file
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from .embedding import ScoredLoop, forward_waveforms, percentile_of, score_waveforms, verdict

__all__ = ["ScoredLoop", "percentile_of", "score_files", "score_long_file", "score_paths", "verdict"]

STREAM_ABOVE_S = 120.0  # longer files are decoded and embedded window by window (bounded memory)


Decoder = Callable[[Path, int], Decoded]


def decode_for_scoring(path: Path, sampling_rate: int) -> Decoded:
    """[`decode_file`], files above `STREAM_ABOVE_S` left to be streamed."""
    return decode_file(path, sampling_rate, name=str(path), stream_above_s=STREAM_ABOVE_S)


def _decoded(files: list[Path], sampling_rate: int, decode: Decoder = decode_for_scoring) -> Iterator[Decoded]:
    """Decode files a few ahead of the consumer, so decoding overlaps with the encoder."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [pool.submit(decode, f, sampling_rate) for f in files[:4]]
        for i in range(len(files)):
            result = pending[i].result()
            if i + 4 < len(files):
                pending.append(pool.submit(decode, files[i + 4], sampling_rate))
            pending[i] = None  # free the waveform once consumed
            yield result


@torch.inference_mode()
def score_long_file(
    model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, path: Path, duration_s: float, windows_per_step: int = 4
) -> ScoredLoop:
    """Score a long file window by window through `model.forward` (each window a loop of its own): at most
    `windows_per_step` windows are decoded and held at once. Gives the score of the whole-file path (the mean of
    the window embeddings, scored by the model's head)."""
    sr, w = extractor.sampling_rate, extractor.nb_max_samples
    starts = extractor.window_starts(int(round(duration_s * sr)))
    embeddings, window_scores, begin_s, chunk = [], [], [], []
    segments = iter_segments(path, sr, [st / sr for st in starts], w / sr)
    for start, wave in zip(starts, segments, strict=True):
        if wave.size:
            chunk.append(wave[:w])
            begin_s.append(start / sr)
        if len(chunk) == windows_per_step or (start == starts[-1] and chunk):
            out = forward_waveforms(model, extractor, chunk, sr)
            embeddings.append(out.embedding)
            window_scores += out.anomaly_score.float().cpu().tolist()
            chunk = []
    if not embeddings:
        raise AudioDecodeError(f"{path}: the audio has no samples")
    clip_emb = torch.cat(embeddings).mean(0, keepdim=True)
    score = float(model.score_embeddings(clip_emb)[0][0])
    record = ScoredLoop(str(path), duration_s, score, window_scores=window_scores, window_start_s=begin_s)
    record.embedding = clip_emb[0].float().cpu().numpy()
    return record.judged(model.config.threshold, model.config.calibration_scores)


def score_paths(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    files: list[Path],
    batch_size: int = 8,
    decode: Decoder = decode_for_scoring,
    names: list[str] | None = None,
) -> tuple[list[ScoredLoop], list[tuple[Path, str]]]:
    """Score `files` (bad ones are reported, not fatal): (records, most anomalous first; `(file, reason)` errors).
    `decode` may refuse more files (e.g. the demo's size limits); `names` label the records."""
    shown = dict(zip(files, names or [p.name for p in files], strict=True))
    results: list[ScoredLoop] = []
    errors: list[tuple[Path, str]] = []
    batch: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        waves, paths = [w for _, w in batch], [str(p) for p, _ in batch]
        results.extend(score_waveforms(model, extractor, waves, extractor.sampling_rate, batch_size, paths))
        batch.clear()

    for path, decoded in zip(files, _decoded(files, extractor.sampling_rate, decode), strict=True):
        error = decoded.reason
        if decoded.stream_s is not None:
            try:
                results.append(score_long_file(model, extractor, path, decoded.stream_s))
                continue
            except AudioDecodeError as err:
                error = str(err).removeprefix(f"{path}: ")
        if error is not None:
            errors.append((path, error))
            continue
        batch.append((path, decoded.waveform))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    for r in results:
        r.name = shown[Path(r.file)]
    results.sort(key=lambda r: r.score, reverse=True)
    return results, errors


def score_files(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    inputs: list[str | Path],
    batch_size: int = 8,
) -> dict[str, Any]:
    """Score every audio file in `inputs` (files or folders). Bad files are reported, not fatal.

    Returns `{"results": [...ranked, most anomalous first], "errors": [{"file", "error"}], "threshold": ...}`,
    each result a `ScoredLoop.to_json()`.
    """
    results, errors = score_paths(model, extractor, find_audio_files(inputs), batch_size)
    return {
        "threshold": model.config.threshold,
        "results": [r.to_json() for r in results],
        "errors": [{"file": str(path), "error": reason} for path, reason in errors],
    }
