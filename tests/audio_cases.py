"""The bad-and-odd audio matrix shared by the reliability and robustness tests: name -> (writer, expected plain
reason or None when the file must be used)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import SR


def tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * 220 * t)
    return np.stack([x * (0.5 + 0.5 * c / max(channels, 1)) for c in range(channels)], axis=1) if channels > 1 else x


def raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def write(path: Path, data: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    sf.write(path, data, sr, subtype=subtype)
    return path


def cut(path: Path, n_bytes: int) -> Path:
    """The first `n_bytes` of a 2 s 16-bit WAV file (whose header still promises 2 s), written to `path`."""
    whole = io.BytesIO()
    sf.write(whole, tone(2.0, SR), SR, format="WAV", subtype="PCM_16")
    return raw(path, whole.getvalue()[:n_bytes])


# name -> (writer(tmp_path) -> path, expected error fragment or None for "scores")
def _cases() -> dict:
    valid_wav = lambda p: write(p / "v.wav", tone(1.0, SR), SR)  # noqa: E731
    return {
        "empty-file": (lambda p: raw(p / "empty.wav", b""), "empty file"),
        "zero-length-audio": (lambda p: write(p / "zero.wav", np.zeros(0), SR), "no audio samples"),
        "truncated-header": (
            lambda p: raw(p / "t.wav", valid_wav(p).read_bytes()[:20]),
            "cannot decode audio: truncated or damaged WAV file",
        ),
        "truncated-wav": (  # a download cut after 100 bytes: the header promises 2 s, 28 samples remain
            lambda p: cut(p / "cut.wav", 100),
            "truncated WAV file: the header promises 2.00 s, the file holds 0.6 ms",
        ),
        "half-wav": (  # cut half-way: still a second of audio, but not the loop its header describes
            lambda p: cut(p / "half.wav", 44 + 2 * SR),
            "truncated WAV file: the header promises 2.00 s, the file holds 1.00 s",
        ),
        "5-ms": (
            lambda p: write(p / "tiny.wav", tone(0.005, SR), SR),
            "too short to be a loop: 5.0 ms (the minimum is 10.0 ms)",
        ),
        "random-bytes-wav": (
            lambda p: raw(p / "r.wav", np.random.default_rng(0).bytes(4096)),
            "cannot decode audio: not a decodable audio file",
        ),
        "unsupported-container": (
            lambda p: raw(p / "x.mp3", b"this is not audio\n" * 50),
            "cannot decode audio: not a decodable audio file",
        ),
        "nan-samples-float-wav": (
            lambda p: write(p / "nan.wav", np.r_[tone(0.5, SR), [np.nan] * 100], SR, "FLOAT"),
            "NaN",
        ),
        "silence": (lambda p: write(p / "silence.wav", np.zeros(SR), SR), None),
        "dc-offset": (lambda p: write(p / "dc.wav", 0.4 + 0.3 * tone(2.0, SR), SR), None),
        "clipping": (lambda p: write(p / "clip.wav", np.clip(8 * tone(2.0, SR), -1, 1), SR), None),
        **{
            f"pcm-{sub}": (lambda p, sub=sub: write(p / f"{sub}.wav", tone(1.0, SR), SR, sub), None)
            for sub in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
        },
        **{
            f"{ch}-channels": (lambda p, ch=ch: write(p / f"ch{ch}.wav", tone(1.0, SR, ch), SR), None)
            for ch in (1, 2, 6, 8)
        },
        **{
            f"{sr}-hz": (lambda p, sr=sr: write(p / f"sr{sr}.flac", tone(1.0, sr), sr), None)
            for sr in (8000, 22050, 44100, 96000, 192000)
        },
        "10-ms": (lambda p: write(p / "short.wav", tone(0.01, SR), SR), None),
        "10-minutes": (lambda p: write(p / "long.flac", np.tile(tone(1.0, 8000), 600), 8000, "PCM_16"), None),
    }


CASES = _cases()
BAD_CASES = {name: reason for name, (_, reason) in CASES.items() if reason is not None}
