"""Embedding-level Deep SVDD training (Ruff et al., ICML 2018) on `accelerate`.

Two phases on a matrix of embeddings of *normal* loops:

1. autoencoder pretraining of an :class:`~loop_svdd.svdd_head.SVDDAutoencoder` (MSE on standardised input);
2. Deep SVDD on its encoder: centre ``c`` = Ruff's eps-fixed mean latent, computed once and then fixed;
   dropout off; loss = mean squared distance to ``c`` ("one-class") or the soft-boundary loss with radius
   ``R`` = (1 - nu)-quantile of the distances, updated every epoch after a warm-up.

A split of the normals (``val_fraction``) drives early stopping and calibrates the threshold.
With ``checkpoint_dir`` the full state (weights, optimizer, RNG, early-stopping bookkeeping) is written
atomically at every epoch end (safetensors + JSON, no pickle) and a later call resumes from it bit-exactly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpointing import flatten_optimizer, load_checkpoint, save_checkpoint, unflatten_optimizer
from ..svdd_head import ACTIVATIONS, HEAD_TYPES, SVDDAutoencoder, init_center

OBJECTIVES = ("one-class", "soft-boundary")
CHECKPOINT_FORMAT = 1
PAPER_HIDDEN_DIMS = (512, 256, 128, 64, 32)


@dataclass
class SVDDTrainingConfig:
    """Hyper-parameters of :func:`fit_deep_svdd`.

    Defaults were chosen on the musicradar-bass-392 one-vs-rest benchmark (see ``docs/benchmark.md``);
    the train sets there hold 11-51 embeddings. Measured there: the paper's 5-level encoder
    ``PAPER_HIDDEN_DIMS`` and long autoencoder pretraining at lr 1e-3 both hurt (AUROC 0.73-0.91 vs 0.96);
    L2-normalised inputs, a 2-level encoder and lr 1e-4 helped.
    """

    head_type: str = "ae"
    hidden_dims: list[int] = field(default_factory=lambda: [512, 256])
    activation: str = "elu"
    dropout: float = 0.2
    objective: str = "one-class"
    nu: float = 0.1
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
    l2_normalize: bool = True
    threshold_quantile: float = 0.95
    warmup_epochs: int = 10
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        self.hidden_dims = [int(d) for d in self.hidden_dims]
        if self.head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {self.head_type!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not self.hidden_dims or any(d <= 0 for d in self.hidden_dims):
            raise ValueError(f"hidden_dims must be positive layer widths, got {self.hidden_dims}")
        checks = {
            "dropout": 0.0 <= self.dropout < 1.0,
            "nu": 0.0 < self.nu <= 1.0,
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
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid SVDDTrainingConfig value(s): {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SVDDFitResult:
    """What :func:`fit_deep_svdd` returns. ``head`` is in eval mode with dropout 0."""

    head: SVDDAutoencoder
    center: torch.Tensor
    radius: float
    threshold: float
    val_scores: np.ndarray
    history: dict[str, list[float]]
    config: SVDDTrainingConfig


class TrainingDivergedError(RuntimeError):
    """Raised when a loss becomes NaN or infinite."""


# --------------------------------------------------------------------------------------------- scoring
def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _distances(head: SVDDAutoencoder, center: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((head.encode(x) - center) ** 2).sum(dim=1)


@torch.no_grad()
def score(
    head: SVDDAutoencoder,
    center: torch.Tensor,
    radius: float,
    objective: str,
    embeddings: np.ndarray,
    l2_normalize_input: bool = False,
    batch_size: int = 1024,
) -> np.ndarray:
    """Anomaly scores (higher = more abnormal): squared distance to ``center``, minus ``radius**2`` for the
    soft-boundary objective. ``embeddings`` is (n, input_dim)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {x.shape}")
    if l2_normalize_input:
        x = l2_normalize(x)
    was_training = head.training
    head.eval()
    device = center.device
    out = [
        _distances(head, center, torch.from_numpy(x[i : i + batch_size]).to(device)).cpu()
        for i in range(0, len(x), batch_size)
    ]
    head.train(was_training)
    dist = torch.cat(out).double().numpy() if out else np.zeros(0)
    return dist - radius**2 if objective == "soft-boundary" else dist


# ------------------------------------------------------------------------------------------ checkpoints
def _fingerprint(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ training
def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(math.floor(val_fraction * n))
    if n_val and n - n_val < 2:
        n_val = 0  # too few rows to hold any out
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=generator)
    batches = list(torch.split(perm, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:  # BatchNorm cannot train on a single row
        batches[-2] = torch.cat([batches[-2], batches.pop()])
    return batches


def _check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"{what} became {value}: check the embeddings for NaN/inf values or lower the learning rate"
        )


def fit_deep_svdd(
    embeddings: np.ndarray,
    config: SVDDTrainingConfig | None = None,
    accelerator: Any | None = None,
    checkpoint_dir: str | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> SVDDFitResult:
    """Train a Deep SVDD head on ``embeddings`` (n, d) of normal loops.

    ``on_epoch_end`` is called with ``{"phase", "epoch", "global_epoch", ...losses}`` after each epoch's
    checkpoint is written (raise from it to stop a run early, e.g. to test resumption).
    """
    from accelerate import Accelerator

    config = config or SVDDTrainingConfig()
    x_np = np.asarray(embeddings, dtype=np.float32)
    if x_np.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {x_np.shape}")
    if len(x_np) < 2:
        raise ValueError(f"Deep SVDD needs at least 2 normal embeddings, got {len(x_np)}")
    if not np.isfinite(x_np).all():
        raise ValueError("embeddings contain NaN or inf values")
    if config.l2_normalize:
        x_np = l2_normalize(x_np)
    accelerator = accelerator or Accelerator()
    device = accelerator.device
    ckpt = checkpoint_dir
    fingerprint = _fingerprint(x_np)

    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        train_idx, val_idx = _split(len(x_np), config.val_fraction, config.seed)
        x_train = torch.from_numpy(x_np[train_idx]).to(device)
        x_val = torch.from_numpy(x_np[val_idx]).to(device)

        head = SVDDAutoencoder(x_np.shape[1], config.hidden_dims, config.head_type, config.activation, config.dropout)
        if config.standardize:
            head.input_mean.copy_(x_train.mean(0).cpu())
            std = x_train.std(0).cpu() if len(x_train) > 1 else torch.ones(x_np.shape[1])
            head.input_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        head.to(device)
        generator = torch.Generator().manual_seed(config.seed)

        st: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "config": config.to_dict(),
            "fingerprint": fingerprint,
            "phase": "pretrain" if config.pretrain_epochs > 0 else "svdd",
            "epoch": 0,
            "global_epoch": 0,
            "best": None,
            "bad_epochs": 0,
            "radius": 0.0,
            "history": {"pretrain_loss": [], "pretrain_val_loss": [], "svdd_loss": [], "svdd_val_loss": []},
            "done": False,
        }
        best_state: dict[str, torch.Tensor] | None = None
        center: torch.Tensor | None = None
        optimizer = _make_optimizer(head, config, st["phase"])
        resumed = load_checkpoint(ckpt) if ckpt else None
        if resumed is not None:
            saved, tensors = resumed
            if saved.get("config") != config.to_dict() or saved.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"checkpoint in {checkpoint_dir} was written for another config or data set; "
                    "use a fresh checkpoint_dir"
                )
            st = saved
            head.load_state_dict({k[6:]: v.to(device) for k, v in tensors.items() if k.startswith("model.")})
            if st["phase"] == "svdd" and "center" in tensors:
                center = tensors["center"].to(device)
            if any(k.startswith("best.") for k in tensors):
                best_state = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
            optimizer = _make_optimizer(head, config, st["phase"])
            if st.get("optimizer") is not None:
                optimizer.load_state_dict(unflatten_optimizer(tensors, st["optimizer"]))
            torch.set_rng_state(tensors["rng.torch"])
            generator.set_state(tensors["rng.generator"])
            if device.type == "cuda" and "rng.cuda" in tensors:
                torch.cuda.set_rng_state(tensors["rng.cuda"], device)

        head, optimizer = accelerator.prepare(head, optimizer)
        model = accelerator.unwrap_model(head)

        def save(with_optimizer: bool) -> None:
            if ckpt is None or not accelerator.is_main_process:
                return
            tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
            if best_state is not None:
                tensors.update({f"best.{k}": v for k, v in best_state.items()})
            if center is not None:
                tensors["center"] = center
            opt_meta = None
            if with_optimizer:
                opt_tensors, opt_meta = flatten_optimizer(optimizer)
                tensors.update(opt_tensors)
            tensors["rng.torch"] = torch.get_rng_state()
            tensors["rng.generator"] = generator.get_state()
            if device.type == "cuda":
                tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
            save_checkpoint(ckpt, {**st, "optimizer": opt_meta}, tensors, step=st["global_epoch"])

        bar = tqdm(
            total=config.pretrain_epochs + config.epochs,
            initial=st["global_epoch"],
            desc="Deep SVDD",
            disable=not progress or not accelerator.is_local_main_process,
            leave=False,
        )
        while not st["done"]:
            phase = st["phase"]
            if phase == "svdd" and center is None:
                # Ruff's centre over the training latents, dropout off: computed once, then fixed.
                model.set_dropout(0.0)
                model.eval()
                with torch.no_grad():
                    center = init_center(model.encode(x_train), config.eps)
                st.update(epoch=0, best=None, bad_epochs=0)
                optimizer = accelerator.prepare(_make_optimizer(model, config, "svdd"))
            n_epochs = config.pretrain_epochs if phase == "pretrain" else config.epochs
            train_loss = _train_epoch(
                head, model, optimizer, accelerator, x_train, generator, config, phase, center, st
            )
            val_loss = _eval_loss(model, x_val if len(x_val) else x_train, config, phase, center, st["radius"])
            _check_finite(val_loss, f"{phase} validation loss")
            if phase == "svdd" and config.objective == "soft-boundary" and st["epoch"] >= config.warmup_epochs:
                model.eval()
                with torch.no_grad():
                    dist = _distances(model, center, x_train)
                st["radius"] = float(torch.quantile(dist.sqrt().double(), 1.0 - config.nu))
            st["history"][f"{phase}_loss"].append(train_loss)
            st["history"][f"{phase}_val_loss"].append(val_loss)
            st["epoch"] += 1
            st["global_epoch"] += 1
            if st["best"] is None or val_loss < st["best"] - config.min_delta:
                st["best"], st["bad_epochs"], st["best_radius"] = val_loss, 0, st["radius"]
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                st["bad_epochs"] += 1
            logs = {f"{phase}/loss": train_loss, f"{phase}/val_loss": val_loss}
            if phase == "svdd" and config.objective == "soft-boundary":
                logs["svdd/radius"] = st["radius"]
            if st["bad_epochs"] >= config.patience or st["epoch"] >= n_epochs:
                model.load_state_dict(best_state)  # early stopping: keep the best epoch's weights
                best_state = None
                if phase == "pretrain":
                    st.update(phase="svdd", epoch=0, best=None, bad_epochs=0, global_epoch=config.pretrain_epochs)
                else:
                    st.update(done=True, radius=st["best_radius"], global_epoch=config.pretrain_epochs + config.epochs)
                save(with_optimizer=False)  # a new phase starts with a fresh optimizer
            else:
                save(with_optimizer=True)
            if accelerator.trackers:
                accelerator.log(logs, step=st["global_epoch"])
            bar.set_postfix({"phase": phase, "loss": f"{train_loss:.4g}", "val": f"{val_loss:.4g}"})
            bar.n = st["global_epoch"]
            bar.refresh()
            if on_epoch_end is not None:
                on_epoch_end({"phase": phase, "epoch": st["epoch"], "global_epoch": st["global_epoch"], **logs})
        bar.close()

    model.set_dropout(0.0)
    model.eval()
    radius = float(st["radius"]) if config.objective == "soft-boundary" else 0.0
    scored = x_np[val_idx] if len(val_idx) else x_np[train_idx]
    val_scores = score(model, center, radius, config.objective, scored)
    threshold = float(np.quantile(val_scores, config.threshold_quantile))
    return SVDDFitResult(model, center.detach(), radius, threshold, val_scores, st["history"], config)


def _make_optimizer(model: SVDDAutoencoder, config: SVDDTrainingConfig, phase: str) -> torch.optim.Optimizer:
    """AdamW over the whole autoencoder (pretraining) or the encoder only (Deep SVDD)."""
    if phase == "pretrain":
        lr, params = config.pretrain_lr or config.lr, list(model.parameters())
    else:
        lr = config.lr
        params = [p for n, p in model.named_parameters() if n.startswith("encoder_")]
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay, foreach=True)


def _loss(
    model: SVDDAutoencoder, x: torch.Tensor, config: SVDDTrainingConfig, phase: str, center, radius: float
) -> torch.Tensor:
    if phase == "pretrain":
        _, recon = model(x)
        return ((recon - model.standardize(x)) ** 2).mean()
    dist = _distances(model, center, x)
    if config.objective == "soft-boundary":
        return radius**2 + (1.0 / config.nu) * torch.clamp(dist - radius**2, min=0).mean()
    return dist.mean()


def _train_epoch(head, model, optimizer, accelerator, x_train, generator, config, phase, center, st) -> float:
    model.train()
    if phase == "svdd":
        model.set_dropout(0.0)
    total, count = 0.0, 0
    for idx in _batches(len(x_train), config.batch_size, generator):
        xb = x_train[idx.to(x_train.device)]
        optimizer.zero_grad()
        distributed = head is not model
        if phase == "pretrain" or distributed:
            latent, recon = head(xb)  # through the prepared module: DDP must see the forward call
        else:
            latent, recon = model.encode(xb), None
        if phase == "pretrain":
            loss = ((recon - model.standardize(xb)) ** 2).mean()
        else:
            dist = ((latent - center) ** 2).sum(dim=1)
            if config.objective == "soft-boundary":
                r2 = st["radius"] ** 2
                loss = r2 + (1.0 / config.nu) * torch.clamp(dist - r2, min=0).mean()
            else:
                loss = dist.mean()
            if distributed:
                loss = loss + 0.0 * recon.sum()  # DDP: the decoder takes no part in this phase
        value = float(loss.detach())
        _check_finite(value, f"{phase} training loss")
        accelerator.backward(loss)
        optimizer.step()
        total += value * len(idx)
        count += len(idx)
    return total / max(count, 1)


@torch.no_grad()
def _eval_loss(model, x, config, phase, center, radius: float) -> float:
    model.eval()
    loss = float(_loss(model, x, config, phase, center, radius))
    model.train()
    return loss
