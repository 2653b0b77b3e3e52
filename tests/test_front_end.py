"""The fast log-mel front end: identical output to `transformers.ClapFeatureExtractor` and to the `torch.stft`
implementation it replaced (float64 to 1e-4 dB; float32 within the stated tolerance)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import torch
from conftest import SR, synth_loop
from transformers import ClapFeatureExtractor

from loop_svdd import LoopSVDDFeatureExtractor

FLOAT32_MAX_DB = 0.2  # float32 FFT rounding in near-silent bins; the mean difference is far smaller
FLOAT32_MEAN_DB = 1e-3


def stft_log_mel(extractor: LoopSVDDFeatureExtractor, waves: torch.Tensor, kind: str) -> torch.Tensor:
    """The previous front end, kept as the reference: `torch.stft` in float64, full spectrum, mel projection."""
    x = waves.to(torch.float64)
    window = torch.hann_window(extractor.fft_window_size, periodic=True, dtype=torch.float64)
    spec = torch.stft(x, extractor.fft_window_size, extractor.hop_length, window=window, return_complex=True)
    filters = torch.from_numpy(extractor.mel_filters(kind).double().numpy())
    mel = torch.matmul(filters.T, spec.abs().square()).transpose(1, 2)
    return (10.0 * mel.clamp_min(1e-10).log10()).float()


def windows() -> torch.Tensor:
    return torch.stack([torch.from_numpy(synth_loop(10.0, seed=s, freq=55.0 * (s + 1))) for s in range(3)])


def test_front_end_matches_the_stft_reference_in_both_precisions():
    waves = windows()
    for kind in ("slaney", "htk"):
        exact = LoopSVDDFeatureExtractor(compute_dtype="float64").log_mel(waves, kind)
        fast = LoopSVDDFeatureExtractor().log_mel(waves, kind)
        ref = stft_log_mel(LoopSVDDFeatureExtractor(compute_dtype="float64"), waves, kind)
        assert exact.shape == fast.shape == ref.shape == (3, 1001, 64) and fast.dtype == torch.float32
        assert (exact - ref).abs().max() < 1e-4
        diff = (fast - ref).abs()
        assert diff.max() < FLOAT32_MAX_DB and diff.mean() < FLOAT32_MEAN_DB, (diff.max(), diff.mean())


def test_default_front_end_matches_clap_feature_extractor_on_every_window():
    loops = [synth_loop(s, seed=i) for i, s in enumerate((2.5, 10.0, 23.0))]
    ours = LoopSVDDFeatureExtractor()(loops, sampling_rate=SR)
    clap = ClapFeatureExtractor(frequency_min=50, truncation="rand_trunc", padding="repeatpad")
    extractor = LoopSVDDFeatureExtractor()
    for row, (clip, start) in enumerate(zip(ours["window_clip_index"], ours["window_start_s"], strict=True)):
        begin = int(round(float(start) * SR))
        window = loops[int(clip)][begin : begin + extractor.nb_max_samples]
        with mock.patch("numpy.random.randint", lambda low, high: 0):
            ref = clap(window, sampling_rate=SR, return_tensors="np")["input_features"][0, 0]
        diff = np.abs(ours["input_features"][row, 0].numpy() - ref)
        assert diff.max() < FLOAT32_MAX_DB and diff.mean() < FLOAT32_MEAN_DB, (row, diff.max(), diff.mean())


def test_front_end_keeps_gradients_usable_and_the_filters_out_of_the_config():
    extractor = LoopSVDDFeatureExtractor()
    mel = extractor.log_mel(windows()[:1], "slaney")
    conv = torch.nn.Conv1d(64, 2, 3)
    conv(mel.transpose(1, 2)).sum().backward()  # a plain tensor, not an inference tensor
    assert conv.weight.grad is not None
    assert not {"_filters", "_projections"} & set(extractor.to_dict())
