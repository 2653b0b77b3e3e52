"""Loop-aware time scores: a loop repeats, so each moment should match its counterparts in the other repetitions
(docs/localisation.md, "Loop repetition").

The loop's period is a bar (4 beats) when its tempo is known, else a whole fraction of its length confirmed by how
well the loop's loudness contour matches itself shifted by it (`estimate_period`). Each 10 ms frame then gets two
scores, each the median over the other repetitions of a comparison with the aligned frame there:

- **repetition** (`drop_scores`): how many dB quieter the frame is than its counterparts (dropouts, late beats,
  notes that die early);
- **signal** (`transient_scores`): how much larger its sample-level second difference is than theirs (clicks,
  noise bursts, clipping: high-frequency transient energy a bass or keys part never has at that point).

`loop_curve` combines them (each divided by its scale, then the maximum), and with the learned memory bank's curve
(`combine`). Plain numpy: no model, no training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOP_S = 0.01  # one frame: 10 ms
MIN_PERIOD_S = 0.2
MAX_REPEATS = 32
MATCH_RATIO = 0.7  # a period counts when the loop matches itself shifted by it this much better than by chance
NEAR_BEST = 1.15  # the shortest period within this factor of the best match is taken
SMOOTH_FRAMES = 3


def _shift_mismatch(feats: np.ndarray, lag: int) -> float:
    """Mean absolute difference between the loop's frames and themselves shifted by `lag` frames (circularly)."""
    return float(np.mean(np.abs(feats - np.roll(feats, -lag, axis=0))))


def estimate_period(feats: np.ndarray) -> float | None:
    """The period in seconds of a loop's frames `(T, D)` (a whole fraction, 1/2 ... 1/32, of its length, at least
    `MIN_PERIOD_S`), or None when the loop does not repeat: the shortest candidate
    whose self-mismatch is within `NEAR_BEST` of the best and below `MATCH_RATIO` x the mismatch at shifts that are
    no period (quarter-period offsets of the candidates)."""
    frames = len(feats)
    duration = frames * HOP_S
    candidates = [duration / n for n in range(2, MAX_REPEATS + 1) if duration / n >= MIN_PERIOD_S]
    if not candidates:
        return None
    mismatch = {p: _shift_mismatch(feats, int(round(p / HOP_S))) for p in candidates}
    chance = np.median([_shift_mismatch(feats, int(round(p / 4 / HOP_S)) or 1) for p in candidates])
    best = min(mismatch.values())
    if best > MATCH_RATIO * chance:
        return None
    return min(p for p, m in mismatch.items() if m <= NEAR_BEST * best)


def smooth(values: np.ndarray, frames: int = SMOOTH_FRAMES) -> np.ndarray:
    """Circular moving average over `frames` frames."""
    if frames <= 1 or len(values) < frames:
        return values
    kernel = np.ones(frames) / frames
    padded = np.concatenate([values[-(frames // 2) :], values, values[: frames - 1 - frames // 2]])
    return np.convolve(padded, kernel, mode="valid")


DROP_SCALE_DB = 14.5  # median over normal loops of the repetition curve's maximum (dev seed 1; docs)
TRANSIENT_SCALE = 1.27  # the same for the signal curve (natural log of an amplitude ratio)
TRANSIENT_SLACK = 2
TRANSIENT_FLOOR = 0.25  # chosen on dev seed 1 (loop_svdd/bench/repetition_candidates.py; docs)
BEATS_PER_BAR = 4
FLOOR_LOUD_DB = 60.0


def frame_count(n_samples: int, sr: int) -> tuple[int, int]:
    """(hop in samples, frames) of the 10 ms grid over `n_samples`."""
    hop = max(1, int(round(HOP_S * sr)))
    return hop, max(1, int(math.ceil(n_samples / hop)))


def _framed(values: np.ndarray, sr: int) -> np.ndarray:
    hop, n = frame_count(len(values), sr)
    return np.pad(values, (0, n * hop - len(values))).reshape(n, hop)


def loudness_frames(wave: np.ndarray, sr: int) -> np.ndarray:
    """Per 10 ms frame, its mean power in dB re the loudest frame, floored at `-FLOOR_LOUD_DB`."""
    power = np.mean(np.square(_framed(np.asarray(wave, dtype=np.float64), sr)), axis=1)
    db = 10.0 * np.log10(power + 1e-12)
    return np.maximum(db - db.max(), -FLOOR_LOUD_DB)


def transient_frames(wave: np.ndarray, sr: int) -> np.ndarray:
    """Per 10 ms frame, the log of its largest sample-level second difference (high-frequency transients)."""
    x = np.asarray(wave, dtype=np.float64)
    d2 = np.abs(np.diff(x, n=2, prepend=x[:2])) if len(x) > 2 else np.abs(x)
    return np.log(_framed(d2, sr).max(axis=1) + 1e-5)


def choose_period(wave: np.ndarray, sr: int, beat_s: float | None = None) -> float | None:
    """The loop's period (s): a bar when the tempo (`beat_s`) is known and the loop holds two or more, a beat when
    it holds less; else `estimate_period` on its loudness contour. None: the loop does not repeat."""
    duration = len(wave) / sr
    if beat_s:
        for unit in (BEATS_PER_BAR * beat_s, beat_s):
            if duration / unit >= 1.5:
                return duration / round(duration / unit)
        return None
    return estimate_period(loudness_frames(wave, sr)[:, None])


def counterpart_lags(frames: int, duration_s: float, period_s: float) -> list[int]:
    """Frame shifts from a frame to its counterparts in each other repetition."""
    repeats = max(2, int(round(duration_s / period_s)))
    return [int(round(k * frames / repeats)) for k in range(1, repeats)]


def drop_scores(loud: np.ndarray, lags: list[int]) -> np.ndarray:
    """Per frame, the median over the other repetitions of how many dB quieter it is than its counterpart."""
    return smooth(np.median([np.maximum(0.0, np.roll(loud, -lag) - loud) for lag in lags], axis=0))


def transient_scores(trans: np.ndarray, lags: list[int], slack: int = TRANSIENT_SLACK) -> np.ndarray:
    """Per frame, the median over the other repetitions of how much its transients exceed its counterpart's (the
    closest within +- `slack` frames; a counterpart never counts below the loop's `TRANSIENT_FLOOR` quantile, so
    a frame whose counterpart was silenced does not stand out), floored at 0."""
    shifts = range(-slack, slack + 1)
    ref = np.maximum(trans, np.quantile(trans, TRANSIENT_FLOOR))
    per_lag = [np.min([trans - np.roll(ref, -(lag + s)) for s in shifts], axis=0) for lag in lags]
    return np.maximum(np.median(per_lag, axis=0), 0.0)


@dataclass
class LoopCurve:
    """One loop's time scores on the 10 ms grid: `repetition` and `signal` (each divided by its scale), at `times`
    (s); `period_s` None when the loop does not repeat (both curves are zeros then)."""

    repetition: np.ndarray
    signal: np.ndarray
    times: np.ndarray
    period_s: float | None

    @property
    def combined(self) -> np.ndarray:
        return np.maximum(self.repetition, self.signal)


def loop_curve(wave: np.ndarray, sr: int, beat_s: float | None = None) -> LoopCurve:
    """The repetition and signal time scores of one loop (mono float at `sr`; `beat_s`: its beat when known)."""
    wave = np.asarray(wave, dtype=np.float32)
    _, frames = frame_count(len(wave), sr)
    times = np.minimum(np.arange(frames) * HOP_S + HOP_S / 2, len(wave) / sr)
    period = choose_period(wave, sr, beat_s) if len(wave) else None
    if period is None:
        return LoopCurve(np.zeros(frames), np.zeros(frames), times, None)
    lags = counterpart_lags(frames, len(wave) / sr, period)
    rep = drop_scores(loudness_frames(wave, sr), lags) / DROP_SCALE_DB
    sig = transient_scores(transient_frames(wave, sr), lags) / TRANSIENT_SCALE
    return LoopCurve(rep, sig, times, period)


BANK_SCALE = 1.0  # the learned bank's curve is already in units of a normal step's distance
RULES = ("max", "loop")  # max of all three curves / repetition and signal only (the bank when no repetition)
RULE = "loop"  # measured on dev seed 1: mean hit 0.839 / AUROC 0.901 vs 0.756 / 0.804 for "max" (docs)


def on_grid(values: np.ndarray, times: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`values` at `times` (step centres) resampled onto `grid` by nearest step."""
    if len(values) == 0:
        return np.zeros(len(grid))
    idx = np.clip(np.searchsorted(times, grid), 1, max(1, len(times) - 1)) if len(times) > 1 else np.zeros(len(grid))
    idx = idx.astype(int)
    if len(times) > 1:
        left = np.abs(grid - times[idx - 1]) <= np.abs(times[idx] - grid)
        idx = np.where(left, idx - 1, idx)
    return np.asarray(values, dtype=np.float64)[idx]


def combine(
    curve: LoopCurve, bank_scores: np.ndarray | None, bank_times: np.ndarray | None, rule: str = RULE
) -> tuple[np.ndarray, np.ndarray, str]:
    """(scores, times, method): the loop-aware curve (`method` "repetition") when the loop repeats, by `rule`;
    the bank's own curve (`method` "bank") when it does not; `method` "none" when neither exists."""
    if rule not in RULES:
        raise ValueError(f"unknown combination rule {rule!r}; choose from {', '.join(RULES)}")
    has_bank = bank_scores is not None and len(bank_scores) > 0
    if curve.period_s is None:
        if not has_bank:
            return np.zeros(0), np.zeros(0), "none"
        return np.asarray(bank_scores, dtype=np.float64), np.asarray(bank_times, dtype=np.float64), "bank"
    scores = curve.combined
    if rule == "max" and has_bank:
        bank = on_grid(np.asarray(bank_scores), np.asarray(bank_times), curve.times) / BANK_SCALE
        scores = np.maximum(scores, bank)
    return scores, curve.times, "repetition"


def top_spans(scores: np.ndarray, times: np.ndarray, k: int = 3, share: float = 0.5) -> list[dict]:
    """The `k` highest peaks of a curve as spans `{"start_s", "end_s", "peak_s", "score"}`: each peak grown while
    the curve stays above `share` x the peak's height (above the curve's median); spans do not overlap."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if s.size == 0:
        return []
    dt = float(t[1] - t[0]) if len(t) > 1 else 2 * float(t[0])
    base = float(np.median(s))
    free = np.ones(len(s), dtype=bool)
    spans = []
    while len(spans) < k and free.any():
        peak = int(np.flatnonzero(free)[np.argmax(s[free])])
        level = base + share * (s[peak] - base)
        lo, hi = peak, peak
        while lo > 0 and free[lo - 1] and s[lo - 1] >= level:
            lo -= 1
        while hi < len(s) - 1 and free[hi + 1] and s[hi + 1] >= level:
            hi += 1
        free[max(0, lo - 1) : hi + 2] = False
        start, end = max(0.0, t[lo] - dt / 2), t[hi] + dt / 2
        spans.append(
            {
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "peak_s": round(float(t[peak]), 3),
                "score": float(s[peak]),
            }
        )
    return spans
