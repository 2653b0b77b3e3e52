"""Scoring loops with a detector: decode (in a background thread), batch, score through `LoopSVDDModel.forward`
(the embedding core), judge against the threshold, add the loop-aware time scores, rank, report. Files too long
to hold are streamed window by window; precomputed embeddings are scored by the head alone (`model_scores`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.decode import AudioDecodeError, find_audio_files, iter_segments
from ..audio.decoding import Decoded, decode_file
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from .embedding import batches, forward_waveforms
from .records import ScoredLoop, percentile_of, records_of, verdict
from .repetition import combine, loop_curve

__all__ = [
    "ScoredLoop",
    "model_scores",
    "percentile_of",
    "score_files",
    "score_long_file",
    "score_paths",
    "score_waveforms",
    "verdict",
    "with_loop_time_scores",
]


def score_waveforms(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waveforms: Iterable[np.ndarray],
    sampling_rate: int,
    batch_size: int = 8,
    files: list[str] | None = None,
    beats_s: list[float | None] | None = None,
    loop_aware: bool = True,
) -> list[ScoredLoop]:
    """Score loops through `model.forward`, `batch_size` loops at a time (their windows go through the encoder
    together), judged against the model's threshold. Models with a memory bank also get loop-aware time scores
    (`with_loop_time_scores`; `beats_s`: each loop's beat in seconds when its tempo is known; `loop_aware=False`:
    the bank's own curves)."""
    waves = list(waveforms)
    files = files or [f"loop-{i}" for i in range(len(waves))]
    beats = list(beats_s) if beats_s is not None else [None] * len(waves)
    results: list[ScoredLoop] = []
    cfg = model.config
    for batch, names in zip(batches(waves, batch_size), batches(files, batch_size), strict=True):
        out = forward_waveforms(model, extractor, batch, sampling_rate)
        durations = [len(w) / sampling_rate for w in batch]
        results += [r.judged(cfg.threshold, cfg.calibration_scores) for r in records_of(out, names, durations)]
    for record, wave, beat in zip(results, waves, beats, strict=True):
        if loop_aware:
            with_loop_time_scores(record, wave, sampling_rate, beat)
    return results


def with_loop_time_scores(
    record: ScoredLoop, wave: np.ndarray, sampling_rate: int, beat_s: float | None = None
) -> ScoredLoop:
    """Replace a record's bank time scores by the loop-aware ones (`repetition.combine`: 10 ms steps) when the
    loop repeats, and say which were used (`time_method`); records without time scores are left as they are."""
    if record.time_scores is None:
        return record
    curve = loop_curve(wave, sampling_rate, beat_s)
    scores, times, method = combine(curve, np.asarray(record.time_scores), np.asarray(record.time_scores_s))
    record.time_scores, record.time_scores_s = scores.tolist(), times.tolist()
    record.time_method, record.period_s = method, curve.period_s
    return record


@torch.inference_mode()
def model_scores(model: LoopSVDDModel, embeddings: np.ndarray) -> np.ndarray:
    """Anomaly scores `(n,)` of precomputed clip embeddings `(n, D)` (the head alone: no encoder pass)."""
    return model.score_embeddings(torch.from_numpy(embeddings).to(model.device))[0].float().cpu().numpy()


# -- files: decoded ahead of the encoder, long ones streamed ----------------------------------------------------
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
