"""What both of Deep SVDD's trainers share (Ruff et al., ICML 2018; lukasruff/Deep-SVDD-PyTorch): the run (data,
head, batch order, JSON state), the phase loop (mini-batch AdamW, early stopping on a validation split, the best
epoch's weights kept) and its checkpoints.

With ``checkpoint_dir`` the full state (weights, optimizer, RNG, early-stopping bookkeeping) is written
atomically at every epoch end (safetensors + JSON, no pickle) and a later call resumes from it bit-exactly.
The two phases are :class:`~.ae_trainer.AETrainer` and :class:`~.deep_svdd_trainer.DeepSVDDTrainer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...errors import LoopSVDDError
from ...models.checkpointing import load_training_state, save_training_state
from ...models.loop_svdd.svdd_head import SVDDAutoencoder
from .configuration import SVDDTrainingConfig

CHECKPOINT_FORMAT = 2  # 2: centre and radius are head buffers


class TrainingDivergedError(LoopSVDDError, RuntimeError):
    """Raised when a loss becomes NaN or infinite."""


def validation_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) rows of ``n``: ``floor(val_fraction * n)`` held out, none when fewer than 2 would
    be left to train on."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(math.floor(val_fraction * n))
    if n_val and n - n_val < 2:
        n_val = 0  # too few rows to hold any out
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def mini_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
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


def new_state(config: SVDDTrainingConfig, fingerprint: str) -> dict[str, Any]:
    """The JSON state of a fresh run (what a checkpoint stores besides tensors)."""
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
class TrainingRun:
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


class PhaseTrainer:
    """One phase: epochs of mini-batch AdamW with early stopping on the validation loss (the best epoch's
    weights are kept), a checkpoint at every epoch end. Subclasses name the phase, its loss and parameters."""

    phase = ""

    def __init__(self, run: TrainingRun) -> None:
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
        for idx in mini_batches(len(run.x_train), self.config.batch_size, run.generator):
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
        save_checkpoint(run, None if finished else self.optimizer)  # a new phase starts with a fresh optimizer
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


def save_checkpoint(run: TrainingRun, optimizer: torch.optim.Optimizer | None) -> None:
    """Checkpoint the run (weights with their centre/radius buffers, best weights, optimizer, RNG)."""
    if run.checkpoint_dir is None or not run.accelerator.is_main_process:
        return
    tensors = {f"model.{k}": v.clone() for k, v in run.model.state_dict().items()}
    if run.best_state is not None:
        tensors.update({f"best.{k}": v for k, v in run.best_state.items()})
    device, step = run.x_train.device, run.state["global_epoch"]
    save_training_state(run.checkpoint_dir, run.state, tensors, optimizer, device, run.generator, step=step)


def resume_checkpoint(run: TrainingRun) -> None:
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
