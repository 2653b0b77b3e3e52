"""Model cards for detectors: YAML metadata (with a model-index from the real evaluation) and a README made
from the training run (``training_summary.json``), the evaluation (``evaluation.json``) and the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..configuration_loop_svdd import LoopSVDDConfig
from ..encoders import describe_encoder
from ..model_io import read_json
from ..paths import looks_like_hub_id
from .templates import render

SUMMARY_FILE = "training_summary.json"  # written by loop_svdd.training.from_corpus
EVALUATION_FILE = "evaluation.json"  # the report of loop_svdd.evaluation.evaluate_on_corpus
PLOT_FILE = "score_distribution.png"
BASE_TAGS = ["audio", "music", "musical-loops", "anomaly-detection", "deep-svdd", "htsat", "clap", "loop-svdd"]
METRICS = (  # (report key, Hub metric type, display name)
    ("auroc", "roc_auc", "AUROC"),
    ("auprc", "average_precision", "AUPRC"),
    ("pauc", "roc_auc", "pAUC (FPR <= 0.1)"),
    ("f1", "f1", "F1 at the calibrated threshold"),
)


def _count_parameters(weights: Path) -> str:
    if not weights.is_file():
        return "unknown"
    from safetensors import safe_open

    total = 0
    with safe_open(str(weights), framework="pt") as f:
        for key in f.keys():
            shape = f.get_slice(key).get_shape()
            n = 1
            for d in shape:
                n *= int(d)
            total += n
    return f"{total / 1e6:.2f} M" if total >= 1e5 else f"{total:,}"


def _radii(weights: Path) -> str:
    """The soft-boundary radius of each head (head buffers in model.safetensors)."""
    if not weights.is_file():
        return "unknown"
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        keys = sorted((k for k in f.keys() if k.endswith(".radius")), key=lambda k: (not k.startswith("head."), k))
        radii = [float(f.get_tensor(k)) for k in keys]
    return ", ".join(f"{r:.4g}" for r in radii) or "unknown"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _eval_results(evaluation: dict[str, Any], dataset_id: str | None, dataset_name: str) -> list[Any]:
    from huggingface_hub import EvalResult

    ours = evaluation.get("detectors", {}).get("loop_svdd")
    if not ours:
        return []
    results = []
    for key, metric_type, name in METRICS:
        if ours.get(key) is None:
            continue
        results.append(
            EvalResult(
                task_type="audio-classification",
                task_name="Anomaly detection in musical loops",
                dataset_type=dataset_id or dataset_name,
                dataset_name=dataset_name,
                metric_type=metric_type,
                metric_name=name,
                metric_value=round(float(ours[key]), 4),
                metric_config="fpr0.1" if key == "pauc" else None,
            )
        )
    return results


def card_metadata(
    config: LoopSVDDConfig,
    repo_id: str,
    summary: dict[str, Any] | None,
    evaluation: dict[str, Any] | None,
    license: str = "mit",
    datasets: list[str] | None = None,
):
    """The card's YAML metadata as a `huggingface_hub.ModelCardData`."""
    from huggingface_hub import ModelCardData

    datasets = list(datasets or [])
    corpus = str((summary or {}).get("corpus") or (evaluation or {}).get("corpus") or "")
    if not datasets and looks_like_hub_id(corpus):
        datasets = [corpus]
    tags = list(BASE_TAGS) + ["fused-encoder" if config.is_fused else "unfused-encoder"]
    if not config.encoder_pretrained:
        tags.append("random-encoder")
    base_model = config.encoder_name_or_path if config.encoder_pretrained else None
    dataset_name = Path(corpus).name or "loops" if corpus else "loops"
    eval_results = _eval_results(evaluation, datasets[0] if datasets else None, dataset_name) if evaluation else []
    return ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=tags,
        datasets=datasets or None,
        metrics=sorted({m for _, m, _ in METRICS}) if eval_results else None,
        base_model=base_model if looks_like_hub_id(base_model) else None,
        model_name=repo_id.split("/")[-1] if eval_results else None,
        eval_results=eval_results or None,
    )


def _training_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    training = summary.get("training") or {}
    keys = ("head_type", "hidden_dims", "objective", "nu", "pretrain_epochs", "epochs", "lr", "batch_size", "seed")
    rows = [(k, _fmt(training[k])) for k in keys if training.get(k) is not None]
    if summary.get("ensemble_size"):
        rows.append(("heads (ensemble, seeds seed..seed+k-1)", _fmt(summary["ensemble_size"])))
    for name, label in (("epochs_run", "epochs run"), ("final_losses", "final loss")):
        per_head = summary.get(name) or []
        per_head = [per_head] if isinstance(per_head, dict) else per_head  # one dict per head
        for i, values in enumerate(per_head):
            suffix = f", head {i}" if len(per_head) > 1 else ""
            rows += [(f"{label} ({k}{suffix})", _fmt(v)) for k, v in values.items() if v is not None]
    return rows


def generate_model_card(
    model_dir: str | Path,
    repo_id: str,
    license: str = "mit",
    datasets: list[str] | None = None,
    plot_file: str | None = PLOT_FILE,
) -> str:
    """The README.md (YAML front matter + markdown) of the model in `model_dir`, to be published as `repo_id`."""
    from .. import __version__
    from ..evaluation import format_table

    model_dir = Path(model_dir)
    config = LoopSVDDConfig.from_pretrained(model_dir)
    summary = read_json(model_dir / SUMMARY_FILE)
    evaluation = read_json(model_dir / EVALUATION_FILE)
    if evaluation is not None and not evaluation.get("detectors"):
        evaluation = None
    metadata = card_metadata(config, repo_id, summary, evaluation, license, datasets)
    normal_filter = (summary or {}).get("normal_filter") or (evaluation or {}).get("normal_filter") or []
    normal_description = " and ".join(f"`{f}`" for f in normal_filter) or "the loops of its training collection"
    if summary:
        normal_description = f"the loops matching {normal_description}" if normal_filter else normal_description
    anomaly_filter = (evaluation or {}).get("anomaly_filter", "")
    anomaly_description = (
        " and ".join(f"`{f}`" for f in anomaly_filter) if isinstance(anomaly_filter, list) else str(anomaly_filter)
    )
    threshold = config.threshold
    n_cal = len(config.calibration_scores or [])
    threshold_line = (
        f"{threshold:.6g} ({100 * config.threshold_quantile:g}th percentile of {n_cal or 'the'} held-out normal scores)"
        if threshold is not None
        else "none (scores rank loops; no verdict)"
    )
    ac = config.audio_config
    context = {
        "card_data": metadata.to_yaml(),
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "random_encoder": not config.encoder_pretrained,
        "fused": config.is_fused,
        "encoder_line": describe_encoder(config),
        "long_loop_line": "Feature Fusion Mechanism (4 views per loop)"
        if ac.enable_fusion
        else "10 s windows, embeddings averaged, one score per window",
        "head_line": f"{'residual autoencoder' if config.head_type == 'residual_ae' else 'autoencoder'} encoder "
        f"{config.embedding_dim} -> {' -> '.join(map(str, config.hidden_dims))}, {config.activation}, no biases",
        "objective_line": f"{config.objective} Deep SVDD"
        + (
            f" (nu = {config.nu:g}, R = {_radii(model_dir / 'model.safetensors')})"
            if config.objective == "soft-boundary"
            else ""
        ),
        "threshold": threshold,
        "threshold_quantile": config.threshold_quantile,
        "threshold_line": threshold_line,
        "n_params": _count_parameters(model_dir / "model.safetensors"),
        "normal_description": normal_description,
        "summary": bool(summary),
        "data_warnings": (summary or {}).get("warnings") or [],  # small packs or calibration sets (data.py)
        "corpus": (summary or {}).get("corpus", ""),
        "split": (summary or {}).get("split", ""),
        "corpus_rows": (summary or {}).get("corpus_rows", ""),
        "created": (summary or {}).get("created", ""),
        "n_train": len((summary or {}).get("train_rows") or []),
        "n_heldout": len((summary or {}).get("heldout_rows") or []),
        "training_rows": _training_rows(summary) if summary else [],
        "val_fraction": ((summary or {}).get("training") or {}).get("val_fraction"),
        "evaluation": bool(evaluation),
        "evaluation_table": format_table(evaluation) if evaluation else "",
        "n_normal_test": (evaluation or {}).get("n_normal_test", "?"),
        "n_anomaly_test": (evaluation or {}).get("n_anomaly_test", "?"),
        "eval_corpus": (evaluation or {}).get("corpus", ""),
        "anomaly_description": anomaly_description or "every other loop",
        "plot_file": plot_file if plot_file and n_cal else None,
        "version": __version__,
    }
    return render("model_card.md.jinja", **context)
