"""Injected defects: one flaw in one beat of a loop, for measuring detection and localisation of subtle anomalies.

`inject_defect(wave, sr, kind, level, beat_s, seed)` returns the damaged copy and a `Defect` (kind, level, time
span in seconds). Deterministic: the same arguments give the same samples and span. Kinds and what each level
(0 weak, 1 medium, 2 strong) means:

- `click`: a 2 ms decaying pop at 0.25 / 0.5 / 1.0 x the loop's peak, somewhere in the beat;
- `dropout`: a quarter / half / whole beat silenced (5 ms fades);
- `noise_burst`: 100 ms of white noise at -12 / -6 / 0 dB relative to the loop's RMS;
- `wrong_note`: the beat played 1 / 3 / 6 semitones lower (one note out of key, as a sampler would);
- `timing_slip`: the beat's audio late by 20 / 40 / 80 ms (the gap is silent);
- `clipping`: the beat driven by +6 / +12 / +18 dB into a hard clip at the loop's peak.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFECT_KINDS = ("click", "dropout", "noise_burst", "wrong_note", "timing_slip", "clipping")
LEVELS = {
    "click": (0.25, 0.5, 1.0),  # pop amplitude / loop peak
    "dropout": (0.25, 0.5, 1.0),  # share of the beat silenced
    "noise_burst": (-12.0, -6.0, 0.0),  # dB relative to the loop's RMS
    "wrong_note": (1, 3, 6),  # semitones
    "timing_slip": (0.02, 0.04, 0.08),  # seconds late
    "clipping": (2.0, 4.0, 8.0),  # drive (linear gain) into a clip at the loop's peak
}
CLICK_S = 0.002
BURST_S = 0.1
FADE_S = 0.005


@dataclass(frozen=True)
class Defect:
    """What was injected where: `start_s` to `end_s` on the loop's own timeline."""

    kind: str
    level: int
    value: float
    start_s: float
    end_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def pick_beat(wave: np.ndarray, sr: int, beat_s: float, rng: np.random.Generator) -> tuple[int, int]:
    """Sample span `(a, b)` of one beat that sounds (RMS at least half the median beat's): a defect in a silent
    beat would be no defect. Loops shorter than a beat use the whole loop."""
    n = max(1, int(round(beat_s * sr)))
    count = len(wave) // n
    if count < 1:
        return 0, len(wave)
    rms = np.array([np.sqrt(np.mean(np.square(wave[i * n : (i + 1) * n]))) for i in range(count)])
    candidates = np.flatnonzero(rms >= 0.5 * np.median(rms))
    k = int(rng.choice(candidates if candidates.size else np.arange(count)))
    return k * n, (k + 1) * n


def _fade(length: int, sr: int) -> np.ndarray:
    """A gain curve 1 -> 0 -> 1 with `FADE_S` ramps at both ends (for replacing a segment without clicks)."""
    ramp = min(int(FADE_S * sr), length // 2)
    gain = np.zeros(length, dtype=np.float32)
    if ramp:
        gain[:ramp] = np.linspace(1.0, 0.0, ramp, dtype=np.float32)
        gain[length - ramp :] = np.linspace(0.0, 1.0, ramp, dtype=np.float32)
    return gain


def _replace(wave: np.ndarray, a: int, new: np.ndarray, sr: int) -> None:
    """Crossfade `new` into `wave[a : a + len(new)]` in place (5 ms ramps)."""
    keep = _fade(len(new), sr)
    wave[a : a + len(new)] = keep * wave[a : a + len(new)] + (1.0 - keep) * new


def _pitch_down(segment: np.ndarray, semitones: float) -> np.ndarray:
    """The segment played `semitones` lower (read slower, as a tape or sampler does), same length."""
    positions = np.arange(len(segment)) * 2.0 ** (-semitones / 12.0)
    return np.interp(positions, np.arange(len(segment)), segment).astype(np.float32)


def _apply(
    out: np.ndarray, sr: int, kind: str, value: float, a: int, b: int, rng: np.random.Generator
) -> tuple[int, int]:
    """Damage `out` in place inside beat `[a, b)`; return the damaged sample span."""
    peak = float(np.max(np.abs(out))) or 1.0
    if kind == "click":
        n = max(1, int(CLICK_S * sr))
        at = int(rng.integers(a, max(a + 1, b - n)))
        pulse = value * peak * np.exp(-np.arange(n) / (0.2 * n)) * rng.choice([-1.0, 1.0])
        out[at : at + n] = np.clip(out[at : at + n] + pulse.astype(np.float32)[: len(out) - at], -1.0, 1.0)
        return at, min(at + n, len(out))
    if kind == "dropout":
        end = a + max(1, int(round(value * (b - a))))
        _replace(out, a, np.zeros(end - a, dtype=np.float32), sr)
        return a, end
    if kind == "noise_burst":
        n = min(int(BURST_S * sr), b - a)
        at = int(rng.integers(a, max(a + 1, b - n + 1)))
        rms = float(np.sqrt(np.mean(np.square(out)))) or 1e-3
        noise = rng.standard_normal(n).astype(np.float32) * rms * 10 ** (value / 20)
        out[at : at + n] = np.clip(out[at : at + n] + noise * (1.0 - _fade(n, sr)), -1.0, 1.0)
        return at, at + n
    if kind == "wrong_note":
        _replace(out, a, _pitch_down(out[a:b].copy(), value), sr)
        return a, b
    if kind == "timing_slip":
        d = min(int(round(value * sr)), b - a - 1)
        late = np.concatenate([np.zeros(d, dtype=np.float32), out[a : b - d]])
        _replace(out, a, late, sr)
        return a, b
    if kind == "clipping":
        out[a:b] = np.clip(out[a:b] * value, -peak, peak)
        return a, b
    raise ValueError(f"unknown defect kind {kind!r}; choose from {', '.join(DEFECT_KINDS)}")


def inject_defect(
    wave: np.ndarray, sr: int, kind: str, level: int, beat_s: float, seed: int
) -> tuple[np.ndarray, Defect]:
    """A copy of `wave` (mono float) with one `kind` defect at `level` (0-2) in one sounding beat of length
    `beat_s`, chosen with `seed`; and where it is."""
    if kind not in LEVELS:
        raise ValueError(f"unknown defect kind {kind!r}; choose from {', '.join(DEFECT_KINDS)}")
    if not 0 <= level < len(LEVELS[kind]):
        raise ValueError(f"level must be 0-{len(LEVELS[kind]) - 1}, got {level}")
    if beat_s <= 0:
        raise ValueError(f"beat_s must be > 0, got {beat_s}")
    rng = np.random.default_rng(seed)
    out = np.array(wave, dtype=np.float32, copy=True)
    a, b = pick_beat(out, sr, beat_s, rng)
    value = LEVELS[kind][level]
    start, end = _apply(out, sr, kind, value, a, b, rng)
    return out, Defect(kind, level, float(value), start / sr, end / sr)
