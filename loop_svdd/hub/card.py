"""Model cards for detectors: YAML metadata (with a model-index from the real evaluation) and a README made
from the training run (``training_summary.json``), the evaluation (``evaluation.json``) and the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.encoders import describe_encoder
from ..models.loop_svdd.configuration_loop_svdd import LoopSVDDConfig
from ..models.model_io import read_json
from ..paths import looks_like_hub_id
from .rendering import render_card

SUMMARY_FILE = "training_summary.json"  # written by loop_svdd.training.from_corpus
EVALUATION_FILE = "evaluation.json"  # the report of loop_svdd.training.evaluation.evaluate_on_corpus
PLOT_FILE = "score_distribution.png"
BASE_TAGS = ["audio", "music", "musical-loops", "anomaly-detection", "deep-svdd", "htsat", "loop-svdd"]
METRICS = (  # (report key, Hub metric type, display name, metric config)
    ("auroc", "roc_auc", "AUROC", None),
    ("auprc", "average_precision", "AUPRC", None),
    ("pauc", "pauc", "pAUC (FPR <= 0.1)", "max_fpr=0.1"),
    ("f1", "f1", "F1 at the calibrated threshold", None),
)
LOOP_PRETRAINED_PREFIX = "loop-svdd pretrain-encoder"  # provenance written by loop_svdd.pretraining.trainer


def encoder_kind(config: LoopSVDDConfig) -> str:
    """'random' (fixed-seed random weights), 'loop-svdd' (pretrained by `loop-svdd pretrain-encoder`, like the
    embedded offline stand-in) or 'clap' (CLAP audio-tower weights)."""
    if not config.encoder_pretrained:
        return "random"
    if str(config.encoder_name_or_path or "").startswith(LOOP_PRETRAINED_PREFIX):
        return "loop-svdd"
    return "clap"


def calibration_source(summary: dict[str, Any] | None) -> str:
    """Which normal loops the threshold was calibrated on: 'calibration' (loops of the training split set aside
    from fitting the heads), 'fit' (the loops the heads were fitted on) or 'unknown' (no training summary)."""
    if not summary or "calibration_rows" not in summary:
        return "unknown"
    return "calibration" if summary["calibration_rows"] else "fit"


def threshold_phrase(config: LoopSVDDConfig, summary: dict[str, Any] | None) -> str:
    """What the calibrated threshold rests on, in words, e.g. '95th percentile of the scores of 12 normal loops
    of the training split that were not used to fit the heads'."""
    n = len(config.calibration_scores or [])
    where = {
        "calibration": f"{n} normal loops of the training split that were not used to fit the heads",
        "fit": f"the {n} normal loops the heads were fitted on (in-sample, so optimistic)",
        "unknown": f"{n} normal loops",
    }[calibration_source(summary)]
    return f"{100 * config.threshold_quantile:g}th percentile of the scores of {where}"


def corpus_label(corpus: str) -> str:
    """A corpus as the card shows it: its Hub id, or a local folder's name (never a local path)."""
    if not corpus or looks_like_hub_id(corpus):
        return corpus
    return f"{Path(corpus).name or 'loops'} (a local corpus)"


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


def _eval_results(evaluation: dict[str, Any], dataset_id: str) -> list[Any]:
    from huggingface_hub import EvalResult

    ours = evaluation.get("detectors", {}).get("loop_svdd")
    if not ours:
        return []
    results = []
    for key, metric_type, name, metric_config in METRICS:
        if ours.get(key) is None:
            continue
        results.append(
            EvalResult(
                task_type="audio-classification",
                task_name="Anomaly detection in musical loops",
                dataset_type=dataset_id,
                dataset_name=dataset_id.split("/")[-1],
                metric_type=metric_type,
                metric_name=name,
                metric_value=round(float(ours[key]), 4),
                metric_config=metric_config,
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
    """The card's YAML metadata as a `huggingface_hub.ModelCardData`.

    Datasets are Hub ids only (`datasets`, else the corpus when it is one); without one there is no model-index
    (the Hub's model-index needs a dataset id), and the metrics stay in the card's table."""
    from huggingface_hub import ModelCardData

    bad = [d for d in datasets or [] if not looks_like_hub_id(d)]
    if bad:
        raise ValueError(f"not a Hub dataset id: {', '.join(bad)} (expected ORG/NAME; local paths are never published)")
    datasets = list(datasets or [])
    corpus = str((summary or {}).get("corpus") or (evaluation or {}).get("corpus") or "")
    if not datasets and looks_like_hub_id(corpus):
        datasets = [corpus]
    kind = encoder_kind(config)
    tags = list(BASE_TAGS) + ["fused-encoder" if config.is_fused else "unfused-encoder"]
    tags += {"random": ["random-encoder"], "loop-svdd": ["loop-pretrained-encoder"], "clap": ["clap"]}[kind]
    base_model = config.encoder_name_or_path if kind == "clap" else None
    eval_results = _eval_results(evaluation, datasets[0]) if evaluation and datasets else []
    return ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=tags,
        datasets=datasets or None,
        metrics=sorted({m for _, m, _, _ in METRICS}) if eval_results else None,
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


def _filter_descriptions(summary: dict[str, Any] | None, evaluation: dict[str, Any] | None) -> tuple[str, str]:
    """(the normal loops, the anomalies) the model was trained and evaluated on, in words."""
    normal_filter = (summary or {}).get("normal_filter") or (evaluation or {}).get("normal_filter") or []
    normal_description = " and ".join(f"`{f}`" for f in normal_filter) or "the loops of its training collection"
    if summary:
        normal_description = f"the loops matching {normal_description}" if normal_filter else normal_description
    anomaly_filter = (evaluation or {}).get("anomaly_filter", "")
    anomaly_description = (
        " and ".join(f"`{f}`" for f in anomaly_filter) if isinstance(anomaly_filter, list) else str(anomaly_filter)
    )
    return normal_description, anomaly_description


def _model_context(config: LoopSVDDConfig, model_dir: Path, summary: dict[str, Any] | None) -> dict[str, Any]:
    """The card's lines about the model: encoder, long loops, head, objective, threshold, size."""
    threshold = config.threshold
    threshold_words = threshold_phrase(config, summary)
    threshold_line = f"{threshold:.6g} ({threshold_words})" if threshold is not None else "none (scores rank loops)"
    ac = config.audio_config
    return {
        "random_encoder": encoder_kind(config) == "random",
        "loop_encoder": encoder_kind(config) == "loop-svdd",
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
        "threshold_words": threshold_words,
        "n_params": _count_parameters(model_dir / "model.safetensors"),
    }


def _run_context(summary: dict[str, Any] | None, evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """The card's lines about the training run (`training_summary.json`) and the evaluation (`evaluation.json`)."""
    from ..training.evaluation import format_table

    return {
        "summary": bool(summary),
        "data_warnings": (summary or {}).get("warnings") or [],  # small packs or calibration sets (data.py)
        "corpus": corpus_label(str((summary or {}).get("corpus", ""))),
        "split": (summary or {}).get("split", ""),
        "corpus_rows": (summary or {}).get("corpus_rows", ""),
        "created": (summary or {}).get("created", ""),
        "n_train": len((summary or {}).get("train_rows") or []),
        "n_heldout": len((summary or {}).get("heldout_rows") or []),
        "training_rows": _training_rows(summary) if summary else [],
        "val_fraction": (summary or {}).get(
            "calibration_fraction", ((summary or {}).get("training") or {}).get("val_fraction")
        ),
        "evaluation": bool(evaluation),
        "evaluation_table": format_table(evaluation) if evaluation else "",
        "n_normal_test": (evaluation or {}).get("n_normal_test", "?"),
        "n_anomaly_test": (evaluation or {}).get("n_anomaly_test", "?"),
        "eval_corpus": corpus_label(str((evaluation or {}).get("corpus", ""))),
    }


def generate_model_card(
    model_dir: str | Path,
    repo_id: str,
    license: str = "mit",
    datasets: list[str] | None = None,
    plot_file: str | None = PLOT_FILE,
) -> str:
    """The README.md (YAML front matter + markdown) of the model in `model_dir`, to be published as `repo_id`."""
    from huggingface_hub import ModelCard

    from .. import __version__

    model_dir = Path(model_dir)
    config = LoopSVDDConfig.from_pretrained(model_dir)
    summary = read_json(model_dir / SUMMARY_FILE)
    evaluation = read_json(model_dir / EVALUATION_FILE)
    if evaluation is not None and not evaluation.get("detectors"):
        evaluation = None
    metadata = card_metadata(config, repo_id, summary, evaluation, license, datasets)
    normal_description, anomaly_description = _filter_descriptions(summary, evaluation)
    context = {
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "dataset_ids": metadata.datasets or [],
        **_model_context(config, model_dir, summary),
        "normal_description": normal_description,
        **_run_context(summary, evaluation),
        "anomaly_description": anomaly_description or "every other loop",
        "plot_file": plot_file if plot_file and len(config.calibration_scores or []) else None,
        "version": __version__,
    }
    return render_card(ModelCard, metadata, "model_card.md.jinja", **context)
