"""Measure variants of the loop-aware time scores on the defect benchmark's loops, model-free (docs/localisation.md,
"How the constants were chosen").

    python scripts/repetition_candidates.py CORPUS --n-test 30 --seed 1

Prints, per variant, mean hit rate / mean loop AUROC over the defect kinds of `repetition.loop_curve(...).combined`
(the shipped curve of every loop that repeats), tempo known unless the variant says otherwise.
"""

from __future__ import annotations

import argparse

import numpy as np

from loop_svdd.engine import repetition as rep
from loop_svdd.bench.defects import kind_metrics, make_defect_set, summarise

SR = 48_000


def measure(data, beats) -> str:
    sets = {"clean": data.clean, **{k: [w for w, _ in v] for k, v in data.defective.items()}}
    curves = {}
    for name, waves in sets.items():
        loops = [rep.loop_curve(w, SR, b) for w, b in zip(waves, beats, strict=True)]
        curves[name] = [(c.combined, c.times) for c in loops]
    per_kind = {
        k: kind_metrics(curves["clean"], curves[k], [d for _, d in v], data.beats) for k, v in data.defective.items()
    }
    s = summarise(per_kind)
    kinds = " ".join(f"{k} {m['hit_rate']:.2f}/{m['auroc']:.2f}" for k, m in per_kind.items())
    return f"{s['mean_hit_rate']:.3f} / {s['mean_auroc']:.3f} | {kinds}"


def floor_variant(quantile: float | None):
    """`transient_scores` with the counterpart floored at `quantile` (None: no floor)."""

    def scores(trans, lags, slack=rep.TRANSIENT_SLACK):
        ref = trans if quantile is None else np.maximum(trans, np.quantile(trans, quantile))
        per_lag = [np.min([trans - np.roll(ref, -(lag + s)) for s in range(-slack, slack + 1)], axis=0) for lag in lags]
        return np.maximum(np.median(per_lag, axis=0), 0.0)

    return scores


def print_scales(corpus: str, data) -> None:
    """The medians over the bank loops of each path's unscaled curve maximum (loops that repeat)."""
    from loop_svdd.audio.corpora import load_corpus

    bpm = load_corpus(corpus)["bpm"]
    curves = [rep.loop_curve(w, SR, 60.0 / bpm[r]) for w, r in zip(data.bank, data.bank_rows, strict=True)]
    curves = [c for c in curves if c.period_s is not None]
    drop = np.median([c.repetition.max() for c in curves]) * rep.DROP_SCALE_DB
    transient = np.median([c.signal.max() for c in curves]) * rep.TRANSIENT_SCALE
    print(f"DROP_SCALE_DB {drop:.2f}  TRANSIENT_SCALE {transient:.3f}  ({len(curves)} bank loops that repeat)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--n-bank", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scales", action="store_true", help="print the paths' scales on the bank loops and stop")
    args = parser.parse_args()
    data = make_defect_set(args.corpus, [], args.n_bank, args.n_test, args.seed)
    if args.scales:
        print_scales(args.corpus, data)
        return
    print(f"shipped, tempo known: {measure(data, data.beats)}")
    print(f"shipped, tempo unknown: {measure(data, [None] * len(data.beats))}")
    shipped = rep.transient_scores
    for q in (None, 0.1, 0.5, 0.75, 0.9):
        rep.transient_scores = floor_variant(q)
        print(f"transient floor {q}: {measure(data, data.beats)}")
    rep.transient_scores = shipped
    scale = rep.TRANSIENT_SCALE
    for factor in (1.25, 1.5, 2.0):
        rep.TRANSIENT_SCALE = scale * factor
        print(f"signal scale x{factor}: {measure(data, data.beats)}")
    rep.TRANSIENT_SCALE = scale


if __name__ == "__main__":
    main()
