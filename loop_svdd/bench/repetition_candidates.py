"""Measure variants of the loop-aware time scores on the defect benchmark's loops, model-free (docs/localisation.md,
"How the constants were chosen").

    loop-svdd benchmark repetition-candidates CORPUS --n-test 30 --seed 1

Prints, per variant, mean hit rate / mean loop AUROC over the defect kinds of `repetition.loop_curve(...).combined`
(the shipped curve of every loop that repeats), tempo known unless the variant says otherwise. The variants are
measured by swapping `engine.repetition`'s transient scores and scale for the run (restored after).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from ..engine import repetition as rep
from ..settings import SAMPLING_RATE
from .defects import DefectSet, kind_metrics, make_defect_set, summarise
from .report import BenchResult, add_report_options

SR = SAMPLING_RATE


def measure(data: DefectSet, beats: list[float | None]) -> dict:
    """`summarise` of the shipped combined curve over every defect kind."""
    sets = {"clean": data.clean, **{k: [w for w, _ in v] for k, v in data.defective.items()}}
    curves = {}
    for name, waves in sets.items():
        loops = [rep.loop_curve(w, SR, b) for w, b in zip(waves, beats, strict=True)]
        curves[name] = [(c.combined, c.times) for c in loops]
    per_kind = {
        k: kind_metrics(curves["clean"], curves[k], [d for _, d in v], data.beats) for k, v in data.defective.items()
    }
    return summarise(per_kind)


def measured_line(s: dict) -> str:
    kinds = " ".join(f"{k} {m['hit_rate']:.2f}/{m['auroc']:.2f}" for k, m in s["defects"].items())
    return f"{s['mean_hit_rate']:.3f} / {s['mean_auroc']:.3f} | {kinds}"


def floor_variant(quantile: float | None) -> Callable:
    """`transient_scores` with the counterpart floored at `quantile` (None: no floor)."""

    def scores(trans, lags, slack=rep.TRANSIENT_SLACK):
        ref = trans if quantile is None else np.maximum(trans, np.quantile(trans, quantile))
        per_lag = [np.min([trans - np.roll(ref, -(lag + s)) for s in range(-slack, slack + 1)], axis=0) for lag in lags]
        return np.maximum(np.median(per_lag, axis=0), 0.0)

    return scores


@contextmanager
def swapped(name: str, value):
    """`engine.repetition.<name>` set to `value` inside the block."""
    shipped = getattr(rep, name)
    setattr(rep, name, value)
    try:
        yield
    finally:
        setattr(rep, name, shipped)


def scales_line(corpus: str, data: DefectSet) -> str:
    """The medians over the bank loops of each path's unscaled curve maximum (loops that repeat)."""
    from ..audio.corpora import load_corpus

    bpm = load_corpus(corpus)["bpm"]
    curves = [rep.loop_curve(w, SR, 60.0 / bpm[r]) for w, r in zip(data.bank, data.bank_rows, strict=True)]
    curves = [c for c in curves if c.period_s is not None]
    drop = np.median([c.repetition.max() for c in curves]) * rep.DROP_SCALE_DB
    transient = np.median([c.signal.max() for c in curves]) * rep.TRANSIENT_SCALE
    return f"DROP_SCALE_DB {drop:.2f}  TRANSIENT_SCALE {transient:.3f}  ({len(curves)} bank loops that repeat)"


def variants(data: DefectSet) -> dict[str, dict]:
    """Per variant label, its `measure`."""
    out = {}

    def record(label: str, beats) -> None:
        out[label] = measure(data, beats)

    record("shipped, tempo known", data.beats)
    record("shipped, tempo unknown", [None] * len(data.beats))
    for q in (None, 0.1, 0.5, 0.75, 0.9):
        with swapped("transient_scores", floor_variant(q)):
            record(f"transient floor {q}", data.beats)
    for factor in (1.25, 1.5, 2.0):
        with swapped("TRANSIENT_SCALE", rep.TRANSIENT_SCALE * factor):
            record(f"signal scale x{factor}", data.beats)
    return out


# -- the protocol: `loop-svdd benchmark repetition-candidates` ---------------------------------------------------
NAME = "repetition-candidates"
DESCRIPTION = __doc__.split("\n\n")[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="a loop corpus with a bpm column (all its loops are normal)")
    parser.add_argument("--n-bank", type=int, default=40, help="bank loops (default: 40)")
    parser.add_argument("--n-test", type=int, default=30, help="held-out loops (default: 30)")
    parser.add_argument("--seed", type=int, default=1, help="which loops, beats and defects (default: 1)")
    parser.add_argument("--scales", action="store_true", help="print the paths' scales on the bank loops and stop")
    add_report_options(parser, json_required=False)


def run(args: argparse.Namespace) -> BenchResult:
    data = make_defect_set(args.corpus, [], args.n_bank, args.n_test, args.seed)
    settings = {k: getattr(args, k) for k in ("corpus", "n_bank", "n_test", "seed", "scales")}
    if args.scales:
        line = scales_line(args.corpus, data)
        return BenchResult(NAME, settings, line, {"protocol": NAME, "scales": line, "settings": settings})
    results = variants(data)
    table = "\n".join(f"{label}: {measured_line(s)}" for label, s in results.items())
    return BenchResult(NAME, settings, table, {"protocol": NAME, "variants": results, "settings": settings})
