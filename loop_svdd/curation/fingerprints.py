"""Fingerprints of loops for the near-duplicate search (:mod:`.duplicates`): what each is made of, and where it
is kept.

Fingerprint: each loop is decoded to mono at :data:`FP_RATE` Hz (so a resampled copy and its original give the
same input, and the band above 7.5 kHz that lossy codecs cut is never compared) and turned into a log-mel
sequence (:data:`N_MELS` bands, 16 ms hop) with a floor :data:`FLOOR_DB` below the loop's loudest frame.

Kept: in memory for a pack, or, given a cache folder, on disk (one safetensors file per file content, so a rerun
or a copy of a loop is not decoded again) and loaded a few at a time when compared, so a library of any size
holds only each loop's frame count and summary in memory.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from ..engine.cache import CacheFolder, open_cache
from ..errors import safetensors_write_errors_as_oserror

FP_RATE = 16_000
N_FFT = 1024
HOP = 256
N_MELS = 48  # bands of the alignment search
N_MELS_FINE = 128  # bands of the final comparison: finer detail tells two takes of one sound apart
F_MAX = 7_500.0
FLOOR_DB = 60.0
MAX_SECONDS = 120.0  # longer loops are fingerprinted on their first two minutes
LOADED = 1024  # stored fingerprints held in memory at a time (each ~50-200 kB)
STORE = "fingerprints"  # the folder of stored fingerprints inside a cache folder


@dataclass
class Fingerprint:
    """A loop's log-mel sequences ``(frames, N_MELS)`` (log10 power): floored :data:`FLOOR_DB` below its
    loudest frame (``logmel``, for the alignment search) and unfloored (``raw``, for the final comparison)."""

    logmel: np.ndarray
    raw: np.ndarray
    seconds: float


_MELS: dict[int, np.ndarray] = {}


def _mel_matrix(n_mels: int) -> np.ndarray:
    if n_mels not in _MELS:  # librosa.filters.mel's Slaney filters, from torchaudio (a declared dependency)
        import torchaudio

        mel = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, 30.0, F_MAX, n_mels, FP_RATE, norm="slaney", mel_scale="slaney"
        )
        _MELS[n_mels] = mel.T.numpy().astype(np.float32)
    return _MELS[n_mels]


def fingerprint(wave: np.ndarray, sampling_rate: int = FP_RATE) -> Fingerprint:
    """The fingerprint of a mono waveform (resampled to :data:`FP_RATE` when needed)."""
    wave = np.asarray(wave, dtype=np.float32)
    if sampling_rate != FP_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sampling_rate), FP_RATE)
        wave = resample_poly(wave, FP_RATE // g, int(sampling_rate) // g).astype(np.float32)
    seconds = len(wave) / FP_RATE
    wave = np.pad(wave[: int(MAX_SECONDS * FP_RATE)], (0, max(0, N_FFT - len(wave))))
    frames = np.lib.stride_tricks.sliding_window_view(wave, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1)) ** 2
    mel = power @ _mel_matrix(N_MELS).T
    floor = max(float(mel.max()), 1e-20) * 10 ** (-FLOOR_DB / 10)
    fine = np.log10(power @ _mel_matrix(N_MELS_FINE).T + 1e-20).astype(np.float16)
    return Fingerprint(np.log10(mel + floor).astype(np.float64), fine, seconds)


def summary(fp: Fingerprint) -> np.ndarray:
    """Gain-invariant summary for candidate search: mean and spread over time of the frame-centred log-mel."""
    shape = fp.logmel - fp.logmel.mean(axis=1, keepdims=True)
    v = np.concatenate([shape.mean(0), shape.std(0)])
    return v / max(float(np.linalg.norm(v)), 1e-12)


class Fingerprints(Sequence):
    """The fingerprints of n loops (None where a loop could not be decoded), with every one's frame count
    (``n_frames``, 0 for None) and :func:`summary` (``summaries``, ``(n, 2 * N_MELS)``) at hand. Items are
    fingerprints in memory or paths of stored ones, loaded when asked for (the last :data:`LOADED` are kept)."""

    def __init__(self, items: list[Fingerprint | Path | None], n_frames: np.ndarray, summaries: np.ndarray):
        self._items, self.n_frames, self.summaries = items, n_frames, summaries
        self._load = functools.lru_cache(maxsize=LOADED)(load_fingerprint)

    @classmethod
    def in_memory(cls, fps: Sequence[Fingerprint | None]) -> Fingerprints:
        n_frames = np.array([0 if fp is None else len(fp.logmel) for fp in fps], dtype=np.int64)
        summaries = np.stack([np.zeros(2 * N_MELS) if fp is None else summary(fp) for fp in fps] or [np.zeros(0)])
        summaries = summaries.reshape(len(fps), 2 * N_MELS)
        return cls(list(fps), n_frames, summaries)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> Fingerprint | None:  # type: ignore[override]
        item = self._items[i]
        return self._load(item) if isinstance(item, Path) else item


def as_fingerprints(fps: Sequence[Fingerprint | None]) -> Fingerprints:
    return fps if isinstance(fps, Fingerprints) else Fingerprints.in_memory(fps)


def load_fingerprint(path: Path) -> Fingerprint:
    arrays = load_file(path)
    return Fingerprint(arrays["logmel"], arrays["raw"], float(arrays["seconds"][0]))


def _decoded_fingerprint(path: str | Path) -> Fingerprint | None:
    from ..audio.decoding import decode_file

    decoded = decode_file(path, FP_RATE)
    return fingerprint(decoded.waveform) if decoded.ok else None


def _stored(path: str | Path, content: str | None, store: Path) -> tuple[Fingerprint | Path | None, int, np.ndarray]:
    """(the stored fingerprint's path, or the fingerprint when it cannot be stored, or None; frames; summary)."""
    where = store / content[:2] / f"{content}.safetensors" if content else None
    if where is not None and where.is_file():
        with safe_open(where, "np") as f:  # only the frame count and the summary are read now
            return where, int(f.get_slice("logmel").get_shape()[0]), f.get_tensor("summary")
    fp = _decoded_fingerprint(path)
    if fp is None:
        return None, 0, np.zeros(2 * N_MELS)
    if where is None:
        return fp, len(fp.logmel), summary(fp)
    where.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"logmel": fp.logmel, "raw": fp.raw, "summary": summary(fp), "seconds": np.array([fp.seconds])}
    tmp = where.with_name(f".{where.name}.tmp")
    with safetensors_write_errors_as_oserror(tmp):
        save_file(arrays, tmp)
        tmp.replace(where)
    return where, len(fp.logmel), arrays["summary"]


def fingerprint_files(paths: Sequence[str | Path], cache_dir: str | Path | CacheFolder | None = None) -> Fingerprints:
    """Fingerprints of audio files (None for a file that cannot be decoded). With `cache_dir`, each is stored
    there by the file's content and read back on the next call (see the module docstring)."""
    if cache_dir is None:
        return Fingerprints.in_memory([_decoded_fingerprint(p) for p in paths])
    cache = open_cache(cache_dir)
    store = cache.path / STORE
    contents = cache.hashes.of([Path(p) for p in paths])
    found = [_stored(p, c, store) for p, c in zip(paths, contents, strict=True)]
    n_frames = np.array([f[1] for f in found], dtype=np.int64)
    summaries = np.stack([f[2] for f in found]) if found else np.zeros((0, 2 * N_MELS))
    return Fingerprints([f[0] for f in found], n_frames, summaries)
