"""The speed reference of `loop-svdd benchmark speed`: the naive transformers pipeline a user writes from the
transformers docs (`ClapFeatureExtractor`, then `ClapAudioModel` one 10 s window at a time, fp32), and the
instruments that time and count the encoder.

Not a road for callers: it exists to be measured against. Score loops with `engine.embedding` (`score_waveforms`),
which batches windows and is what `loop-svdd score` runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..settings import SAMPLING_RATE


def clap_front_end(extractor: LoopSVDDFeatureExtractor) -> Any:
    """The `transformers.ClapFeatureExtractor` computing the same windows as `extractor` (unfused)."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(
        frequency_min=extractor.frequency_min,
        frequency_max=extractor.frequency_max,
        truncation="rand_trunc",
        padding="repeatpad",
    )


def window_slices(extractor: LoopSVDDFeatureExtractor, loops: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Every loop cut into the 10 s windows `extractor` would make of it."""
    w = extractor.nb_max_samples
    return [[loop[s : s + w] for s in extractor.window_starts(len(loop))] for loop in loops]


@torch.inference_mode()
def run_naive(model: LoopSVDDModel, loops: list[np.ndarray], clap_extractor: Any) -> tuple[np.ndarray, float]:
    """One window at a time through `ClapFeatureExtractor` and `ClapAudioModel` (fp32), mean-pooled, scored;
    returns (scores, seconds)."""
    helper = LoopSVDDFeatureExtractor.from_model_config(model.config)
    start = time.perf_counter()
    scores = []
    for windows in window_slices(helper, loops):
        embs = []
        for window in windows:
            feats = clap_extractor(window, sampling_rate=SAMPLING_RATE, return_tensors="pt")
            embs.append(model.encoder(input_features=feats["input_features"].float()).pooler_output)
        scores.append(model.score_embeddings(torch.cat(embs).mean(0, keepdim=True))[0].item())
    return np.array(scores), time.perf_counter() - start


@contextmanager
def timed_encoder(model: LoopSVDDModel, totals: dict[str, float]) -> Iterator[dict[str, float]]:
    """Accumulate the wall time spent inside the encoder's forward pass into `totals["encoder_s"]`."""
    encoder = model.encoder
    original = encoder.forward

    def forward(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            if torch.cuda.is_available() and next(encoder.parameters(), torch.empty(0)).is_cuda:
                torch.cuda.synchronize()
            totals["encoder_s"] = totals.get("encoder_s", 0.0) + time.perf_counter() - start

    encoder.forward = forward
    try:
        yield totals
    finally:
        encoder.forward = original


def encoder_flops_per_window(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor) -> float:
    """FLOPs of one 10 s window through the encoder (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    feats = extractor(np.zeros(extractor.nb_max_samples, np.float32) + 1e-3, sampling_rate=extractor.sampling_rate)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.get_window_embeddings(feats["input_features"].to(model.device), feats["is_longer"].to(model.device))
    return float(counter.get_total_flops())
