"""How many loops does a detector need? AUROC against the number of training loops, and the false-alarm rate of
a 95th-percentile threshold against the number of calibration loops (docs/robustness.md, "Small data").

    python scripts/small_data_study.py [--embeddings ../shared/data/musicradar-bass-392] [--seeds 5]

Detection: real HTS-AT embeddings (one folder of the pack = normal, its unused rows vs every other folder =
test), n training rows drawn with each seed. Threshold: distribution-free (scores of normal loops are uniform
after their CDF), so 20000 draws of n uniform calibration scores give the exact false-alarm rate of
`np.quantile(scores, 0.95)` on new normal loops.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def threshold_false_alarms(sizes: list[int], quantile: float = 0.95, draws: int = 20000) -> None:
    rng = np.random.default_rng(0)
    print(
        f"threshold at the {quantile:.0%} quantile of n calibration scores (target false-alarm rate {1 - quantile:.0%})"
    )
    for n in sizes:
        fpr = 1 - np.quantile(rng.random((draws, n)), quantile, axis=1)
        lo, hi = np.quantile(fpr, [0.05, 0.95])
        print(f"  n={n:4d}  mean false-alarm rate {fpr.mean():.3f}  90% of runs {lo:.3f}-{hi:.3f}")


def detection_vs_size(root: Path, sizes: list[int], seeds: int, detectors: list[str]) -> None:
    import csv

    from loop_svdd.detectors import make_detector
    from loop_svdd.metrics import compute_anomaly_metrics

    X = np.load(root / "nff.npy")
    with open(root / "index.csv", newline="") as f:
        folders = np.array([r["folder"] for r in csv.DictReader(f)])
    big = [f for f in sorted(set(folders)) if (folders == f).sum() >= max(sizes) + 10]
    print(f"detection: {len(big)} folders with >= {max(sizes) + 10} loops as the normal class, {seeds} seeds")
    for name in detectors:
        for n in sizes:
            aurocs = []
            for folder in big:
                rows = np.flatnonzero(folders == folder)
                for seed in range(seeds):
                    order = np.random.default_rng(seed).permutation(rows)
                    train, test_normal = order[:n], order[max(sizes) :]  # same test rows for every n
                    test = np.r_[test_normal, np.flatnonzero(folders != folder)]
                    labels = np.r_[np.zeros(len(test_normal)), np.ones(len(test) - len(test_normal))]
                    scores = make_detector(name, random_state=seed).fit(X[train]).decision_function(X[test])
                    aurocs.append(compute_anomaly_metrics(scores, labels)["auroc"])
            a = np.array(aurocs)
            print(f"  {name:10s} n_train={n:3d}  AUROC mean {a.mean():.3f}  sd {a.std():.3f}  min {a.min():.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--embeddings", default=str(Path(__file__).resolve().parents[1] / "../shared/data/musicradar-bass-392")
    )
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 40])
    p.add_argument("--detectors", nargs="+", default=["knn", "deep_svdd"])
    args = p.parse_args()
    threshold_false_alarms([2, 5, 10, 20, 50, 100])
    root = Path(args.embeddings)
    if (root / "nff.npy").is_file():
        detection_vs_size(root, args.sizes, args.seeds, args.detectors)
    else:
        print(f"no embeddings at {root}: detection part skipped")


if __name__ == "__main__":
    main()
