"""Evaluate a trained detector on a corpus: held-out normal loops vs. labelled anomalies, overall and per
anomaly kind, next to the baselines fitted on the same training embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..audio.corpora import CorpusError, RowFilter, column_values, load_corpus, select, small_data_warnings
from ..audio.decoding import decodable_rows, public_skipped
from ..engine.cache import embed_decodable
from ..engine.scoring import model_scores
from ..metrics import compute_anomaly_metrics
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.model_io import load_detector, read_json
from ..settings import TRAIN
from .from_corpus import SUMMARY_FILE, row_names

BASELINES = ("isolation_forest", "pca", "knn", "ocsvm")


def _metrics_by_group(
    scores: np.ndarray, normal: np.ndarray, anomaly: np.ndarray, groups: np.ndarray | None, threshold: float | None
) -> dict[str, Any]:
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomaly))]
    out = compute_anomaly_metrics(np.r_[scores[normal], scores[anomaly]], labels, threshold=threshold)
    if groups is not None:
        per_group = {}
        for g in sorted(set(groups[anomaly].tolist())):
            rows = anomaly[groups[anomaly] == g]
            lab = np.r_[np.zeros(len(normal)), np.ones(len(rows))]
            per_group[str(g)] = compute_anomaly_metrics(np.r_[scores[normal], scores[rows]], lab)["auroc"]
        out["per_group_auroc"] = per_group
    return out


def evaluate_embeddings(
    model: LoopSVDDModel,
    embeddings: np.ndarray,
    train_rows: np.ndarray,
    normal_rows: np.ndarray,
    anomaly_rows: np.ndarray,
    groups: np.ndarray | None = None,
    baselines: tuple[str, ...] = BASELINES,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of the model and of each baseline (fitted on `embeddings[train_rows]`)."""
    if len(normal_rows) == 0 or len(anomaly_rows) == 0:
        raise CorpusError(
            f"evaluation needs held-out normal and anomalous loops (got {len(normal_rows)} normal, "
            f"{len(anomaly_rows)} anomalous)"
        )
    results = {
        "loop_svdd": _metrics_by_group(
            model_scores(model, embeddings), normal_rows, anomaly_rows, groups, model.config.threshold
        )
    }
    if baselines:
        from ..detectors import make_detector

        for name in baselines:
            detector = make_detector(name, random_state=seed).fit(embeddings[train_rows])
            scores = np.full(len(embeddings), np.nan)
            rows = np.r_[normal_rows, anomaly_rows]
            scores[rows] = detector.decision_function(embeddings[rows])
            results[name] = _metrics_by_group(scores, normal_rows, anomaly_rows, groups, detector.threshold_)
    return results


def _test_rows(
    dataset, corpus: str | Path, normal: list[RowFilter], anomaly: list[RowFilter] | None, summary: dict | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(held-out normal, anomaly, training) rows of `dataset`; the training rows come from the `summary` of a
    model trained on this very corpus (None: another corpus, no training rows)."""
    normal_rows = select(dataset, normal)
    train_rows = np.array([], dtype=int)
    if summary is not None:
        names = row_names(dataset)
        train_rows = np.asarray(summary["train_rows"], dtype=int)
        if [names[i] for i in train_rows] != summary["train_files"]:
            raise CorpusError(f"{corpus}: the corpus changed since training (training rows no longer match)")
        normal_rows = np.setdiff1d(normal_rows, train_rows)
    anomaly_rows = (
        select(dataset, anomaly) if anomaly else np.setdiff1d(np.arange(len(dataset)), select(dataset, normal))
    )
    return normal_rows, np.setdiff1d(anomaly_rows, np.r_[normal_rows, train_rows]), train_rows


def evaluate_on_corpus(
    model_source: str | Path,
    corpus: str | Path,
    normal: list[RowFilter] | None = None,
    anomaly: list[RowFilter] | None = None,
    by: str | None = None,
    baselines: tuple[str, ...] = BASELINES,
    batch_size: int = TRAIN.encoder_batch_size,
    split: str = "train",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a saved detector on `corpus`.

    Normal test loops are those matching `normal` (default: the training filter) minus the rows the model was
    trained on; anomalies match `anomaly` (default: every other row). `by` names a metadata column whose values
    give per-anomaly-kind AUROCs. Baselines need the training rows (from `training_summary.json`).
    """
    model, extractor = load_detector(model_source)
    summary = read_json(Path(model_source) / SUMMARY_FILE) if Path(model_source).is_dir() else None
    dataset = load_corpus(corpus, split=split)
    same_corpus = summary is not None and Path(str(summary["corpus"])).resolve() == Path(str(corpus)).resolve()
    if normal is None:
        if summary is None:
            raise CorpusError("say which loops are normal (--normal COLUMN=VALUE): the model has no training summary")
        normal = [RowFilter.parse(f) for f in summary["normal_filter"]]
    normal_rows, anomaly_rows, train_rows = _test_rows(
        dataset, corpus, normal, anomaly, summary if same_corpus else None
    )
    groups = None if by is None else column_values(dataset, by, "group anomalies by")
    decoding = decodable_rows(dataset, extractor.sampling_rate, progress=progress)
    used = np.r_[normal_rows, anomaly_rows, train_rows]
    skipped = decoding.skipped_among(used)
    normal_rows, anomaly_rows, train_rows = map(decoding.restrict, (normal_rows, anomaly_rows, train_rows))
    embeddings = embed_decodable(model, extractor, dataset, decoding, batch_size=batch_size, progress=progress)
    if not same_corpus and baselines:
        baselines = ()  # no training rows of this corpus to fit them on
    results = evaluate_embeddings(model, embeddings, train_rows, normal_rows, anomaly_rows, groups, baselines)
    return {
        "model": str(model_source),
        "corpus": str(corpus),
        "normal_filter": [str(f) for f in normal],
        "anomaly_filter": [str(f) for f in anomaly] if anomaly else "every other loop",
        "grouped_by": by,
        "n_normal_test": int(len(normal_rows)),
        "n_anomaly_test": int(len(anomaly_rows)),
        "n_train": int(len(train_rows)),
        "threshold": model.config.threshold,
        "encoder_pretrained": model.config.encoder_pretrained,
        "detectors": results,
        "skipped_files": public_skipped(skipped),
        "warnings": small_data_warnings(n_test=min(len(normal_rows), len(anomaly_rows))),
    }


def format_table(report: dict[str, Any]) -> str:
    """A markdown table: one row per detector, overall metrics then per-group AUROC."""
    detectors = report["detectors"]
    groups = sorted({g for r in detectors.values() for g in r.get("per_group_auroc", {})})
    head = ["detector", "AUROC", "AUPRC", "pAUC@0.1", "F1@thr", *[f"AUROC {g}" for g in groups]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in detectors.items():
        f1 = r.get("f1")
        cells = [name, f"{r['auroc']:.3f}", f"{r['auprc']:.3f}", f"{r['pauc']:.3f}", "-" if f1 is None else f"{f1:.3f}"]
        cells += [f"{r.get('per_group_auroc', {}).get(g, float('nan')):.3f}" for g in groups]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
