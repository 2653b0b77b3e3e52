"""Decoding audio files into mono float32 waveforms, with one-line errors that name the file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".webm")


class AudioDecodeError(ValueError):
    """A file that cannot be turned into a usable waveform; the message names the file and the reason."""


def load_audio(
    path: str | Path, sampling_rate: int = 48_000, max_seconds: float | None = None, start_s: float = 0.0
) -> np.ndarray:
    """Decode `path` (or `max_seconds` of it from `start_s`) to a mono float32 waveform at `sampling_rate`.

    Uses torchcodec (FFmpeg), so any container FFmpeg reads works. Raises [`AudioDecodeError`] for missing,
    empty, corrupt or unsupported files, zero-length audio and non-finite samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: the file is empty")
    try:
        from torchcodec.decoders import AudioDecoder

        decoder = AudioDecoder(str(path), sample_rate=sampling_rate, num_channels=1)
        if max_seconds is not None or start_s > 0:
            stop = None if max_seconds is None else start_s + max_seconds
            samples = decoder.get_samples_played_in_range(start_s, stop)
        else:
            samples = decoder.get_all_samples()
        data: torch.Tensor = samples.data
    except Exception as err:  # noqa: BLE001 - FFmpeg reports many kinds of failure; name the file, keep the reason
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "No audio frames were decoded" in reason:
            raise AudioDecodeError(f"{path}: the audio has no samples") from err
        reason = re.sub(r"^\w+, /\S+:\d+, ", "", reason).replace(f"{path}", "").strip(" :")  # drop C++ locations
        if reason.startswith("Could not open input file"):
            reason = "not a recognised audio format, or a corrupt file"
        raise AudioDecodeError(f"{path}: cannot decode audio ({reason[:160]})") from err
    wave = data.mean(dim=0) if data.ndim == 2 else data
    if wave.numel() == 0:
        raise AudioDecodeError(f"{path}: the audio has no samples")
    wave = wave.to(torch.float32)
    if not torch.isfinite(wave).all():
        raise AudioDecodeError(f"{path}: the audio contains NaN or infinite samples")
    return wave.numpy()


def iter_segments(path: str | Path, sampling_rate: int, starts_s: list[float], seconds: float):
    """Yield mono float32 segments of `seconds` starting at each of `starts_s`, from one open decoder
    (bounded memory for files of any length)."""
    try:
        from torchcodec.decoders import AudioDecoder

        decoder = AudioDecoder(str(path), sample_rate=sampling_rate, num_channels=1)
    except Exception as err:  # noqa: BLE001
        raise AudioDecodeError(f"{path}: cannot decode audio ({type(err).__name__})") from err
    for start in starts_s:
        try:
            data = decoder.get_samples_played_in_range(start, start + seconds).data
        except Exception as err:  # noqa: BLE001
            raise AudioDecodeError(f"{path}: cannot decode audio at {start:.1f} s ({type(err).__name__})") from err
        wave = data.mean(dim=0).to(torch.float32)
        if not torch.isfinite(wave).all():
            raise AudioDecodeError(f"{path}: the audio contains NaN or infinite samples")
        yield wave.numpy()


def audio_duration(path: str | Path) -> float | None:
    """The duration in seconds from the container's header, or None when unknown or unreadable."""
    try:
        from torchcodec.decoders import AudioDecoder

        metadata = AudioDecoder(str(path)).metadata
        return metadata.duration_seconds_from_header or metadata.duration_seconds
    except Exception:  # noqa: BLE001 - the full decode reports the real error
        return None


def find_audio_files(inputs: list[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of audio files."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            found.append(p)
    return found
