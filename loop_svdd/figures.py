"""Figures shared by the demo and the model card: the score distribution of normal loops and a loop's mel
spectrogram with its per-window scores. Matplotlib with the Agg backend; figures are returned as RGB arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .engine.repetition import top_spans

NORMAL_COLOUR = "#4c72b0"
ANOMALY_COLOUR = "#c44e52"
THRESHOLD_COLOUR = "#333333"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    _pyplot().close(fig)
    return rgb


def score_distribution_figure(
    calibration_scores: Sequence[float] | None,
    threshold: float | None,
    marks: Sequence[tuple[str, float]] = (),
    highlight: int | None = None,
    title: str = "Scores of held-out normal loops",
):
    """Histogram of normal scores, the threshold, and optional marked loops (`(label, score)`)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    scores = np.asarray(calibration_scores or [], dtype=float)
    if scores.size:
        ax.hist(scores, bins=min(30, max(5, scores.size // 3)), color=NORMAL_COLOUR, alpha=0.75, label="normal loops")
    else:
        ax.text(0.5, 0.5, "no calibration scores stored", ha="center", va="center", transform=ax.transAxes)
    if threshold is not None:
        ax.axvline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.5, label=f"threshold {threshold:.4g}")
    for i, (label, score) in enumerate(marks):
        anomalous = threshold is not None and score > threshold
        strong = highlight is None or i == highlight
        ax.axvline(
            score,
            color=ANOMALY_COLOUR if anomalous else "#55a868",
            linewidth=2.5 if strong else 1.0,
            alpha=1.0 if strong else 0.45,
            label=label if strong else None,
        )
    ax.set_xlabel("anomaly score (higher = less like the training loops)")
    ax.set_ylabel("loops")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    return fig


def score_distribution_image(*args, **kwargs) -> np.ndarray:
    return _to_array(score_distribution_figure(*args, **kwargs))


def save_score_distribution(calibration_scores: Sequence[float], threshold: float | None, path: str | Path) -> Path:
    """Write the distribution of normal scores as a PNG (for the model card)."""
    fig = score_distribution_figure(calibration_scores, threshold)
    fig.savefig(path, format="png")
    _pyplot().close(fig)
    return Path(path)


TIME_COLOUR = "#dd8452"


def plot_time_scores(ax, times: Sequence[float], scores: Sequence[float], label: str = "time score", mark_peak=True):
    """Draw a loop's time-resolved scores (`LoopSVDDOutput.time_scores`) on `ax` as a filled curve, with its peak
    and top span (`repetition.top_spans`) marked: where in the loop it is least like the normal loops. Returns the
    peak time (s)."""
    t, s = np.asarray(times, dtype=float), np.asarray(scores, dtype=float)
    ax.fill_between(t, s, s.min(), step="mid", color=TIME_COLOUR, alpha=0.35, linewidth=0)
    ax.step(t, s, where="mid", color=TIME_COLOUR, linewidth=1.5, label=label)
    peak = float(t[int(np.argmax(s))])
    if mark_peak:
        ax.axvline(peak, color=ANOMALY_COLOUR, linewidth=1.2, linestyle=":", label=f"peak at {peak:.2f} s")
        span = top_spans(s, t, k=1)[0]
        ax.axvspan(span["start_s"], span["end_s"], color=ANOMALY_COLOUR, alpha=0.2, linewidth=0,
                   label=f"top span {span['start_s']:.2f}-{span['end_s']:.2f} s")  # fmt: skip
    ax.set_ylabel(label)
    return peak


def spectrogram_image(
    log_mel: np.ndarray,
    hop_s: float,
    window_start_s: Sequence[float],
    window_scores: Sequence[float],
    window_length_s: float,
    threshold: float | None,
    title: str = "",
    time_scores: tuple[Sequence[float], Sequence[float]] | None = None,
) -> np.ndarray:
    """Mel spectrogram `(frames, mels)` above its time-resolved scores `(times, scores)` when the model has them,
    else a step plot of the per-window scores over time."""
    plt = _pyplot()
    duration = log_mel.shape[0] * hop_s
    fig, (ax_mel, ax_score) = plt.subplots(
        2, 1, figsize=(7, 4.2), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    ax_mel.imshow(log_mel.T, origin="lower", aspect="auto", extent=(0, duration, 0, log_mel.shape[1]), cmap="magma")
    ax_mel.set_ylabel("mel bin")
    ax_mel.set_title(title or "log-mel spectrogram")
    if time_scores is not None:
        peak = plot_time_scores(ax_score, *time_scores)
        ax_mel.axvline(peak, color="white", linewidth=1.0, linestyle=":")
        ax_score.legend(loc="upper right", fontsize=7)
        ax_score.set_xlabel("time (s)")
        ax_score.set_xlim(0, duration)
        fig.tight_layout()
        return _to_array(fig)
    for start, score in zip(window_start_s, window_scores, strict=True):
        end = min(start + window_length_s, duration)
        anomalous = threshold is not None and score > threshold
        ax_score.hlines(score, start, end, colors=ANOMALY_COLOUR if anomalous else NORMAL_COLOUR, linewidth=3)
    if threshold is not None:
        ax_score.axhline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1, label="threshold")
        ax_score.legend(loc="upper right", fontsize=7)
    ax_score.set_ylabel("window score")
    ax_score.set_xlabel("time (s)")
    ax_score.set_xlim(0, duration)
    values = [*window_scores, *([threshold] if threshold is not None else [])]
    lo, hi = min(values), max(values)
    pad = 0.15 * (hi - lo or abs(hi) or 1.0)
    ax_score.set_ylim(lo - pad, hi + pad)
    fig.tight_layout()
    return _to_array(fig)
