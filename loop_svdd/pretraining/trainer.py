"""Self-supervised pretraining of the HTS-AT encoder on loops (SimCLR: NT-Xent between two views of a loop).

Runs on `accelerate` (CPU, a GPU, or several with `accelerate launch`; bf16 autocast on GPU only). AdamW with a
linear warm-up and a cosine decay computed from the step (nothing to restore but the step). Every
`checkpoint_every` steps the full state - encoder, projection head, optimizer, torch and view-generator RNG,
history - is written atomically (safetensors + JSON); a later call with the same config and data resumes from
it and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..models.checkpointing import load_training_state, save_training_state
from ..models.loop_svdd.configuration_loop_svdd import HTSAT_SIZES, LoopSVDDConfig
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from .augment import ViewConfig, make_pair_batch
from .mels import mels_fingerprint
from .objective import ProjectionHead, nt_xent, positive_accuracy

PRETRAIN_SIZES = HTSAT_SIZES  # "small" (the shipped default), "tiny", "base"
CHECKPOINT_DIR = "checkpoints"
PRETRAINING_JSON = "pretraining.json"


@dataclass
class PretrainConfig:
    """Hyper-parameters of :func:`pretrain_encoder`. `init` is `"random"` (seeded HTS-AT of shape `size`) or an
    encoder :func:`loop_svdd.models.encoders.build_model` accepts (CLAP weights: domain adaptation)."""

    size: str = "small"
    init: str = "random"
    audio_config: dict[str, Any] | None = None  # an explicit HTS-AT shape instead of `size` (tests, experiments)
    steps: int = 90
    batch_size: int = 16  # loops per step (2 views each), over all processes
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 8
    temperature: float = 0.2
    projection_dim: int = 128
    max_grad_norm: float = 1.0
    checkpoint_every: int = 20
    seed: int = 0
    views: ViewConfig = field(default_factory=ViewConfig)

    def __post_init__(self) -> None:
        if isinstance(self.views, dict):
            self.views = ViewConfig.from_dict(self.views)
        if self.init == "random" and self.audio_config is None and self.size not in PRETRAIN_SIZES:
            raise ValueError(f"size must be one of {sorted(PRETRAIN_SIZES)}, got {self.size!r}")
        checks = {
            "steps": self.steps >= 1,
            "batch_size": self.batch_size >= 2,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_steps": self.warmup_steps >= 0,
            "temperature": self.temperature > 0,
            "projection_dim": self.projection_dim >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid PretrainConfig value(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["views"] = self.views.to_dict()
        return d

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.lr, self.warmup_steps, self.steps)


def warmup_cosine(step: int, lr: float, warmup_steps: int, steps: int) -> float:
    """Linear warm-up to `lr`, then cosine decay to 0 at `steps`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return 0.5 * lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


class ContrastiveModel(nn.Module):
    """The HTS-AT encoder with the projection head on top (one module, so DDP sees one forward call)."""

    def __init__(self, encoder: nn.Module, hidden_size: int, projection_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = ProjectionHead(hidden_size, hidden_size, projection_dim)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder(input_features=input_features).pooler_output)


@dataclass
class PretrainResult:
    model: LoopSVDDModel
    extractor: LoopSVDDFeatureExtractor
    history: dict[str, list[float]]
    output_dir: Path
    summary: dict[str, Any]


def initial_model(config: PretrainConfig) -> LoopSVDDModel:
    """The encoder pretraining starts from: seeded random weights of `config.size`, or `config.init`'s."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.init == "random":
            shape = config.audio_config or PRETRAIN_SIZES[config.size]
            return LoopSVDDModel(LoopSVDDConfig(audio_config={**shape, "enable_fusion": False}))
        from ..models.encoders import build_model

        model, _ = build_model(config.init)
    if model.config.is_fused:
        raise ValueError(f"{config.init} is a fused encoder; pretraining works on unfused (windowed) encoders")
    return model


class ContrastiveTrainer:
    """The pretraining loop: one object per run holding the network, optimizer, view generator and JSON state;
    `train` runs the remaining steps, checkpointing every `checkpoint_every` (a later trainer on the same
    directory, config and data resumes bit-exactly)."""

    def __init__(
        self,
        mels: list[torch.Tensor],
        config: PretrainConfig,
        ckpt_dir: Path,
        accelerator: Any,
        progress: bool = True,
        on_step_end: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.mels, self.config, self.ckpt_dir, self.accelerator = mels, config, ckpt_dir, accelerator
        self.progress, self.on_step_end = progress, on_step_end
        self.device = accelerator.device
        self.extractor = LoopSVDDFeatureExtractor()
        self.n_procs, self.rank = accelerator.num_processes, accelerator.process_index
        if config.batch_size % self.n_procs or config.batch_size // self.n_procs < 2:
            raise ValueError(
                f"batch_size {config.batch_size} must split into >= 2 loops on each of {self.n_procs} processes"
            )
        self.local = config.batch_size // self.n_procs
        self.lm = initial_model(config)
        torch.manual_seed(config.seed)
        self.net = ContrastiveModel(self.lm.encoder, self.lm.config.embedding_dim, config.projection_dim)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.lr_at(0), weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.state: dict[str, Any] = {
            "config": config.to_dict(),
            "fingerprint": mels_fingerprint(mels),
            "step": 0,
            "elapsed_s": 0.0,
            "history": {"loss": [], "positive_accuracy": [], "lr": []},
        }
        self._resume()
        self.net, self.optimizer = accelerator.prepare(self.net, self.optimizer)
        self.inner = accelerator.unwrap_model(self.net)

    def _resume(self) -> None:
        expected = {key: self.state[key] for key in ("config", "fingerprint")}
        resumed = load_training_state(self.ckpt_dir, expected, self.device, self.generator, self.rank)
        if resumed is None:
            return
        self.state, tensors, optimizer_state = resumed
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.optimizer.load_state_dict(optimizer_state)

    def save(self) -> None:
        if not self.accelerator.is_main_process:
            return
        tensors = {f"net.{k}": v.clone() for k, v in self.inner.state_dict().items()}
        st = self.state
        save_training_state(
            self.ckpt_dir, st, tensors, self.optimizer, self.device, self.generator, self.rank, st["step"]
        )

    def step(self) -> tuple[float, float, float]:
        """One optimisation step on a batch of view pairs; returns (loss, positive accuracy, lr)."""
        config, local, st = self.config, self.local, self.state
        step = st["step"]
        lr = config.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        picked = torch.randperm(len(self.mels), generator=self.generator)[: config.batch_size].tolist()
        picked = (picked * math.ceil(config.batch_size / len(picked)))[: config.batch_size]
        v1, v2 = make_pair_batch(self.mels, picked, self.extractor.num_frames, config.views, self.generator)
        mine = slice(self.rank * local, (self.rank + 1) * local)
        views = torch.cat([v1[mine], v2[mine]]).to(self.device)
        with self.accelerator.autocast():
            z = self.net(views)
        loss = nt_xent(z[:local], z[local:], config.temperature)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the contrastive loss became {value} at step {step}: lower --lr")
        self.optimizer.zero_grad()
        self.accelerator.backward(loss)
        if config.max_grad_norm:
            self.accelerator.clip_grad_norm_(self.net.parameters(), config.max_grad_norm)
        self.optimizer.step()
        return value, positive_accuracy(z[:local].detach(), z[local:].detach()), lr

    def train(self) -> None:
        config, st = self.config, self.state
        bar = tqdm(
            total=config.steps,
            initial=st["step"],
            desc="pretraining",
            unit="step",
            disable=not self.progress or not self.accelerator.is_local_main_process,
        )
        self.net.train()
        started = time.perf_counter() - st["elapsed_s"]
        while st["step"] < config.steps:
            value, acc, lr = self.step()
            st["step"] += 1
            st["elapsed_s"] = time.perf_counter() - started
            for key, v in (("loss", value), ("positive_accuracy", acc), ("lr", lr)):
                st["history"][key].append(v)
            if st["step"] % config.checkpoint_every == 0 or st["step"] == config.steps:
                self.save()
            if self.accelerator.trackers:
                logs = {"pretrain/loss": value, "pretrain/positive_accuracy": acc, "lr": lr}
                self.accelerator.log(logs, step=st["step"])
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", pos_acc=f"{acc:.2f}")
            if self.on_step_end is not None:
                self.on_step_end({"step": st["step"], "loss": value, "positive_accuracy": acc, "lr": lr})
        bar.close()

    def summary(self, description: str) -> dict[str, Any]:
        config, st = self.config, self.state
        return {
            "objective": "SimCLR NT-Xent between two augmented views of a loop (projection head discarded)",
            "data": description,
            "n_loops": len(self.mels),
            "steps": config.steps,
            "views_seen": 2 * config.batch_size * config.steps,
            "elapsed_s": round(st["elapsed_s"], 1),
            "device": str(self.device),
            "num_processes": self.n_procs,
            "config": config.to_dict(),
            "final_loss": st["history"]["loss"][-1],
            "history": st["history"],
        }


def _encoder_model(trainer: ContrastiveTrainer, description: str) -> LoopSVDDModel:
    """A LoopSVDD model (untrained head) around the pretrained encoder."""
    config, lm = trainer.config, trainer.lm
    name = (
        f"loop-svdd pretrain-encoder (SimCLR, {lm.config.audio_config.hidden_size}-d HTS-AT from {config.init}, "
        f"{config.steps} steps x {config.batch_size} loops, seed {config.seed}) on {description}"
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        out_config = LoopSVDDConfig(
            audio_config=lm.config.audio_config.to_dict(), encoder_name_or_path=name, encoder_pretrained=True
        )
        model = LoopSVDDModel(out_config)
    encoder = trainer.inner.encoder
    model.encoder.load_state_dict({k: v.detach().float().cpu() for k, v in encoder.state_dict().items()})
    return model.eval()


def pretrain_encoder(
    mels: list[torch.Tensor],
    output_dir: str | Path,
    config: PretrainConfig | None = None,
    accelerator: Any | None = None,
    progress: bool = True,
    description: str = "loops",
    on_step_end: Callable[[dict[str, Any]], None] | None = None,
    provenance: dict[str, Any] | None = None,
) -> PretrainResult:
    """Pretrain an HTS-AT encoder on the log-mels `mels` (see :func:`~loop_svdd.pretraining.mels.corpus_mels`)
    and write a LoopSVDD model folder (its head untrained) to `output_dir`; checkpoints go to
    `output_dir/checkpoints`. `on_step_end` is called after each step's checkpoint (raise to stop early);
    `provenance` (e.g. the sources trained on and held out) is added to `pretraining.json`."""
    from accelerate import Accelerator

    from ..models.model_io import save_detector

    config = config or PretrainConfig()
    if len(mels) < 2:
        raise ValueError(f"pretraining needs at least 2 loops, got {len(mels)}")
    output_dir = Path(output_dir)
    accelerator = accelerator or Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    device = accelerator.device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        trainer = ContrastiveTrainer(
            mels, config, output_dir / CHECKPOINT_DIR, accelerator, progress=progress, on_step_end=on_step_end
        )
        trainer.train()
    summary = {**trainer.summary(description), **(provenance or {})}
    model = _encoder_model(trainer, description)
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    if accelerator.is_main_process:
        save_detector(model, extractor, output_dir, extra_json={PRETRAINING_JSON: summary})
    accelerator.wait_for_everyone()
    return PretrainResult(model, extractor, trainer.state["history"], output_dir, summary)
