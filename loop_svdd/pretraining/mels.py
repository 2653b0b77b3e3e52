"""The log-mel spectrograms of a corpus, computed once for pretraining (views are then made in the mel domain)."""

from __future__ import annotations

import hashlib

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..audio.corpora import audio_column, waveform_of, with_decoding
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor


def corpus_mels(
    dataset: datasets.Dataset,
    extractor: LoopSVDDFeatureExtractor,
    rows: np.ndarray | list[int] | None = None,
    max_windows: int = 3,
    progress: bool = True,
) -> list[torch.Tensor]:
    """`(frames, mels)` dB log-mels (the extractor's unfused "slaney" front end) of each selected loop, without
    padding; loops longer than `max_windows` encoder windows are cut there."""
    column = audio_column(dataset)
    decoded = with_decoding(dataset, extractor.sampling_rate)
    if rows is not None:
        decoded = decoded.select([int(r) for r in rows])
    max_samples = max_windows * extractor.nb_max_samples
    mels = []
    for example in tqdm(decoded, total=len(decoded), desc="log-mels", unit="loop", disable=not progress):
        wave = torch.from_numpy(waveform_of(example, column)[:max_samples])
        if wave.numel() < extractor.fft_window_size:
            continue  # too short to frame
        mels.append(extractor.log_mel(wave[None], "slaney")[0])
    return mels


def mels_fingerprint(mels: list[torch.Tensor]) -> str:
    """A short hash of the mels, to refuse resuming a checkpoint on other data."""
    h = hashlib.sha256()
    for m in mels:
        h.update(str(tuple(m.shape)).encode())
        h.update(m.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
