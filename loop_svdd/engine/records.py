"""The scored-loop record that scoring, the CLI, curation and the demo share, and how a `forward` output becomes
one per loop."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDOutput
from .repetition import top_spans

__all__ = ["ScoredLoop", "percentile_of", "records_of", "verdict"]


@dataclass
class ScoredLoop:
    """A scored loop: the one record that scoring, the CLI and the demo share.

    ``window_scores`` / ``window_start_s``: one score per 10 s window (one window for loops up to 10 s and for
    fused encoders); ``embedding``: the clip embedding, when kept; ``name``: what to show (default: the file's).
    """

    file: str
    duration_s: float
    score: float
    percentile: float | None = None
    verdict: str = "uncalibrated"
    window_scores: list[float] = field(default_factory=list)
    window_start_s: list[float] = field(default_factory=list)
    time_scores: list[float] | None = None  # on the loop's own timeline (models with a memory bank)
    time_scores_s: list[float] | None = None
    time_method: str | None = None  # "repetition" (loop-aware) or "bank" (the loop does not repeat)
    period_s: float | None = None  # the loop's period found for the repetition scores
    embedding: np.ndarray | None = field(default=None, repr=False)
    name: str = ""

    def __post_init__(self) -> None:
        self.file = str(self.file)
        self.name = self.name or Path(self.file).name

    def judged(self, threshold: float | None, calibration_scores: list[float] | None) -> ScoredLoop:
        """Set the verdict and percentile from a model's threshold and held-out normal scores."""
        self.verdict = verdict(self.score, threshold)
        self.percentile = percentile_of(self.score, calibration_scores)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Every field but the embedding (JSON-able; ``ScoredLoop(**d)`` rebuilds it)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "embedding"}

    def to_json(self) -> dict[str, Any]:
        """What `loop-svdd score --json` prints for a loop."""
        windows = [{"start_s": t, "score": v} for t, v in zip(self.window_start_s, self.window_scores, strict=True)]
        return {
            "file": self.file,
            "score": self.score,
            "verdict": self.verdict,
            "percentile": self.percentile,
            "duration_s": self.duration_s,
            "windows": windows,
            "time_scores": self.time_scores,
            "time_scores_s": self.time_scores_s,
            "time_method": self.time_method,
            "period_s": self.period_s,
            "time_spans": top_spans(self.time_scores, self.time_scores_s) if self.time_scores else [],
        }


def verdict(score: float, threshold: float | None) -> str:
    if threshold is None:
        return "uncalibrated"
    return "anomalous" if score > threshold else "normal"


def percentile_of(score: float, calibration_scores: list[float] | None) -> float | None:
    """Percentage of held-out normal loops scoring at or below `score`."""
    if not calibration_scores:
        return None
    return 100.0 * bisect.bisect_right(calibration_scores, score) / len(calibration_scores)


def records_of(
    output: LoopSVDDOutput, files: list[str], durations: list[float], keep_embedding: bool = True
) -> list[ScoredLoop]:
    """One `ScoredLoop` per loop of a `forward` output (verdicts are set by `ScoredLoop.judged`)."""
    idx = output.window_clip_index.cpu()
    starts = output.window_start_s
    records = []
    for i, (file, duration) in enumerate(zip(files, durations, strict=True)):
        sel = idx == i
        records.append(
            ScoredLoop(
                file=file,
                duration_s=duration,
                score=float(output.anomaly_score[i]),
                window_scores=output.window_scores.cpu()[sel].float().tolist(),
                window_start_s=[0.0] if starts is None else starts.cpu()[sel].tolist(),
                time_scores=None if output.time_scores is None else output.time_scores[i].tolist(),
                time_scores_s=None if output.time_scores_s is None else output.time_scores_s[i].tolist(),
                embedding=output.embedding[i].float().cpu().numpy() if keep_embedding else None,
            )
        )
    return records
