"""Two views of one loop, made on its log-mel spectrogram (cheap: the mels of a corpus are computed once).

A view is a random crop of the loop (a few bars of a long loop), circularly shifted in time (loops are periodic),
stretched in time (tempo) and shifted by a few mel bins (pitch), repeated to one encoder window the way the
feature extractor repeat-pads short loops, then given a gain (and optionally an EQ tilt), mixed with another loop
at a low level (power sum) and lightly masked (SpecAugment). Views keep the timbre (instrument, soundfont) and
change what a detector should ignore (notes, tempo, phase, level). Every random draw comes from the
`torch.Generator` passed in, so views are reproducible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

SILENCE_DB = -100.0  # 10 * log10(1e-10): the extractor's floor, what its silence padding becomes
DB_TO_NEPER = math.log(10.0) / 10.0  # power dB -> natural log of power


@dataclass
class ViewConfig:
    """Strength of each augmentation (dB, fractions of the loop, probabilities)."""

    min_crop: float = 0.5  # shortest crop, as a fraction of the loop (of one window for long loops)
    min_crop_frames: int = 100  # never shorter than 1 s
    stretch: float = 1.25  # tempo change: frames resampled by a factor in [1/stretch, stretch]
    pitch_bins: int = 2  # pitch change: mel bins shifted by up to this many, up or down
    gain_db: float = 3.0  # uniform in [-gain_db, gain_db]
    tilt_db: float = 0.0  # EQ: a linear ramp over the mel bins from -t to +t, t uniform in [-tilt_db, tilt_db]
    mix_prob: float = 0.2  # mix with another loop of the corpus ...
    mix_db: tuple[float, float] = (-24.0, -12.0)  # ... at this level relative to the loop
    mask_prob: float = 0.5  # one time mask and one frequency mask (SpecAugment)
    max_time_mask: int = 80
    max_freq_mask: int = 8

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ViewConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=gen))


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=gen))


def crop_and_fill(mel: torch.Tensor, num_frames: int, cfg: ViewConfig, gen: torch.Generator) -> torch.Tensor:
    """A random crop of `mel` `(T, F)`, circularly shifted, repeated whole and padded with silence to
    `(num_frames, F)` (the extractor's `repeatpad`)."""
    total = mel.shape[0]
    longest = min(total, num_frames)
    shortest = min(longest, max(cfg.min_crop_frames, int(cfg.min_crop * longest)))
    length = _randint(gen, shortest, longest)
    start = _randint(gen, 0, total - length)
    seg = torch.roll(mel[start : start + length], shifts=_randint(gen, 0, length - 1), dims=0)
    if cfg.stretch > 1.0:
        factor = math.exp(_uniform(gen, -math.log(cfg.stretch), math.log(cfg.stretch)))
        new_length = max(2, min(num_frames, int(round(length * factor))))
        seg = F.interpolate(seg.T[None], size=new_length, mode="linear", align_corners=False)[0].T
        length = new_length
    out = seg.repeat(num_frames // length, 1)
    if out.shape[0] < num_frames:
        pad = torch.full((num_frames - out.shape[0], mel.shape[1]), SILENCE_DB, dtype=mel.dtype)
        out = torch.cat([out, pad])
    return out


def colour(x: torch.Tensor, cfg: ViewConfig, gen: torch.Generator) -> torch.Tensor:
    """Pitch shift (mel bins), gain and EQ tilt on the non-silent frames of `(T, F)` dB mels, then SpecAugment masks."""
    n_mels = x.shape[1]
    if cfg.pitch_bins:
        shift_bins = _randint(gen, -cfg.pitch_bins, cfg.pitch_bins)
        x = x[:, (torch.arange(n_mels) - shift_bins).clamp(0, n_mels - 1)]
    tilt = _uniform(gen, -cfg.tilt_db, cfg.tilt_db) * torch.linspace(-1.0, 1.0, n_mels, dtype=x.dtype)
    shift = _uniform(gen, -cfg.gain_db, cfg.gain_db) + tilt
    sounding = x > SILENCE_DB + 1e-3
    x = torch.where(sounding, (x + shift).clamp_min(SILENCE_DB), x)
    if torch.rand((), generator=gen) < cfg.mask_prob:
        width = _randint(gen, 0, cfg.max_time_mask)
        t0 = _randint(gen, 0, x.shape[0] - width)
        height = _randint(gen, 0, cfg.max_freq_mask)
        f0 = _randint(gen, 0, n_mels - height)
        x = x.clone()
        x[t0 : t0 + width] = SILENCE_DB
        x[:, f0 : f0 + height] = SILENCE_DB
    return x


def power_mix(a: torch.Tensor, b: torch.Tensor, level_db: float) -> torch.Tensor:
    """dB mels of the sum of two signals' powers, `b` scaled by `level_db` (a mel-domain approximation)."""
    mixed = torch.logaddexp(a * DB_TO_NEPER, (b + level_db) * DB_TO_NEPER) / DB_TO_NEPER
    return mixed.clamp_min(SILENCE_DB)


def make_view(
    mels: list[torch.Tensor], index: int, num_frames: int, cfg: ViewConfig, gen: torch.Generator
) -> torch.Tensor:
    """One augmented `(num_frames, F)` view of loop `index` of `mels`."""
    x = crop_and_fill(mels[index], num_frames, cfg, gen)
    if len(mels) > 1 and torch.rand((), generator=gen) < cfg.mix_prob:
        other = _randint(gen, 0, len(mels) - 2)
        other += other >= index
        y = crop_and_fill(mels[other], num_frames, cfg, gen)
        x = power_mix(x, y, _uniform(gen, *cfg.mix_db))
    return colour(x, cfg, gen)


def make_pair_batch(
    mels: list[torch.Tensor], indices: list[int], num_frames: int, cfg: ViewConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches of views `(B, 1, num_frames, F)`: row i of each is a view of loop `indices[i]`."""
    first = torch.stack([make_view(mels, i, num_frames, cfg, gen) for i in indices])
    second = torch.stack([make_view(mels, i, num_frames, cfg, gen) for i in indices])
    return first[:, None], second[:, None]
