"""Batched embedding and scoring of loops, and the embedding cache of a corpus.

The encoder is frozen, so a corpus is embedded once: `embed_dataset` is a `datasets` map whose fingerprint is
made of the dataset's fingerprint, the encoder weights and the extractor settings; a second call with the same
three loads the cached Arrow file instead of running the encoder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import datasets
import numpy as np
import torch

from .data import audio_column, waveform_of, with_decoding
from .feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .localisation import loop_time_scores, window_time_scores
from .modeling_loop_svdd import LoopSVDDModel

# Windows per encoder forward: small batches are the fastest on CPU (cache-bound: measured 0.29-0.36 s/window
# at 4 vs 0.35-0.38 s at 16 for HTSAT-base on 2 cores); GPUs want large ones. Either way memory stays bounded.
MAX_WINDOWS_PER_FORWARD = {"cpu": 4}
DEFAULT_MAX_WINDOWS = 64


def encoder_fingerprint(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor) -> str:
    """A hash of the encoder weights and the extractor settings (what an embedding depends on)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    settings = {k: v for k, v in extractor.to_dict().items() if k not in ("max_windows_per_batch",)}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@dataclass
class LoopScore:
    """The score of one loop and of each of its windows."""

    score: float
    embedding: np.ndarray
    window_scores: list[float] = field(default_factory=list)
    window_start_s: list[float] = field(default_factory=list)
    time_scores: list[float] | None = None  # on the loop's own timeline (models with a memory bank)
    time_scores_s: list[float] | None = None


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@torch.inference_mode()
def embed_waveforms(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waveforms: list[np.ndarray],
    sampling_rate: int,
    max_windows: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clip embeddings `(n, D)` of a batch of loops, plus the window embeddings and their bookkeeping.

    Windows go through the encoder `max_windows` at a time, so memory is bounded whatever the loop lengths.
    """
    max_windows = max_windows or MAX_WINDOWS_PER_FORWARD.get(model.device.type, DEFAULT_MAX_WINDOWS)
    inputs = extractor(waveforms, sampling_rate=sampling_rate, device=model.device)
    feats, longer = inputs["input_features"], inputs["is_longer"]
    chunks, times = [], []
    for i in range(0, len(feats), max_windows):
        pooled, time_scores = window_time_scores(model, feats[i : i + max_windows], longer[i : i + max_windows])
        chunks.append(
            pooled
            if pooled is not None
            else model.get_window_embeddings(feats[i : i + max_windows], longer[i : i + max_windows])
        )
        times += [] if time_scores is None else [time_scores]
    window_emb = torch.cat(chunks)
    clip_emb = model.pool_windows(window_emb, inputs["window_clip_index"])
    time_scores, time_scores_s = loop_time_scores(
        model,
        torch.cat(times) if times else None,
        inputs["window_clip_index"],
        inputs["window_start_s"],
        inputs["clip_duration_s"],
    )
    return clip_emb, {
        "window_embeddings": window_emb,
        "window_clip_index": inputs["window_clip_index"],
        "window_start_s": inputs["window_start_s"],
        "time_scores": time_scores,
        "time_scores_s": time_scores_s,
    }


@torch.inference_mode()
def score_waveforms(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waveforms: Iterable[np.ndarray],
    sampling_rate: int,
    batch_size: int = 8,
) -> list[LoopScore]:
    """Score loops in batches (windows of many loops go through the encoder together)."""
    results: list[LoopScore] = []
    for batch in _chunks(list(waveforms), batch_size):
        clip_emb, windows = embed_waveforms(model, extractor, batch, sampling_rate)
        scores, _ = model.score_embeddings(clip_emb)
        win_scores, _ = model.score_embeddings(windows["window_embeddings"])
        idx = windows["window_clip_index"].cpu().numpy()
        for i in range(len(batch)):
            sel = idx == i
            results.append(
                LoopScore(
                    score=float(scores[i]),
                    embedding=clip_emb[i].float().cpu().numpy(),
                    window_scores=win_scores[torch.from_numpy(sel)].float().cpu().tolist(),
                    window_start_s=windows["window_start_s"][torch.from_numpy(sel)].cpu().tolist(),
                    time_scores=None if windows["time_scores"] is None else windows["time_scores"][i].tolist(),
                    time_scores_s=None if windows["time_scores_s"] is None else windows["time_scores_s"][i].tolist(),
                )
            )
    return results


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
