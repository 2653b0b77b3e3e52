"""Fitting the memory bank of normal time steps behind `time_scores` (docs/localisation.md): normal loops go through
the embedding core (`encode_loops`), their time steps that hold audio fill a coreset per source
(`time_scoring.fit_time_scorer`, the maths), and the model keeps the scorer and records it in its config."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.loop_svdd.time_scoring import (
    DEFAULT_BANK_SIZE,
    DEFAULT_SOURCES,
    DEFAULT_STEPS,
    TimeScorer,
    content_s,
    fit_time_scorer,
    fold_time_scores,
)
from .embedding import EncodedLoops, batches, encode_loops

__all__ = ["build_time_bank", "content_steps", "scorer_curves"]


def content_steps(enc: EncodedLoops, source: str, window_s: float, padding: str) -> list[torch.Tensor]:
    """Per loop, its time steps that hold audio (not the silence after a short loop's repeats): `(n, D)` each."""
    grid = enc.grids[source]
    centres = (torch.arange(grid.shape[1]) + 0.5) * window_s / grid.shape[1]
    rows = [[] for _ in range(len(enc.duration_s))]
    for w in range(grid.shape[0]):
        clip = int(enc.clip_index[w])
        rows[clip].append(grid[w][centres < content_s(float(enc.duration_s[clip]), window_s, padding)])
    return [torch.cat(r) for r in rows]


def normal_steps(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waves: Iterable[np.ndarray],
    sources: tuple[str, ...],
    loops_per_batch: int,
) -> dict[str, list[torch.Tensor]]:
    """`{source: [the time steps of each loop that hold audio]}`, `loops_per_batch` loops per encoder pass."""
    window_s = float(extractor.max_length_s)
    per_loop: dict[str, list[torch.Tensor]] = {s: [] for s in sources}
    for batch in batches(waves, loops_per_batch):
        enc = encode_loops(model, extractor, batch, list(sources))
        for source in sources:
            per_loop[source] += content_steps(enc, source, window_s, extractor.padding)
    return per_loop


@torch.no_grad()
def build_time_bank(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    waves: Iterable[np.ndarray],
    seed: int = 0,
    bank_size: int = DEFAULT_BANK_SIZE,
    sources: tuple[str, ...] = DEFAULT_SOURCES,
    steps: int = DEFAULT_STEPS,
    loops_per_batch: int = 8,
) -> TimeScorer:
    """Fill the model's memory bank from normal loops (mono at the extractor's rate, any iterable: decoded a
    batch at a time) and record it in `config.time_scoring`: what training calls. Returns the scorer (also set as
    `model.time_scorer`)."""
    if extractor.fusion:
        raise ValueError("time-resolved scores need an unfused (windowed) encoder")
    per_loop = normal_steps(model, extractor, waves, sources, loops_per_batch)
    if not per_loop[sources[0]]:
        raise ValueError("no loops to fill the memory bank")
    scorer = fit_time_scorer(model.config.audio_config, per_loop, bank_size, steps, seed=seed)
    model.time_scorer = scorer.to(model.device)
    model.config.time_scoring = {
        "sources": list(sources),
        "bank_sizes": [len(scorer.bank(s)) for s in sources],
        "steps": int(steps),
        "window_s": float(extractor.max_length_s),
        "padding": extractor.padding,
    }
    return scorer


def scorer_curves(
    model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, waves: list[np.ndarray], scorer: TimeScorer
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per loop, `(scores, times)` of `scorer` (a bank other than the model's own, e.g. the spectral baseline's)
    on the loop's own timeline: one encoder pass for its sources, folded as the model folds its time scores."""
    enc = encode_loops(model, extractor, waves, list(scorer.sources))
    window = scorer.score_grids(enc.grids)
    window_s = float(extractor.max_length_s)
    return fold_time_scores(window, enc.clip_index, enc.start_s, enc.duration_s, window_s, extractor.padding)
