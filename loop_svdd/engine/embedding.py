"""The one batched embedding core: loops -> window features -> the model. Every inference pass of the encoder
outside the models and the exported graphs goes through here; the caches, streams, packs, scoring and the memory
bank are thin callers.

- `forward_waveforms`: `model.forward` on raw loops (embeddings, scores, window and time scores);
- `embed_waveforms`: their clip embeddings and window bookkeeping;
- `clip_embeddings`: clip embeddings as a float32 array (what the caches store);
- `embed_stream`: clip embeddings of a streamed corpus, a batch at a time;
- `encode_loops`: window embeddings and time grids (hidden states), for fitting a memory bank.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..audio.corpora import waveform_of
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel, LoopSVDDOutput
from ..models.loop_svdd.time_scoring import encode_windows

__all__ = [
    "EncodedLoops",
    "batches",
    "clip_embeddings",
    "embed_stream",
    "embed_waveforms",
    "encode_loops",
    "forward_waveforms",
    "window_features",
]


def batches(items: Iterable, size: int) -> Iterator[list]:
    """`items` in lists of `size` (the last one shorter), consumed lazily."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def window_features(
    model: Any, extractor: LoopSVDDFeatureExtractor, waveforms: list[np.ndarray], sampling_rate: int
) -> dict[str, torch.Tensor]:
    """The extractor's window features of `waveforms`, on the model's device."""
    return extractor(waveforms, sampling_rate=sampling_rate, device=model.device)


@torch.inference_mode()
def forward_waveforms(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waveforms: list[np.ndarray],
    sampling_rate: int,
    max_windows: int | None = None,
) -> LoopSVDDOutput:
    """`model.forward` on raw loops (features from `extractor`); windows go through the encoder `max_windows` at
    a time, so memory is bounded whatever the loop lengths. `model` may be a backend's stand-in."""
    inputs = window_features(model, extractor, waveforms, sampling_rate)
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


def clip_embeddings(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, waves: list[np.ndarray]) -> np.ndarray:
    """`(n, D)` float32 clip embeddings of loops at the extractor's rate (one batch)."""
    emb, _ = embed_waveforms(model, extractor, waves, extractor.sampling_rate)
    return emb.float().cpu().numpy()


def embed_stream(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    stream: Iterable[dict],
    column: str,
    batch_size: int = 8,
) -> Iterator[tuple[dict, np.ndarray]]:
    """Embed a streamed corpus (`load_corpus(..., streaming=True)`, e.g. larger than memory or disk): yields
    `(metadata of the row, embedding)` batch by batch, holding one batch of audio at a time."""
    for batch in batches(stream, batch_size):
        emb = clip_embeddings(model, extractor, [waveform_of(row, column) for row in batch])
        for row, e in zip(batch, emb, strict=True):
            yield {k: v for k, v in row.items() if k != column}, e


@dataclass
class EncodedLoops:
    """Encoder outputs of a batch of loops, window by window."""

    pooled: torch.Tensor  # (W, D) window embeddings
    grids: dict[str, torch.Tensor]  # source -> (W, T, D)
    clip_index: torch.Tensor  # (W,)
    start_s: torch.Tensor  # (W,)
    duration_s: torch.Tensor  # (n_loops,)


@torch.no_grad()
def encode_loops(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waves: list[np.ndarray],
    sources: list[str],
    max_windows: int = 4,
) -> EncodedLoops:
    """Window embeddings and time grids of `waves` (mono at the extractor's rate), `max_windows` per forward."""
    inputs = window_features(model, extractor, waves, extractor.sampling_rate)
    feats, longer = inputs["input_features"], inputs["is_longer"]
    pooled, grids = [], {s: [] for s in sources}
    for i in range(0, len(feats), max_windows):
        p, g = encode_windows(model, feats[i : i + max_windows], longer[i : i + max_windows], sources)
        pooled.append(p)
        for s in sources:
            grids[s].append(g[s])
    durations = torch.tensor([len(w) / extractor.sampling_rate for w in waves])
    return EncodedLoops(
        torch.cat(pooled),
        {s: torch.cat(v) for s, v in grids.items()},
        inputs["window_clip_index"].cpu(),
        inputs["window_start_s"].cpu(),
        durations,
    )
