"""Decoding audio files into mono float32 waveforms, with one-line errors that name the file."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import LoopSVDDError
from ..settings import SAMPLING_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".webm")


class AudioDecodeError(LoopSVDDError, ValueError):
    """A file that cannot be turned into a usable waveform; the message names the file and the reason."""


# The one place where decoder (torchcodec / FFmpeg) messages become plain words. Every entry point that reads
# audio reports these reasons: `score`, `train`, `evaluate`, `embed`, `pretrain-encoder`, `curate`, the demo.
EMPTY_FILE = "empty file (0 bytes)"
NO_SAMPLES = "no audio samples (zero-length audio)"
NOT_AUDIO = "cannot decode audio: not a decodable audio file"
NO_STREAM = "cannot decode audio: no audio stream in the file"
NON_FINITE = "the audio contains NaN or infinite samples"
AUDIO_SIGNATURES = (  # (offset, magic bytes, format name): files that claim to be audio
    (0, b"RIFF", "WAV"),
    (0, b"RF64", "WAV"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg"),
    (0, b"ID3", "MP3"),
    (0, b"FORM", "AIFF"),
    (4, b"ftyp", "MP4/M4A"),
    (0, b"\x1aE\xdf\xa3", "WebM/Matroska"),
    (0, b"0&\xb2u", "WMA"),
)


def claimed_format(head: bytes) -> str | None:
    """The audio format a file's first bytes claim (None when they claim none)."""
    for offset, magic, name in AUDIO_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame sync
        return "MP3"
    return None


def plain_reason(message: str, head: bytes = b"") -> str:
    """A decoder error (`message`, e.g. FFmpeg's "best audio stream is unknown" or torchcodec's
    "SingleStreamDecoder ... End of file") in plain words; `head` is the file's first bytes."""
    if not head:
        return EMPTY_FILE
    if "No audio frames were decoded" in message:
        return NO_SAMPLES
    if "best audio stream" in message or "No audio stream" in message or "stream_index" in message:
        return NO_STREAM
    fmt = claimed_format(head)
    if fmt is not None:
        return f"cannot decode audio: truncated or damaged {fmt} file"
    return NOT_AUDIO


def _head(source: Path | bytes, size: int = 16) -> bytes:
    if isinstance(source, bytes):
        return source[:size]
    with open(source, "rb") as f:
        return f.read(size)


def load_audio(
    path: str | Path | bytes,
    sampling_rate: int = SAMPLING_RATE,
    max_seconds: float | None = None,
    start_s: float = 0.0,
    name: str | None = None,
) -> np.ndarray:
    """Decode `path` (or `max_seconds` of it from `start_s`) to a mono float32 waveform at `sampling_rate`.

    `path` may also be the file's bytes (then `name` names it in errors). Uses torchcodec (FFmpeg), so any
    container FFmpeg reads works. Raises [`AudioDecodeError`] for missing, empty, corrupt or unsupported files,
    zero-length audio and non-finite samples, with a plain reason ([`plain_reason`]).
    """
    source: Path | bytes = path if isinstance(path, bytes) else Path(path)
    label = name or ("<bytes>" if isinstance(source, bytes) else str(source))
    if isinstance(source, Path) and not source.is_file():
        raise AudioDecodeError(f"{label}: no such file")
    if (len(source) if isinstance(source, bytes) else source.stat().st_size) == 0:
        raise AudioDecodeError(f"{label}: {EMPTY_FILE}")
    try:
        from torchcodec.decoders import AudioDecoder

        decoder = AudioDecoder(
            source if isinstance(source, bytes) else str(source), sample_rate=sampling_rate, num_channels=1
        )
        if max_seconds is not None or start_s > 0:
            stop = None if max_seconds is None else start_s + max_seconds
            samples = decoder.get_samples_played_in_range(start_s, stop)
        else:
            samples = decoder.get_all_samples()
        data: torch.Tensor = samples.data
    except Exception as err:  # noqa: BLE001 - FFmpeg reports many kinds of failure; name the file, keep the reason
        raise AudioDecodeError(f"{label}: {plain_reason(str(err), _head(source))}") from err
    wave = data.mean(dim=0) if data.ndim == 2 else data
    if wave.numel() == 0:
        raise AudioDecodeError(f"{label}: {NO_SAMPLES}")
    wave = wave.to(torch.float32)
    if not torch.isfinite(wave).all():
        raise AudioDecodeError(f"{label}: {NON_FINITE}")
    return wave.numpy()


def iter_segments(path: str | Path, sampling_rate: int, starts_s: list[float], seconds: float):
    """Yield mono float32 segments of `seconds` starting at each of `starts_s`, from one open decoder
    (bounded memory for files of any length)."""
    try:
        from torchcodec.decoders import AudioDecoder

        decoder = AudioDecoder(str(path), sample_rate=sampling_rate, num_channels=1)
    except Exception as err:  # noqa: BLE001
        raise AudioDecodeError(f"{path}: {plain_reason(str(err), _head(Path(path)))}") from err
    for start in starts_s:
        try:
            data = decoder.get_samples_played_in_range(start, start + seconds).data
        except Exception as err:  # noqa: BLE001
            reason = plain_reason(str(err), _head(Path(path))).removeprefix("cannot decode audio: ")
            raise AudioDecodeError(f"{path}: cannot decode audio at {start:.1f} s: {reason}") from err
        wave = data.mean(dim=0).to(torch.float32)
        if not torch.isfinite(wave).all():
            raise AudioDecodeError(f"{path}: {NON_FINITE}")
        yield wave.numpy()


def audio_duration(path: str | Path) -> float | None:
    """The duration in seconds from the container's header, or None when unknown or unreadable."""
    try:
        from torchcodec.decoders import AudioDecoder

        metadata = AudioDecoder(str(path)).metadata
        return metadata.duration_seconds_from_header or metadata.duration_seconds
    except Exception:  # noqa: BLE001 - the full decode reports the real error
        return None


def _riff_chunks(f, limit: int = 64):
    """(chunk id, size) of a RIFF file's first `limit` chunks (after the 12-byte header), the file positioned at
    the chunk's body at each step."""
    f.seek(12)
    for _ in range(limit):
        head = f.read(8)
        if len(head) < 8:
            return
        chunk, size, at = head[:4], struct.unpack("<I", head[4:])[0], f.tell()
        yield chunk, size
        f.seek(at + size + (size & 1))


def promised_seconds(source: str | Path | bytes) -> float | None:
    """The duration a WAV file's header promises (`data` chunk size / block size / sample rate), read from the
    header alone; None for other formats or an unstated size. Decoders (FFmpeg, libsndfile) silently shorten a
    truncated WAV's length to what the file holds, so this is the only way to tell a cut file from a short one."""
    f = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115 - closed below
    with f:
        if f.read(12)[:4] != b"RIFF":
            return None
        rate = block = data = 0
        for chunk, size in _riff_chunks(f):
            if chunk == b"fmt " and size >= 16 and len(body := f.read(14)) == 14:
                _, _, rate, _, block = struct.unpack("<HHIIH", body)
            elif chunk == b"data":
                data = size
                break
    if not (rate and block and data) or data == 0xFFFFFFFF:  # a streamed WAV states no size
        return None
    return data / block / rate


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
