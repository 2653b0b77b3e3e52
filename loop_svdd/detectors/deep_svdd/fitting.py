"""Fitting Deep SVDD heads on a matrix of embeddings of *normal* loops: :func:`fit_deep_svdd` runs
:class:`~.ae_trainer.AETrainer` then :class:`~.deep_svdd_trainer.DeepSVDDTrainer` on one head;
:func:`fit_ensemble` fits several and sets their ensemble scaling. A validation split of the normals
(``val_fraction``) drives early stopping and sets :func:`fit_deep_svdd`'s threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ...models.loop_svdd.svdd_head import SVDDAutoencoder, ensemble_scale
from .ae_trainer import AETrainer
from .configuration import SVDDTrainingConfig
from .deep_svdd_trainer import DeepSVDDTrainer
from .trainer import TrainingRun, new_state, resume_checkpoint, validation_split


@dataclass
class SVDDFitResult:
    """What :func:`fit_deep_svdd` returns. ``head`` is in eval mode with dropout 0; its buffers hold ``center``
    and ``radius`` (its ``score_scale`` is 1 until an ensemble sets it)."""

    head: SVDDAutoencoder
    center: torch.Tensor
    radius: float
    threshold: float
    val_scores: np.ndarray
    history: dict[str, list[float]]
    config: SVDDTrainingConfig


def _fingerprint(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def _check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {x.shape}")
    if len(x) < 2:
        raise ValueError(f"Deep SVDD needs at least 2 normal embeddings, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf values")
    return x


def _new_run(x_np: np.ndarray, config: SVDDTrainingConfig, accelerator: Any, checkpoint_dir: str | None) -> TrainingRun:
    """The head (standardised on the training rows), data and state of a fresh run, then the checkpoint's."""
    device = accelerator.device
    train_idx, val_idx = validation_split(len(x_np), config.val_fraction, config.seed)
    x_train = torch.from_numpy(x_np[train_idx]).to(device)
    head = SVDDAutoencoder.from_config(x_np.shape[1], config)
    if config.standardize:
        head.fit_standardization(x_train.cpu())
    run = TrainingRun(
        config=config,
        accelerator=accelerator,
        model=head.to(device),
        x_train=x_train,
        x_val=torch.from_numpy(x_np[val_idx]).to(device),
        generator=torch.Generator().manual_seed(config.seed),
        state=new_state(config, _fingerprint(x_np)),
        checkpoint_dir=checkpoint_dir,
    )
    resume_checkpoint(run)
    run.prepared = accelerator.prepare(run.model)
    run.model = accelerator.unwrap_model(run.prepared)
    return run


def fit_deep_svdd(
    embeddings: np.ndarray,
    config: SVDDTrainingConfig | None = None,
    accelerator: Any | None = None,
    checkpoint_dir: str | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> SVDDFitResult:
    """Train a Deep SVDD head on ``embeddings`` (n, d) of normal loops: :class:`AETrainer` then
    :class:`DeepSVDDTrainer`.

    ``on_epoch_end`` is called with ``{"phase", "epoch", "global_epoch", ...losses}`` after each epoch's
    checkpoint is written (raise from it to stop a run early, e.g. to test resumption).
    """
    from accelerate import Accelerator

    config = config or SVDDTrainingConfig()
    x_np = _check_embeddings(embeddings)
    accelerator = accelerator or Accelerator()
    device = accelerator.device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        run = _new_run(x_np, config, accelerator, checkpoint_dir)
        run.on_epoch_end = on_epoch_end
        run.bar = tqdm(
            total=config.pretrain_epochs + config.epochs,
            initial=run.state["global_epoch"],
            desc="Deep SVDD",
            disable=not progress or not accelerator.is_local_main_process,
            leave=False,
        )
        for trainer in (AETrainer(run), DeepSVDDTrainer(run)):
            if run.state["phase"] == trainer.phase and not run.state["done"]:
                trainer.train()
        run.bar.close()
    return _result(run, x_np)


def _result(run: TrainingRun, x_np: np.ndarray) -> SVDDFitResult:
    config, head = run.config, run.model
    head.set_dropout(0.0)
    head.eval()
    radius = float(run.state["radius"]) if config.objective == "soft-boundary" else 0.0
    head.set_state(radius=radius)
    _, val_idx = validation_split(len(x_np), config.val_fraction, config.seed)
    scored = torch.from_numpy(x_np[val_idx]).to(head.center.device) if len(val_idx) else run.x_train
    with torch.no_grad():
        val_scores = head.score(scored).double().cpu().numpy()
    threshold = float(np.quantile(val_scores, config.threshold_quantile))
    return SVDDFitResult(
        head, head.center.detach().clone(), radius, threshold, val_scores, run.state["history"], config
    )


def fit_ensemble(
    embeddings: np.ndarray,
    config: SVDDTrainingConfig | None = None,
    accelerator: Any | None = None,
    checkpoint_dir: str | None = None,
    progress: bool = True,
) -> list[SVDDFitResult]:
    """Fit ``config.ensemble_size`` heads on ``embeddings`` (seeds ``seed, seed + 1, ...``; checkpoints in
    ``checkpoint_dir/head<i>``) and set each head's ``score_scale`` to the median of its raw scores on these
    rows (:func:`svdd_head.ensemble_scale`): the heads a `LoopSVDDModel` ships."""
    config = config or SVDDTrainingConfig()
    results = [
        fit_deep_svdd(
            embeddings,
            replace(config, seed=config.seed + i),
            accelerator,
            checkpoint_dir=None if checkpoint_dir is None else str(Path(checkpoint_dir) / f"head{i}"),
            progress=progress,
        )
        for i in range(config.ensemble_size)
    ]
    x = torch.from_numpy(_check_embeddings(embeddings))
    for r in results:
        with torch.no_grad():
            r.head.set_state(score_scale=ensemble_scale(r.head.score(x.to(r.head.center.device))))
    return results
