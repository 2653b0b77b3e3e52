"""Time scores as text: a one-line curve per loop and where it peaks (`loop-svdd score --timeline`)."""

from __future__ import annotations

import numpy as np

__all__ = ["format_timelines", "sparkline"]

SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 48) -> str:
    """A one-line curve of `values` (max over groups when longer than `width`), scaled to its own range."""
    v = np.asarray(values, dtype=float)
    if v.size > width:
        v = np.array([chunk.max() for chunk in np.array_split(v, width)])
    lo, hi = float(v.min()), float(v.max())
    levels = np.zeros(v.size, dtype=int) if hi <= lo else np.round((v - lo) / (hi - lo) * (len(SPARK) - 2)) + 1
    return "".join(SPARK[int(k)] for k in levels)


def format_timelines(results: list[dict]) -> str:
    """Per scored loop (`ScoredLoop.to_json()`): its time-score curve and where it peaks."""
    lines = ["time scores (higher = less like the normal loops at that moment):"]
    for r in results:
        scores, times = r.get("time_scores"), r.get("time_scores_s")
        if not scores:
            lines.append(f"  {r['file']}: no time scores (this model has no memory bank; retrain to get one)")
            continue
        peak = int(np.argmax(scores))
        lines.append(
            f"  {r['file']}: 0-{r['duration_s']:.1f} s |{sparkline(scores)}| peak {scores[peak]:.3g} at "
            f"{times[peak]:.2f} s{_method_note(r)}"
        )
    return "\n".join(lines)


def _method_note(result: dict) -> str:
    """Which time scores were used: loop-aware (with the period found) or the bank alone."""
    method = result.get("time_method")
    if method == "repetition":
        return f" (loop-aware, period {result['period_s']:.2f} s)"
    if method == "bank":
        return " (bank only: no repetition found)"
    return ""
