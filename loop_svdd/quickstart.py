"""The main job on the embedded default: build a small real-instrument corpus, curate a pack made from it (its
bass loops with a few other loops mixed in, no labels given: which loops do not fit?), train a detector on one
instrument from one soundfont, evaluate it against held-out normals, the other instruments and a subtler
anomaly (the same instrument from the other soundfont), next to the baselines, and write the model folder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .audio.corpora import RowFilter, load_corpus
from .bench.quickstart_pack import anomaly_kinds, build_once, curate_example_pack
from .detectors.deep_svdd import SVDDTrainingConfig
from .engine.scoring import model_scores
from .models.encoders import DEFAULT_ENCODER, describe_encoder
from .models.model_io import write_json_atomic
from .settings import TRAIN
from .training.evaluation import BASELINES, evaluate_embeddings, format_table
from .training.from_corpus import row_names, train_on_corpus

NORMAL = ("instrument=bass", "source=FluidR3_GM")
EVALUATION_FILE = "evaluation.json"
HOLDOUT = TRAIN.holdout_fraction  # of the normal loops, never trained on: the normal side of the evaluation


@dataclass
class QuickstartResult:
    output_dir: Path
    model_dir: Path
    report: dict[str, Any]
    ranked: list[dict[str, Any]]
    curation: dict[str, Any]


def _build_or_reuse_corpus(corpus_dir: Path, n_loops: int, seed: int, progress: bool, log) -> None:
    """Step 1: the corpus of `n_loops` loops (seed `seed`) in `corpus_dir`, reused when one was built the same."""
    if _corpus_matches(corpus_dir, n_loops, seed):
        log(f"[1/5] reusing the corpus in {corpus_dir}")
    else:
        log(f"[1/5] building a corpus of {n_loops} real-instrument loops (seed {seed}) in {corpus_dir}")
    build_once(corpus_dir, n_loops, seed, progress)


def _corpus_matches(corpus_dir: Path, n_loops: int, seed: int) -> bool:
    meta = corpus_dir / "quickstart.json"
    return meta.is_file() and json.loads(meta.read_text()) == {"loops": n_loops, "seed": seed}


def _evaluate(result, kinds: np.ndarray, corpus_dir: Path, model_dir: Path, seed: int) -> dict[str, Any]:
    """Step 4: the evaluation report of the trained detector and the baselines (held-out normals vs every
    anomaly kind), written to the model folder."""
    train_rows = np.asarray(result.summary["train_rows"])
    normal_rows = np.asarray(result.summary["heldout_rows"])
    anomaly_rows = np.flatnonzero(kinds != "normal")
    detectors = evaluate_embeddings(
        result.model, result.embeddings, train_rows, normal_rows, anomaly_rows, kinds, BASELINES, seed
    )
    report = {
        "corpus": str(corpus_dir),
        "normal_filter": list(NORMAL),
        "n_train": int(len(train_rows)),
        "n_normal_test": int(len(normal_rows)),
        "n_anomaly_test": int(len(anomaly_rows)),
        "anomaly_kinds": {k: int((kinds == k).sum()) for k in sorted(set(kinds.tolist())) if k != "normal"},
        "threshold": result.model.config.threshold,
        "encoder": describe_encoder(result.model.config),
        "encoder_pretrained": result.model.config.encoder_pretrained,
        "detectors": detectors,
    }
    write_json_atomic(model_dir / EVALUATION_FILE, report)
    return report


def _rank_and_plot(result, dataset, kinds: np.ndarray, model_dir: Path) -> list[dict[str, Any]]:
    """Step 5: the test loops ranked by score (most anomalous first); writes the score plot and the model card."""
    normal_rows = np.asarray(result.summary["heldout_rows"])
    anomaly_rows = np.flatnonzero(kinds != "normal")
    scores = model_scores(result.model, result.embeddings)
    names = row_names(dataset)
    test_rows = np.r_[normal_rows, anomaly_rows]
    order = test_rows[np.argsort(-scores[test_rows], kind="stable")]
    ranked = [{"file": names[i], "kind": str(kinds[i]), "score": float(scores[i])} for i in order]
    _plot(scores, normal_rows, anomaly_rows, kinds, result.model.config.threshold, model_dir / "scores.png")
    _write_card(model_dir, result.model.config.calibration_scores, result.model.config.threshold)
    return ranked


def run_quickstart(
    output_dir: str | Path = "quickstart-output",
    n_loops: int = 400,
    seed: int = 0,
    encoder: str = DEFAULT_ENCODER,
    progress: bool = True,
    log=print,
) -> QuickstartResult:
    """The main job end to end in `output_dir`: corpus, curated pack, detector, evaluation, plots and card."""
    start = time.perf_counter()
    output_dir = Path(output_dir)
    corpus_dir, model_dir = output_dir / "corpus", output_dir / "model"
    _build_or_reuse_corpus(corpus_dir, n_loops, seed, progress, log)

    log("[2/5] curating a pack: 92 bass loops of one soundfont and 8 strays of 4 kinds, no labels given")
    curation = curate_example_pack(corpus_dir, output_dir, encoder, seed, progress)

    log(f"[3/5] training on {' and '.join(NORMAL)} with encoder {encoder}")
    training = SVDDTrainingConfig(seed=seed)
    result = train_on_corpus(
        corpus_dir,
        [RowFilter.parse(f) for f in NORMAL],
        model_dir,
        encoder=encoder,
        training=training,
        holdout_fraction=HOLDOUT,
        progress=progress,
    )
    log(f"      encoder: {describe_encoder(result.model.config)}")

    log("[4/5] evaluating against held-out normals and every anomaly kind, next to the baselines")
    dataset = load_corpus(corpus_dir)
    kinds = anomaly_kinds(dataset, "bass", "FluidR3_GM")
    report = _evaluate(result, kinds, corpus_dir, model_dir, seed)

    log("[5/5] writing plots and the model card")
    ranked = _rank_and_plot(result, dataset, kinds, model_dir)
    report["elapsed_s"] = round(time.perf_counter() - start, 1)
    return QuickstartResult(output_dir, model_dir, report, ranked, curation)


def _plot(scores, normal_rows, anomaly_rows, kinds, threshold, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.histogram_bin_edges(np.log10(scores[np.r_[normal_rows, anomaly_rows]] + 1e-9), bins=30)
    ax.hist(np.log10(scores[normal_rows] + 1e-9), bins=bins, alpha=0.7, label="held-out normal")
    for kind in sorted(set(kinds[anomaly_rows].tolist())):
        rows = anomaly_rows[kinds[anomaly_rows] == kind]
        ax.hist(np.log10(scores[rows] + 1e-9), bins=bins, alpha=0.45, label=kind, histtype="stepfilled")
    if threshold is not None:
        ax.axvline(np.log10(threshold + 1e-9), color="k", ls="--", lw=1, label="threshold")
    ax.set(xlabel="log10 anomaly score", ylabel="loops", title="Scores of held-out loops")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_card(model_dir: Path, calibration_scores: list[float] | None, threshold: float | None) -> None:
    """The model card (README.md) and its score-distribution image, as `loop-svdd push` would publish them."""
    try:
        from .figures import save_score_distribution
        from .hub.card import PLOT_FILE, generate_model_card
    except ImportError:  # jinja2 / matplotlib missing: the card is optional for the main job
        return
    plot = None
    if calibration_scores:
        save_score_distribution(calibration_scores, threshold, model_dir / PLOT_FILE)
        plot = PLOT_FILE
    card = generate_model_card(model_dir, repo_id="your-name/loop-svdd-bass", plot_file=plot)
    (model_dir / "README.md").write_text(card)


def summary_lines(result: QuickstartResult, top: int = 10) -> list[str]:
    r, c = result.report, result.curation
    lines = [
        "",
        f"Curated pack ({c['pack']}: {c['n_loops']} loops, {c['n_strays']} of them strays of "
        f"{len(c['stray_kinds'])} kinds the tool was not told about): stray AUROC {c['auroc']:.3f}, "
        f"{c['strays_in_top']} of the {c['n_strays']} strays in the top {c['n_strays']}; verdicts: "
        f"{c['strays_called']} of the {c['n_strays']} strays called, {c['false_calls']} false calls "
        f"(precision {c['precision']:.2f}, recall {c['recall']:.2f}). Flagged as not fitting:",
        *(f"{rank:>5}  {name:<40} (really: {kind})" for rank, name, kind in c["flagged"]),
        *c["warnings"],
        f"Report (opens offline): {c['report']}",
        "",
        f"Encoder: {r['encoder']}",
        f"Trained on {r['n_train']} loops ({' and '.join(r['normal_filter'])}); tested on {r['n_normal_test']} "
        f"held-out normal loops vs {r['n_anomaly_test']} anomalies "
        f"({', '.join(f'{k}: {v}' for k, v in r['anomaly_kinds'].items())}).",
        "",
        format_table(r),
        "",
        f"Most anomalous of the test loops (threshold {r['threshold']:.4g}):",
    ]
    for i, row in enumerate(result.ranked[:top], 1):
        lines.append(f"{i:>3}  {row['score']:>10.4g}  {row['kind']:<20} {row['file']}")
    lines += [
        "",
        f"Model folder: {result.model_dir} (LoopSVDDModel.from_pretrained('{result.model_dir}'))",
        f"Try it in the browser: loop-svdd demo {result.model_dir}",
        f"Done in {r['elapsed_s']:.0f} s.",
    ]
    return lines
