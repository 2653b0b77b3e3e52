"""Batched embedding and scoring of loops, and the embedding cache of a corpus.

The encoder is frozen, so a corpus is embedded once: `embed_dataset` is a `datasets` map whose fingerprint is
made of the dataset's fingerprint, the encoder weights and the extractor settings; a second call with the same
three loads the cached Arrow file instead of running the encoder.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch

from ..audio.corpora import audio_column, waveform_of, with_decoding
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import MAX_WINDOWS_PER_FORWARD, LoopSVDDModel, LoopSVDDOutput
from .repetition import combine, loop_curve, top_spans

__all__ = ["MAX_WINDOWS_PER_FORWARD", "ScoredLoop", "embed_dataset", "embed_waveforms", "score_waveforms"]


def encoder_fingerprint(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor) -> str:
    """A hash of the encoder weights and the extractor settings (what an embedding depends on)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    # Settings that do not change an embedding are left out: the batch size, and what saving adds (`auto_map`,
    # so that a model saved and reloaded keeps the cache of the corpus it was trained on).
    ignored = ("max_windows_per_batch", "auto_map", "processor_class")
    settings = {k: v for k, v in extractor.to_dict().items() if k not in ignored}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@dataclass
class ScoredLoop:
    """A scored loop: the one record that scoring, the CLI and the demo share.

    ``window_scores`` / ``window_start_s``: one score per 10 s window (one window for loops up to 10 s and for
    fused encoders); ``embedding``: the clip embedding, when kept; ``name``: what to show (default: the file's).
    """

    file: str
    duration_s: float
    score: float
    percentile: float | None = None
    verdict: str = "uncalibrated"
    window_scores: list[float] = field(default_factory=list)
    window_start_s: list[float] = field(default_factory=list)
    time_scores: list[float] | None = None  # on the loop's own timeline (models with a memory bank)
    time_scores_s: list[float] | None = None
    time_method: str | None = None  # "repetition" (loop-aware) or "bank" (the loop does not repeat)
    period_s: float | None = None  # the loop's period found for the repetition scores
    embedding: np.ndarray | None = field(default=None, repr=False)
    name: str = ""

    def __post_init__(self) -> None:
        self.file = str(self.file)
        self.name = self.name or Path(self.file).name

    def judged(self, threshold: float | None, calibration_scores: list[float] | None) -> ScoredLoop:
        """Set the verdict and percentile from a model's threshold and held-out normal scores."""
        self.verdict = verdict(self.score, threshold)
        self.percentile = percentile_of(self.score, calibration_scores)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Every field but the embedding (JSON-able; ``ScoredLoop(**d)`` rebuilds it)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "embedding"}

    def to_json(self) -> dict[str, Any]:
        """What `loop-svdd score --json` prints for a loop."""
        windows = [{"start_s": t, "score": v} for t, v in zip(self.window_start_s, self.window_scores, strict=True)]
        return {
            "file": self.file,
            "score": self.score,
            "verdict": self.verdict,
            "percentile": self.percentile,
            "duration_s": self.duration_s,
            "windows": windows,
            "time_scores": self.time_scores,
            "time_scores_s": self.time_scores_s,
            "time_method": self.time_method,
            "period_s": self.period_s,
            "time_spans": top_spans(self.time_scores, self.time_scores_s) if self.time_scores else [],
        }


def verdict(score: float, threshold: float | None) -> str:
    if threshold is None:
        return "uncalibrated"
    return "anomalous" if score > threshold else "normal"


def percentile_of(score: float, calibration_scores: list[float] | None) -> float | None:
    """Percentage of held-out normal loops scoring at or below `score`."""
    if not calibration_scores:
        return None
    return 100.0 * bisect.bisect_right(calibration_scores, score) / len(calibration_scores)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@torch.inference_mode()
def forward_waveforms(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waveforms: list[np.ndarray],
    sampling_rate: int,
    max_windows: int | None = None,
) -> LoopSVDDOutput:
    """`model.forward` on raw loops (features from `extractor`); windows go through the encoder `max_windows` at
    a time, so memory is bounded whatever the loop lengths."""
    inputs = extractor(waveforms, sampling_rate=sampling_rate, device=model.device)
    return model(**inputs, max_windows=max_windows, return_dict=True)


def embed_waveforms(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waveforms: list[np.ndarray],
    sampling_rate: int,
    max_windows: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clip embeddings `(n, D)` of a batch of loops, plus the window embeddings and their bookkeeping."""
    out = forward_waveforms(model, extractor, waveforms, sampling_rate, max_windows)
    return out.embedding, {
        "window_embeddings": out.window_embeddings,
        "window_clip_index": out.window_clip_index,
        "window_start_s": out.window_start_s,
        "time_scores": out.time_scores,
        "time_scores_s": out.time_scores_s,
    }


def records_of(output: LoopSVDDOutput, files: list[str], durations: list[float], keep_embedding: bool = True):
    """One `ScoredLoop` per loop of a `forward` output (verdicts are set by `ScoredLoop.judged`)."""
    idx = output.window_clip_index.cpu()
    starts = output.window_start_s
    records = []
    for i, (file, duration) in enumerate(zip(files, durations, strict=True)):
        sel = idx == i
        records.append(
            ScoredLoop(
                file=file,
                duration_s=duration,
                score=float(output.anomaly_score[i]),
                window_scores=output.window_scores.cpu()[sel].float().tolist(),
                window_start_s=[0.0] if starts is None else starts.cpu()[sel].tolist(),
                time_scores=None if output.time_scores is None else output.time_scores[i].tolist(),
                time_scores_s=None if output.time_scores_s is None else output.time_scores_s[i].tolist(),
                embedding=output.embedding[i].float().cpu().numpy() if keep_embedding else None,
            )
        )
    return records


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
    for batch, names in zip(_chunks(waves, batch_size), _chunks(files, batch_size), strict=True):
        out = forward_waveforms(model, extractor, batch, sampling_rate)
        durations = [len(w) / sampling_rate for w in batch]
        results += [r.judged(cfg.threshold, cfg.calibration_scores) for r in records_of(out, names, durations)]
    for record, wave, beat in zip(results, waves, beats, strict=True):
        if loop_aware:
            with_loop_time_scores(record, wave, sampling_rate, beat)
    return results


def with_loop_time_scores(record: ScoredLoop, wave: np.ndarray, sampling_rate: int, beat_s: float | None = None):
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
    """Anomaly scores `(n,)` of precomputed clip embeddings `(n, D)` (no encoder pass)."""
    return model.score_embeddings(torch.from_numpy(embeddings).to(model.device))[0].float().cpu().numpy()


def embed_dataset(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    dataset: datasets.Dataset,
    batch_size: int = 8,
    progress: bool = True,
) -> np.ndarray:
    """`(len(dataset), D)` clip embeddings of every row, cached by a fingerprinted `datasets` map."""
    column = audio_column(dataset)
    decoded = with_decoding(dataset, extractor.sampling_rate)
    fingerprint = hashlib.sha256(f"{decoded._fingerprint}-{encoder_fingerprint(model, extractor)}".encode())

    def embed_batch(batch: dict) -> dict:
        rows = [{column: a} for a in batch[column]]
        waves = [waveform_of(r, column) for r in rows]
        emb, _ = embed_waveforms(model, extractor, waves, extractor.sampling_rate)
        return {"embedding": emb.float().cpu().numpy()}

    if not progress:
        datasets.disable_progress_bars()
    try:
        embedded = decoded.map(
            embed_batch,
            batched=True,
            batch_size=batch_size,
            remove_columns=decoded.column_names,
            features=datasets.Features({"embedding": datasets.Sequence(datasets.Value("float32"))}),
            new_fingerprint=fingerprint.hexdigest()[:32],
            desc="Embedding loops",
        )
    finally:
        if not progress:
            datasets.enable_progress_bars()
    return np.asarray(embedded.with_format("numpy")["embedding"], dtype=np.float32).reshape(len(dataset), -1)


def embed_stream(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    stream: Iterable[dict],
    column: str,
    batch_size: int = 8,
) -> Iterator[tuple[dict, np.ndarray]]:
    """Embed a streamed corpus (`load_corpus(..., streaming=True)`, e.g. larger than memory or disk): yields
    `(metadata of the row, embedding)` batch by batch, holding one batch of audio at a time."""
    batch: list[dict] = []

    def flush() -> Iterator[tuple[dict, np.ndarray]]:
        waves = [waveform_of(row, column) for row in batch]
        emb, _ = embed_waveforms(model, extractor, waves, extractor.sampling_rate)
        for row, e in zip(batch, emb.float().cpu().numpy(), strict=True):
            yield {k: v for k, v in row.items() if k != column}, e
        batch.clear()

    for row in stream:
        batch.append(row)
        if len(batch) == batch_size:
            yield from flush()
    if batch:
        yield from flush()
