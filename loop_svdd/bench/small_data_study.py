"""How many loops does a detector need? AUROC against the number of training loops, and the false-alarm rate of
a 95th-percentile threshold against the number of calibration loops (docs/robustness.md, "Small data").

    loop-svdd benchmark small-data-study [--embeddings ../shared/data/musicradar-bass-392] [--seeds 5]

Detection: real HTS-AT embeddings (one folder of the pack = normal, its unused rows vs every other folder =
test), n training rows drawn with each seed. Threshold: distribution-free (scores of normal loops are uniform
after their CDF), so 20000 draws of n uniform calibration scores give the exact false-alarm rate of
`np.quantile(scores, 0.95)` on new normal loops.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

from ..detectors import make_detector
from ..metrics import compute_anomaly_metrics
from .report import BenchResult, add_report_options

CALIBRATION_SIZES = [2, 5, 10, 20, 50, 100]
# a source checkout's shared data (the project's layout: the repository beside `shared/`)
DEFAULT_EMBEDDINGS = str(Path(__file__).resolve().parents[2] / "../shared/data/musicradar-bass-392")


def threshold_false_alarms(
    sizes: list[int], quantile: float = 0.95, draws: int = 20000
) -> tuple[list[str], dict[str, dict[str, float]]]:
    """(printed lines, `{n: {mean, lo, hi}}`): the false-alarm rate of the threshold per calibration size."""
    rng = np.random.default_rng(0)
    lines = [
        f"threshold at the {quantile:.0%} quantile of n calibration scores (target false-alarm rate {1 - quantile:.0%})"
    ]
    figures = {}
    for n in sizes:
        fpr = 1 - np.quantile(rng.random((draws, n)), quantile, axis=1)
        lo, hi = np.quantile(fpr, [0.05, 0.95])
        lines.append(f"  n={n:4d}  mean false-alarm rate {fpr.mean():.3f}  90% of runs {lo:.3f}-{hi:.3f}")
        figures[str(n)] = {"mean": float(fpr.mean()), "lo": float(lo), "hi": float(hi)}
    return lines, figures


def size_aurocs(X: np.ndarray, folders: np.ndarray, big: list[str], name: str, n: int, sizes: list[int], seeds: int):
    """AUROCs of detector `name` trained on `n` rows, for every large folder and seed (same test rows for any n)."""
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
    return np.array(aurocs)


def detection_vs_size(
    root: Path, sizes: list[int], seeds: int, detectors: list[str]
) -> tuple[list[str], dict[str, dict[str, dict[str, float]]]]:
    """(printed lines, `{detector: {n: {mean, sd, min}}}`): AUROC per number of training rows."""
    X = np.load(root / "nff.npy")
    with open(root / "index.csv", newline="") as f:
        folders = np.array([r["folder"] for r in csv.DictReader(f)])
    big = [f for f in sorted(set(folders)) if (folders == f).sum() >= max(sizes) + 10]
    lines = [f"detection: {len(big)} folders with >= {max(sizes) + 10} loops as the normal class, {seeds} seeds"]
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for name in detectors:
        for n in sizes:
            a = size_aurocs(X, folders, big, name, n, sizes, seeds)
            lines.append(f"  {name:10s} n_train={n:3d}  AUROC mean {a.mean():.3f}  sd {a.std():.3f}  min {a.min():.3f}")
            figures.setdefault(name, {})[str(n)] = {
                "mean": float(a.mean()),
                "sd": float(a.std()),
                "min": float(a.min()),
            }
    return lines, figures


# -- the protocol: `loop-svdd benchmark small-data-study` --------------------------------------------------------
NAME = "small-data-study"
DESCRIPTION = __doc__.splitlines()[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embeddings", default=DEFAULT_EMBEDDINGS, help="folder with nff.npy and index.csv (default: shared data)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per folder and size (default: 5)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[5, 10, 20, 40], help="training sizes (default: 5 10 20 40)"
    )
    parser.add_argument(
        "--detectors", nargs="+", default=["knn", "deep_svdd"], help="detectors (default: knn deep_svdd)"
    )
    add_report_options(parser, json_required=False)


def run(args: argparse.Namespace) -> BenchResult:
    lines, threshold = threshold_false_alarms(CALIBRATION_SIZES)
    payload: dict[str, Any] = {"protocol": NAME, "threshold_false_alarms": threshold}
    root = Path(args.embeddings)
    if (root / "nff.npy").is_file():
        detection, payload["detection"] = detection_vs_size(root, args.sizes, args.seeds, args.detectors)
        lines += detection
    else:
        lines.append(f"no embeddings at {root}: detection part skipped")
    settings = {"embeddings": str(root), "seeds": args.seeds, "sizes": args.sizes, "detectors": args.detectors}
    return BenchResult(NAME, settings, "\n".join(lines), {**payload, "settings": settings})
