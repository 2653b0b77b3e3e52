"""The musicnn front end in torch: 16 kHz log-mel patches as the wheel's `musicnn/extractor.py` computes them
(librosa mel power spectrogram, n_fft 512, hop 256, 96 Slaney bands, then `log10(10000 * mel + 1)`), cut into
3 s patches (187 frames) with half overlap.

One deliberate difference: the wheel casts the mel spectrogram to float16 before `10000 * mel`, which overflows
to infinity for mel power above 6.55 (loud tonal audio); this front end stays in float32.
"""

from __future__ import annotations

import torch
import torchaudio

from .configuration_musicnn import MusicnnConfig


class MusicnnFeatureExtractor:
    """Waveforms -> `(patches, 187, 96)` log-mel patches for [`MusicnnModel`]."""

    def __init__(self, config: MusicnnConfig | None = None, patch_hop: int | None = None) -> None:
        self.config = config or MusicnnConfig()
        self.patch_hop = patch_hop or self.config.patch_frames // 2
        c = self.config
        self.window = torch.hann_window(c.n_fft, periodic=True)
        self.filters = torchaudio.functional.melscale_fbanks(
            c.n_fft // 2 + 1, 0.0, c.sampling_rate / 2, c.n_mels, c.sampling_rate, norm="slaney", mel_scale="slaney"
        )  # (freqs, mels), as librosa.filters.mel(sr, n_fft, n_mels)

    @property
    def min_samples(self) -> int:
        """Samples at 16 kHz that give one whole patch (shorter loops are repeated up to it)."""
        return (self.config.patch_frames - 1) * self.config.hop_length

    def resample(self, waveform: torch.Tensor, sampling_rate: int) -> torch.Tensor:
        if sampling_rate == self.config.sampling_rate:
            return waveform
        return torchaudio.functional.resample(waveform, sampling_rate, self.config.sampling_rate)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """`(samples,)` at 16 kHz -> `(frames, n_mels)`: librosa's centred, zero-padded power mel, log-compressed."""
        c = self.config
        spec = torch.stft(
            waveform.float(), c.n_fft, c.hop_length, window=self.window, center=True, pad_mode="constant",
            return_complex=True,
        )  # fmt: skip
        mel = self.filters.T @ spec.abs().pow(2)
        return torch.log10(10000.0 * mel + 1.0).T

    def patches(self, waveform: torch.Tensor, sampling_rate: int) -> torch.Tensor:
        """One loop `(samples,)` -> `(patches, patch_frames, n_mels)`, the loop repeated up to one patch."""
        if waveform.numel() == 0:
            raise ValueError("an empty waveform has no musicnn patches")
        wave = self.resample(waveform.float(), sampling_rate)
        if wave.numel() < self.min_samples:
            wave = wave.repeat(-(-self.min_samples // wave.numel()))
        mel = self.log_mel(wave)
        frames = self.config.patch_frames
        starts = range(0, mel.shape[0] - frames + 1, self.patch_hop)
        return torch.stack([mel[s : s + frames] for s in starts])
