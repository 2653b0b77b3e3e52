"""Tiny example loops for the demo, synthesised at startup (no audio files shipped)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..settings import SAMPLING_RATE

SR = SAMPLING_RATE


def _beat_tone(seconds: float, freq: float, beat_s: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = np.exp(-6.0 * (t % beat_s))
    tone = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(2 * np.pi * 2 * freq * t)
    return 0.4 * env * tone + 0.01 * rng.standard_normal(t.size)


def example_waveforms() -> dict[str, np.ndarray]:
    """Three 4 s loops: a steady bass pulse, a walking bass, and a noisy glitch (likely anomalous)."""
    walking = np.concatenate([_beat_tone(1.0, f, 0.5, i) for i, f in enumerate((55.0, 65.4, 73.4, 82.4))])
    rng = np.random.default_rng(7)
    glitch = 0.5 * rng.standard_normal(4 * SR) * (rng.random(4 * SR) < 0.05) + 0.2 * np.sign(
        np.sin(2 * np.pi * 1760.0 * np.arange(4 * SR) / SR)
    )
    return {
        "steady_bass.wav": _beat_tone(4.0, 110.0, 0.5, 0),
        "walking_bass.wav": walking,
        "noisy_glitch.wav": glitch,
    }


def write_examples(folder: str | Path | None = None) -> list[Path]:
    """Write the example loops as 16-bit WAVs into `folder` (a new temporary folder by default)."""
    import soundfile as sf

    folder = Path(folder or tempfile.mkdtemp(prefix="loop-svdd-examples-"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, wave in example_waveforms().items():
        path = folder / name
        sf.write(path, np.clip(wave, -1.0, 1.0).astype(np.float32), SR, subtype="PCM_16")
        paths.append(path)
    return paths
