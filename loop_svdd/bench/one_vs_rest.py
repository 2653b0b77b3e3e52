"""One-vs-rest benchmark on a folder of embeddings (``<features>.npy`` + ``index.csv``).

Protocol (``shared/data/musicradar-bass-392/README.md``): for each class folder F and seed s, shuffle F's rows
with ``numpy.random.default_rng(s).permutation``, train on the first ``floor(0.7 n)``, test on the rest of F
(label 0) plus every row of the other folders (label 1). Detectors fit their preprocessing on train rows only.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..detectors import DETECTORS, PYOD_PEERS, make_detector
from ..metrics import compute_anomaly_metrics
from .report import BenchmarkError, BenchResult, add_report_options

TRAIN_FRACTION = 0.7
DEFAULT_DETECTORS = ("deep_svdd", "deep_svdd_residual", "isolation_forest", "pca", "knn", "ocsvm")
SHIPPED = "deep_svdd"  # what `loop-svdd train` ships (the paper's Deep SVDD, 3 heads); marked in every table


class BenchmarkDataError(BenchmarkError):
    """The embeddings folder is missing or malformed."""


@dataclass
class EmbeddingSet:
    embeddings: np.ndarray
    folders: np.ndarray

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.folders.tolist()))


def load_embedding_set(directory: str | os.PathLike, features: str = "nff") -> EmbeddingSet:
    """Read ``<directory>/<features>.npy`` (n, d) and ``<directory>/index.csv`` (``row,file,folder``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BenchmarkDataError(f"embeddings folder not found: {directory}")
    npy, index = directory / f"{features}.npy", directory / "index.csv"
    for path in (npy, index):
        if not path.is_file():
            raise BenchmarkDataError(f"missing {path.name} in {directory}")
    try:
        x = np.load(npy, allow_pickle=False)
    except ValueError as err:
        raise BenchmarkDataError(f"cannot read {npy}: {err}") from None
    if x.ndim != 2 or len(x) == 0:
        raise BenchmarkDataError(f"{npy.name} must be a 2-D (n, d) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise BenchmarkDataError(f"{npy.name} contains NaN or inf values")
    with open(index, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"row", "folder"} <= set(reader.fieldnames):
            raise BenchmarkDataError(f"{index.name} must have the columns row,file,folder")
        rows = sorted(((int(r["row"]), r["folder"]) for r in reader), key=lambda t: t[0])
    if [r for r, _ in rows] != list(range(len(x))):
        raise BenchmarkDataError(
            f"{index.name} lists {len(rows)} rows but {npy.name} has {len(x)} (rows must be 0..n-1)"
        )
    folders = np.array([f for _, f in rows])
    if len(set(folders.tolist())) < 2:
        raise BenchmarkDataError("one-vs-rest needs at least 2 folders")
    return EmbeddingSet(x.astype(np.float32), folders)


def split_one_vs_rest(data: EmbeddingSet, folder: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train_rows, test_rows, test_labels) for normal class ``folder`` and ``seed``."""
    members = np.flatnonzero(data.folders == folder)
    perm = members[np.random.default_rng(seed).permutation(len(members))]
    n_train = int(math.floor(TRAIN_FRACTION * len(members)))
    if n_train < 2 or n_train == len(members):
        raise BenchmarkDataError(f"folder {folder!r} has {len(members)} rows: too few for a 70/30 split")
    train, test_normal = perm[:n_train], perm[n_train:]
    others = np.flatnonzero(data.folders != folder)
    test = np.concatenate([test_normal, others])
    labels = np.concatenate([np.zeros(len(test_normal), int), np.ones(len(others), int)])
    return train, test, labels


@dataclass
class RunRecord:
    detector: str
    folder: str
    seed: int
    metrics: dict[str, float]
    fit_seconds: float
    scores: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)


def run_benchmark(
    data: EmbeddingSet,
    detectors: Sequence[str],
    seeds: Sequence[int],
    detector_kwargs: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    on_record: Callable[[RunRecord], None] | None = None,
) -> list[RunRecord]:
    """Fit and score every (detector, folder, seed)."""
    from tqdm.auto import tqdm

    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise BenchmarkDataError(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(DETECTORS)}")
    jobs = [(d, f, s) for d in detectors for s in seeds for f in data.classes]
    records = []
    bar = tqdm(jobs, desc="benchmark", disable=not progress)
    for name, folder, seed in bar:
        bar.set_postfix_str(f"{name} {folder} seed={seed}")
        train, test, labels = split_one_vs_rest(data, folder, seed)
        detector = make_detector(name, random_state=seed, **(detector_kwargs or {}).get(name, {}))
        start = time.perf_counter()
        detector.fit(data.embeddings[train])
        scores = detector.decision_function(data.embeddings[test])
        elapsed = time.perf_counter() - start
        record = RunRecord(name, folder, seed, compute_anomaly_metrics(scores, labels), elapsed, scores, labels)
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records


def summarize(records: Sequence[RunRecord], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The benchmark JSON: ``{"detectors": {name: {mean_auroc, mean_auprc, mean_pauc, per_class, ...}}}``."""
    out: dict[str, Any] = {"detectors": {}}
    for name in dict.fromkeys(r.detector for r in records):
        rs = [r for r in records if r.detector == name]
        seeds = sorted({r.seed for r in rs})
        folders = sorted({r.folder for r in rs})
        per_seed = {str(s): float(np.mean([r.metrics["auroc"] for r in rs if r.seed == s])) for s in seeds}
        out["detectors"][name] = {
            "mean_auroc": float(np.mean([r.metrics["auroc"] for r in rs])),
            "mean_auprc": float(np.mean([r.metrics["auprc"] for r in rs])),
            "mean_pauc": float(np.mean([r.metrics["pauc"] for r in rs])),
            "std_auroc": float(np.std(list(per_seed.values()))),
            "per_class": {f: float(np.mean([r.metrics["auroc"] for r in rs if r.folder == f])) for f in folders},
            "per_seed": per_seed,
            "fit_seconds": float(sum(r.fit_seconds for r in rs)),
        }
    if settings:
        out["settings"] = settings
    return out


def to_markdown(summary: dict[str, Any]) -> str:
    """Markdown table of the summary: one row per detector, best mean AUROC in bold."""
    dets = summary["detectors"]
    best = max(dets, key=lambda d: dets[d]["mean_auroc"])
    lines = [
        "| detector | mean AUROC | std over seeds | mean AUPRC | mean pAUC (FPR<=0.1) | fit+score s |",
        "|---|---|---|---|---|---|",
    ]
    for name, d in sorted(dets.items(), key=lambda kv: -kv[1]["mean_auroc"]):
        auroc = f"**{d['mean_auroc']:.4f}**" if name == best else f"{d['mean_auroc']:.4f}"
        label = f"{name} (shipped by `train`)" if name == SHIPPED else name
        lines.append(
            f"| {label} | {auroc} | {d.get('std_auroc', float('nan')):.4f} | {d['mean_auprc']:.4f} | "
            f"{d['mean_pauc']:.4f} | {d.get('fit_seconds', float('nan')):.1f} |"
        )
    folders = sorted(next(iter(dets.values()))["per_class"])
    lines += ["", "Mean AUROC per normal folder:", ""]
    lines.append("| folder | " + " | ".join(dets) + " |")
    lines.append("|---|" + "---|" * len(dets))
    for f in folders:
        lines.append(f"| {f} | " + " | ".join(f"{dets[d]['per_class'][f]:.4f}" for d in dets) + " |")
    return "\n".join(lines) + "\n"


def save_plots(records: Sequence[RunRecord], directory: str | os.PathLike) -> list[Path]:
    """ROC curves (seed-0 runs, one panel per detector) and score histograms per detector and folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    names = list(dict.fromkeys(r.detector for r in records))
    first_seed = min(r.seed for r in records)
    for name in names:
        rs = [r for r in records if r.detector == name and r.seed == first_seed]
        fig, ax = plt.subplots(figsize=(6, 5))
        for r in rs:
            fpr, tpr, _ = roc_curve(r.labels, r.scores)
            ax.plot(fpr, tpr, lw=1, label=f"{r.folder} ({r.metrics['auroc']:.3f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, {name}, seed {first_seed}")
        ax.legend(fontsize=6, loc="lower right")
        path = directory / f"roc_{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

        cols = 3
        nrows = math.ceil(len(rs) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.6 * nrows), squeeze=False)
        for ax, r in zip(axes.flat, rs, strict=False):
            bins = np.histogram_bin_edges(r.scores, bins=30)
            ax.hist(r.scores[r.labels == 0], bins=bins, alpha=0.7, density=True, label="normal (held out)")
            ax.hist(r.scores[r.labels == 1], bins=bins, alpha=0.5, density=True, label="other folders")
            ax.set_title(r.folder, fontsize=8)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(rs) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=6)
        fig.suptitle(f"score histograms, {name}, seed {first_seed}", fontsize=9)
        path = directory / f"hist_{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# -- the protocol: `loop-svdd benchmark one-vs-rest` -------------------------------------------------------------
NAME = "one-vs-rest"
DESCRIPTION = (
    "For each folder F and seed s: train on 70% of F (shuffled with numpy.random.default_rng(s)), "
    "test on the rest of F (normal) plus every other folder (anomalies). Reports AUROC, AUPRC and "
    "pAUC (FPR <= 0.1) averaged over folders and seeds."
)


def add_embedding_options(parser: argparse.ArgumentParser) -> None:
    """The options of the protocols run on a folder of embeddings (one-vs-rest, contaminated)."""
    parser.add_argument(
        "--embeddings", required=True, help="folder with <features>.npy and index.csv (row,file,folder)"
    )
    parser.add_argument("--features", default="nff", help="which array to read: <features>.npy (default: nff)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="split seeds (default: 0-4)")
    parser.add_argument(
        "--detectors",
        nargs="+",
        default=list(DEFAULT_DETECTORS),
        help=f"detectors to run (default: {' '.join(DEFAULT_DETECTORS)})",
    )
    parser.add_argument(
        "--with-peers",
        action="store_true",
        help="add every PyOD peer (" + " ".join(PYOD_PEERS) + "; needs pip install 'loop-svdd[bench]')",
    )
    add_report_options(parser)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the heads are tiny and extra threads only contend)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_embedding_options(parser)
    parser.add_argument("--plots", help="folder for ROC curves and score histograms (PNG)")


def check_embedding_options(args: argparse.Namespace, extra: Sequence[str] = ()) -> None:
    """Refuse bad `--threads` and `--detectors` (registered ones and the protocol's ``extra`` rows), then set
    torch's thread count."""
    if args.threads < 1:
        raise BenchmarkError("--threads must be >= 1")
    if getattr(args, "with_peers", False):
        args.detectors = list(dict.fromkeys([*args.detectors, *PYOD_PEERS]))
    import torch

    torch.set_num_threads(args.threads)
    known = [*DETECTORS, *extra]
    unknown = [d for d in args.detectors if d not in known]
    if unknown:
        raise BenchmarkError(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(known)}")


def run_settings(args: argparse.Namespace, elapsed: float, **extra: Any) -> dict[str, Any]:
    """What every embeddings protocol records next to its results."""
    common = {"embeddings": str(args.embeddings), "features": args.features, "seeds": list(args.seeds)}
    return {**common, **extra, "seconds": round(elapsed, 1)}


def run(args: argparse.Namespace) -> BenchResult:
    check_embedding_options(args)
    data = load_embedding_set(args.embeddings, args.features)
    print(
        f"{len(data.embeddings)} embeddings of dim {data.embeddings.shape[1]} in {len(data.classes)} folders; "
        f"detectors: {', '.join(args.detectors)}; seeds: {' '.join(map(str, args.seeds))}"
    )
    start = time.perf_counter()
    records = run_benchmark(data, args.detectors, args.seeds, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    protocol = "one-vs-rest, 70% of the normal folder for training (floor), rest + other folders for test"
    summary = summarize(records, run_settings(args, elapsed, protocol=protocol))
    if args.plots:
        save_plots(records, args.plots)
    title = f"# Benchmark: {args.embeddings} ({args.features}), seeds {' '.join(map(str, args.seeds))}\n\n"
    return BenchResult(NAME, summary["settings"], to_markdown(summary), summary, title, elapsed)
