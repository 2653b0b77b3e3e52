"""Embedding-level Deep SVDD training (Ruff et al., ICML 2018) on `accelerate`, as Ruff's two trainers.

On a matrix of embeddings of *normal* loops:

1. :class:`AETrainer`: autoencoder pretraining of an :class:`svdd_head.SVDDAutoencoder` (MSE on
   the standardised input);
2. :class:`DeepSVDDTrainer`: Deep SVDD on its encoder: centre ``c`` = Ruff's eps-fixed mean latent
   (:func:`svdd_head.init_center_c`), computed once and then fixed; dropout off; the head's own loss
   (:meth:`svdd_head.SVDDAutoencoder.svdd_loss`), with the soft-boundary radius
   (:func:`svdd_head.get_radius`) updated every epoch after a warm-up.

The centre and radius end up in the head's buffers: the head this returns is the head that ships.
A split of the normals (``val_fraction``) drives early stopping and calibrates the threshold.
With ``checkpoint_dir`` the full state (weights, optimizer, RNG, early-stopping bookkeeping) is written
atomically at every epoch end (safetensors + JSON, no pickle) and a later call resumes from it bit-exactly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import LoopSVDDError
from ..models.checkpointing import load_training_state, save_training_state
from ..models.loop_svdd.svdd_head import HeadConfig, SVDDAutoencoder, ensemble_scale, get_radius, init_center_c

CHECKPOINT_FORMAT = 2  # 2: centre and radius are head buffers


@dataclass
class SVDDTrainingConfig(HeadConfig):
    """Hyper-parameters of :func:`fit_deep_svdd` (the head's own fields come from
    :class:`svdd_head.HeadConfig`). The defaults are the ``tuned`` preset, what ships; ``paper`` is
    the authors' settings (see :data:`PRESETS` and ``docs/benchmark.md``).

    Measured on the musicradar-bass-392 one-vs-rest benchmark (train sets of 11-51 embeddings): the paper's
    5-level encoder and long autoencoder pretraining at lr 1e-3 both hurt (AUROC 0.73-0.91 vs 0.96);
    L2-normalised inputs, a 2-level encoder and lr 1e-4 helped.
    """

    eps: float = 0.1
    pretrain_epochs: int = 10
    epochs: int = 50
    lr: float = 1e-4
    pretrain_lr: float | None = 1e-4
    weight_decay: float = 1e-6
    batch_size: int = 32
    patience: int = 10
    val_fraction: float = 0.2
    seed: int = 0
    standardize: bool = True
    threshold_quantile: float = 0.95
    warmup_epochs: int = 10
    min_delta: float = 0.0
    ensemble_size: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {
            "eps": self.eps > 0.0,
            "pretrain_epochs": self.pretrain_epochs >= 0,
            "epochs": self.epochs >= 1,
            "lr": self.lr > 0.0,
            "pretrain_lr": self.pretrain_lr is None or self.pretrain_lr > 0.0,
            "weight_decay": self.weight_decay >= 0.0,
            "batch_size": self.batch_size >= 2,
            "patience": self.patience >= 1,
            "val_fraction": 0.0 <= self.val_fraction < 1.0,
            "threshold_quantile": 0.0 < self.threshold_quantile <= 1.0,
            "warmup_epochs": self.warmup_epochs >= 0,
            "min_delta": self.min_delta >= 0.0,
            "ensemble_size": self.ensemble_size >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid SVDDTrainingConfig value(s): {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}"
            )

    @classmethod
    def from_preset(cls, preset: str = "tuned", **overrides: Any) -> SVDDTrainingConfig:
        """The named preset (``"tuned"`` or ``"paper"``) with `overrides`."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The two sets of defaults: `tuned` (what ships; the dataclass defaults) and `paper` (the authors' settings:
# 1024-512-256-128-64-32 on HTSAT-base's 1024-d embeddings, no L2, lr 1e-3, 50 + 50 epochs, 20% validation).
PRESETS: dict[str, dict[str, Any]] = {
    "tuned": {},
    "paper": {
        "hidden_dims": [512, 256, 128, 64, 32],
        "l2_normalize": False,
        "lr": 1e-3,
        "pretrain_lr": 1e-3,
        "pretrain_epochs": 50,
        "epochs": 50,
        "val_fraction": 0.2,
    },
}


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


class TrainingDivergedError(LoopSVDDError, RuntimeError):
    """Raised when a loss becomes NaN or infinite."""


def _fingerprint(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(math.floor(val_fraction * n))
    if n_val and n - n_val < 2:
        n_val = 0  # too few rows to hold any out
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Mini-batches of a seeded permutation of ``range(n)``; a last batch of one row (BatchNorm cannot train on
    a single row) joins the batch before it.

    With two batches (``n = batch_size + 1``) that gives one batch of every row. With more, the order is the one
    every trained figure was made with: the one-row batch joins the second-to-last batch, and that merged batch
    takes the place of the batch before it (``n = 2 * batch_size + 1`` trains on ``[b1 + b2, b1]``, not on b0).
    """
    perm = torch.randperm(n, generator=generator)
    batches = list(torch.split(perm, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        merged = torch.cat([batches[-2], batches.pop()])
        batches[-2 if len(batches) > 1 else -1] = merged
    return batches


def _check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"{what} became {value}: check the embeddings for NaN/inf values or lower the learning rate"
        )


def _new_state(config: SVDDTrainingConfig, fingerprint: str) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "fingerprint": fingerprint,
        "phase": "pretrain" if config.pretrain_epochs > 0 else "svdd",
        "center_set": False,
        "epoch": 0,
        "global_epoch": 0,
        "best": None,
        "bad_epochs": 0,
        "radius": 0.0,
        "history": {"pretrain_loss": [], "pretrain_val_loss": [], "svdd_loss": [], "svdd_val_loss": []},
        "done": False,
    }


@dataclass
class _Run:
    """What both phases share: the data, the head (``prepared`` for accelerate, ``model`` unwrapped), the
    batch-order generator, the JSON state and the best weights so far."""

    config: SVDDTrainingConfig
    accelerator: Any
    model: SVDDAutoencoder
    x_train: torch.Tensor
    x_val: torch.Tensor
    generator: torch.Generator
    state: dict[str, Any]
    checkpoint_dir: str | None = None
    prepared: Any = None
    best_state: dict[str, torch.Tensor] | None = None
    optimizer_state: dict[str, Any] | None = None  # restored from a checkpoint, for the first phase run
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None
    bar: Any = field(default=None, repr=False)


class _PhaseTrainer:
    """One phase: epochs of mini-batch AdamW with early stopping on the validation loss (the best epoch's
    weights are kept), a checkpoint at every epoch end. Subclasses name the phase, its loss and parameters."""

    phase = ""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.config = run.config
        self.optimizer: torch.optim.Optimizer | None = None

    # -- what a phase defines ----------------------------------------------------------------------------
    def n_epochs(self) -> int:
        raise NotImplementedError

    def parameters(self) -> list[torch.nn.Parameter]:
        raise NotImplementedError

    def lr(self) -> float:
        raise NotImplementedError

    def batch_loss(self, xb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The phase's loss on `x` with the unwrapped head (validation)."""
        raise NotImplementedError

    def start(self) -> None:
        """Called before the first epoch (also on resume)."""

    def after_epoch(self) -> None:
        """Called after each epoch's validation loss."""

    # -- the loop -----------------------------------------------------------------------------------------
    def train(self) -> None:
        run = self.run
        self.start()
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.lr(), weight_decay=self.config.weight_decay, foreach=True
        )
        if run.optimizer_state is not None:
            optimizer.load_state_dict(run.optimizer_state)
            run.optimizer_state = None
        self.optimizer = run.accelerator.prepare(optimizer)
        while run.state["phase"] == self.phase and not run.state["done"]:
            train_loss = self.train_epoch()
            val_loss = self.validate()
            self.after_epoch()
            self.end_epoch(train_loss, val_loss)

    def train_epoch(self) -> float:
        run, model = self.run, self.run.model
        model.train()
        total, count = 0.0, 0
        for idx in _batches(len(run.x_train), self.config.batch_size, run.generator):
            xb = run.x_train[idx.to(run.x_train.device)]
            self.optimizer.zero_grad()
            loss = self.batch_loss(xb)
            value = float(loss.detach())
            _check_finite(value, f"{self.phase} training loss")
            run.accelerator.backward(loss)
            self.optimizer.step()
            total += value * len(idx)
            count += len(idx)
        return total / max(count, 1)

    @torch.no_grad()
    def validate(self) -> float:
        run = self.run
        run.model.eval()
        value = float(self.loss(run.x_val if len(run.x_val) else run.x_train))
        run.model.train()
        _check_finite(value, f"{self.phase} validation loss")
        return value

    def end_epoch(self, train_loss: float, val_loss: float) -> None:
        run, st, cfg = self.run, self.run.state, self.config
        st["history"][f"{self.phase}_loss"].append(train_loss)
        st["history"][f"{self.phase}_val_loss"].append(val_loss)
        st["epoch"] += 1
        st["global_epoch"] += 1
        if st["best"] is None or val_loss < st["best"] - cfg.min_delta:
            st["best"], st["bad_epochs"], st["best_radius"] = val_loss, 0, st["radius"]
            run.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        else:
            st["bad_epochs"] += 1
        finished = st["bad_epochs"] >= cfg.patience or st["epoch"] >= self.n_epochs()
        if finished:
            run.model.load_state_dict(run.best_state)  # early stopping: keep the best epoch's weights
            run.best_state = None
            self.finish()
        _save(run, None if finished else self.optimizer)  # a new phase starts with a fresh optimizer
        self.report(train_loss, val_loss)

    def finish(self) -> None:
        raise NotImplementedError

    def report(self, train_loss: float, val_loss: float) -> None:
        run, st = self.run, self.run.state
        logs = {f"{self.phase}/loss": train_loss, f"{self.phase}/val_loss": val_loss}
        if self.phase == "svdd" and self.config.objective == "soft-boundary":
            logs["svdd/radius"] = st["radius"]
        if run.accelerator.trackers:
            run.accelerator.log(logs, step=st["global_epoch"])
        if run.bar is not None:
            run.bar.set_postfix({"phase": self.phase, "loss": f"{train_loss:.4g}", "val": f"{val_loss:.4g}"})
            run.bar.n = st["global_epoch"]
            run.bar.refresh()
        if run.on_epoch_end is not None:
            run.on_epoch_end({"phase": self.phase, "epoch": st["epoch"], "global_epoch": st["global_epoch"], **logs})


class AETrainer(_PhaseTrainer):
    """Autoencoder pretraining: the whole head, reconstruction MSE."""

    phase = "pretrain"

    def n_epochs(self) -> int:
        return self.config.pretrain_epochs

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.run.model.parameters())

    def lr(self) -> float:
        return self.config.pretrain_lr or self.config.lr

    def batch_loss(self, xb: torch.Tensor) -> torch.Tensor:
        _, recon = self.run.prepared(xb)  # through the prepared module: DDP must see the forward call
        return self.run.model.reconstruction_loss(xb, recon)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.run.model.reconstruction_loss(x)

    def finish(self) -> None:
        self.run.state.update(phase="svdd", epoch=0, best=None, bad_epochs=0, global_epoch=self.config.pretrain_epochs)


class DeepSVDDTrainer(_PhaseTrainer):
    """Deep SVDD on the head's encoder half: fixed centre, no dropout, the head's own loss."""

    phase = "svdd"

    def n_epochs(self) -> int:
        return self.config.epochs

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.run.model.named_parameters() if n.startswith("encoder_")]

    def lr(self) -> float:
        return self.config.lr

    def start(self) -> None:
        run, model = self.run, self.run.model
        model.set_dropout(0.0)
        if not run.state["center_set"]:
            # Ruff's centre over the training latents, dropout off: computed once, then fixed.
            model.eval()
            with torch.no_grad():
                model.set_state(center=init_center_c(model.encode(run.x_train), self.config.eps))
            run.state.update(center_set=True, epoch=0, best=None, bad_epochs=0)

    def batch_loss(self, xb: torch.Tensor) -> torch.Tensor:
        run, model = self.run, self.run.model
        if run.prepared is model:
            return model.svdd_loss(model.distance(xb))
        latent, recon = run.prepared(xb)
        # DDP: the decoder takes no part in this phase but must be in the graph
        return model.svdd_loss(model.distance(xb, latent)) + 0.0 * recon.sum()

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.run.model.svdd_loss(self.run.model.distance(x))

    def after_epoch(self) -> None:
        run, cfg = self.run, self.config
        if cfg.objective == "soft-boundary" and run.state["epoch"] >= cfg.warmup_epochs:
            run.model.eval()
            with torch.no_grad():
                run.state["radius"] = get_radius(run.model.distance(run.x_train), cfg.nu)
            run.model.set_state(radius=run.state["radius"])

    def finish(self) -> None:
        cfg = self.config
        radius = self.run.state["best_radius"] if cfg.objective == "soft-boundary" else 0.0
        self.run.state.update(done=True, radius=radius, global_epoch=cfg.pretrain_epochs + cfg.epochs)


def _save(run: _Run, optimizer: torch.optim.Optimizer | None) -> None:
    """Checkpoint the run (weights with their centre/radius buffers, best weights, optimizer, RNG)."""
    if run.checkpoint_dir is None or not run.accelerator.is_main_process:
        return
    tensors = {f"model.{k}": v.clone() for k, v in run.model.state_dict().items()}
    if run.best_state is not None:
        tensors.update({f"best.{k}": v for k, v in run.best_state.items()})
    device, step = run.x_train.device, run.state["global_epoch"]
    save_training_state(run.checkpoint_dir, run.state, tensors, optimizer, device, run.generator, step=step)


def _resume(run: _Run) -> None:
    """Load `run.checkpoint_dir`'s checkpoint into `run`, if there is one for this config and data."""
    device = run.x_train.device
    expected = {key: run.state[key] for key in ("format", "config", "fingerprint")}
    resumed = load_training_state(run.checkpoint_dir, expected, device, run.generator)
    if resumed is None:
        return
    run.state, tensors, run.optimizer_state = resumed
    run.model.load_state_dict({k[6:]: v.to(device) for k, v in tensors.items() if k.startswith("model.")})
    if any(k.startswith("best.") for k in tensors):
        run.best_state = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}


def _check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {x.shape}")
    if len(x) < 2:
        raise ValueError(f"Deep SVDD needs at least 2 normal embeddings, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf values")
    return x


def _new_run(x_np: np.ndarray, config: SVDDTrainingConfig, accelerator: Any, checkpoint_dir: str | None) -> _Run:
    """The head (standardised on the training rows), data and state of a fresh run, then the checkpoint's."""
    device = accelerator.device
    train_idx, val_idx = _split(len(x_np), config.val_fraction, config.seed)
    x_train = torch.from_numpy(x_np[train_idx]).to(device)
    head = SVDDAutoencoder.from_config(x_np.shape[1], config)
    if config.standardize:
        head.fit_standardization(x_train.cpu())
    run = _Run(
        config=config,
        accelerator=accelerator,
        model=head.to(device),
        x_train=x_train,
        x_val=torch.from_numpy(x_np[val_idx]).to(device),
        generator=torch.Generator().manual_seed(config.seed),
        state=_new_state(config, _fingerprint(x_np)),
        checkpoint_dir=checkpoint_dir,
    )
    _resume(run)
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


def _result(run: _Run, x_np: np.ndarray) -> SVDDFitResult:
    config, head = run.config, run.model
    head.set_dropout(0.0)
    head.eval()
    radius = float(run.state["radius"]) if config.objective == "soft-boundary" else 0.0
    head.set_state(radius=radius)
    _, val_idx = _split(len(x_np), config.val_fraction, config.seed)
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
