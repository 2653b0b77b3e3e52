"""Distil a pretrained music model (musicnn) into an HTS-AT encoder: the student's pooled embedding, through a
linear head, predicts the teacher's pooled features of the same clip (standardised, mean squared error) and,
optionally, its tag probabilities (binary cross-entropy).

Teacher outputs are computed once per corpus and cached as a `datasets` dataset beside the checkpoints
(`OUTPUT_DIR/teacher/<name>`); the student's inputs are the clip's first encoder window, repeat-padded as the feature
extractor does, circularly shifted and masked per step. Training runs on `accelerate` and checkpoints every
`checkpoint_every` steps (safetensors + JSON); a later call with the same config and data resumes bit-exactly.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..audio.corpora import audio_column, waveform_of, with_decoding
from ..models.checkpointing import load_training_state, save_training_state
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .augment import ViewConfig, crop_and_fill
from .mels import mels_fingerprint
from .teacher import MusicnnEmbedder, members
from .trainer import CHECKPOINT_DIR, PRETRAINING_JSON, PretrainConfig, initial_model, warmup_cosine

TEACHER_DIR = "teacher"
SHIFT_ONLY = ViewConfig(min_crop=1.0, stretch=1.0)  # whole clip, circular shift, repeat-pad


@dataclass
class DistillConfig:
    """Hyper-parameters of :func:`distill_encoder`."""

    teacher: str = "musicnn-mtt"
    size: str = "small"
    init: str = "random"
    steps: int = 600
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    tag_weight: float = 0.0
    mask_prob: float = 0.3
    max_grad_norm: float = 1.0
    checkpoint_every: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        members(self.teacher)  # raises on an unknown teacher
        PretrainConfig(size=self.size, init=self.init, steps=self.steps, batch_size=self.batch_size, lr=self.lr)
        if self.tag_weight < 0 or not 0 <= self.mask_prob <= 1 or self.checkpoint_every < 1:
            raise ValueError("tag_weight must be >= 0, mask_prob in [0, 1], checkpoint_every >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DistillData:
    """Student inputs and teacher targets of the clips of a corpus."""

    mels: list[torch.Tensor]  # (frames, mels) dB log-mels of each clip's first window, unpadded
    features: torch.Tensor  # (n, D) teacher features
    tags: torch.Tensor  # (n, tags) teacher tag probabilities
    rows: list[int]  # corpus rows kept (long enough to frame)


def teacher_cache(
    dataset: datasets.Dataset, rows: list[int], teacher: str, cache_dir: Path, progress: bool = True
) -> tuple[DistillData, float]:
    """The student mels and teacher outputs of `rows`, the teacher part read from `cache_dir` when it was
    computed for the same rows and teacher (a `datasets` dataset with columns `row`, `features`, `tags`), else
    computed and saved there. Returns the data and the seconds spent in the teacher."""
    extractor, embedder = LoopSVDDFeatureExtractor(), None
    column = audio_column(dataset)
    decoded = with_decoding(dataset, extractor.sampling_rate).select(rows)
    key = {"teacher": teacher, "rows": hash_rows(dataset, rows)}
    cached = _load_cache(cache_dir, key)
    if cached is None:
        embedder = MusicnnEmbedder(teacher)
    mels, feats, tags, kept, teacher_s = [], [], [], [], 0.0
    for row, example in tqdm(zip(rows, decoded, strict=True), total=len(rows), desc="teacher", disable=not progress):
        wave = waveform_of(example, column)[: extractor.nb_max_samples]
        if wave.size < extractor.fft_window_size:
            continue
        mels.append(extractor.log_mel(torch.from_numpy(wave)[None], "slaney")[0])
        kept.append(row)
        if embedder is not None:
            started = time.perf_counter()
            f, t = embedder.embed_one(wave, extractor.sampling_rate)
            teacher_s += time.perf_counter() - started
            feats.append(f)
            tags.append(t)
    if cached is None:
        cached = datasets.Dataset.from_dict({"row": kept, "features": feats, "tags": tags})
        cached.save_to_disk(str(cache_dir))
        (cache_dir / "key.json").write_text(json.dumps(key))
    table = cached.with_format("numpy")
    features, tags = (torch.from_numpy(np.stack(list(table[c]))) for c in ("features", "tags"))
    data = DistillData(mels, features, tags, kept)
    return data, teacher_s


def hash_rows(dataset: datasets.Dataset, rows: list[int]) -> str:
    import hashlib

    names = dataset.select(rows).remove_columns(audio_column(dataset)).to_pandas().to_json()
    return hashlib.sha256(f"{rows}|{names}".encode()).hexdigest()[:16]


def _load_cache(cache_dir: Path, key: dict[str, Any]) -> datasets.Dataset | None:
    key_file = cache_dir / "key.json"
    if not key_file.is_file() or json.loads(key_file.read_text()) != key:
        return None
    return datasets.load_from_disk(str(cache_dir))


class DistillModel(nn.Module):
    """The HTS-AT encoder with a linear head to the teacher's features (and tags)."""

    def __init__(self, encoder: nn.Module, hidden: int, feature_dim: int, tag_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.features = nn.Linear(hidden, feature_dim)
        self.tags = nn.Linear(hidden, tag_dim)

    def forward(self, input_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.encoder(input_features=input_features).pooler_output
        return self.features(pooled), self.tags(pooled)


def standardise(features: torch.Tensor) -> torch.Tensor:
    """Per-dimension z-scores (constant dimensions become 0)."""
    std = features.std(0)
    return (features - features.mean(0)) / torch.where(std > 1e-6, std, torch.ones_like(std))


class DistillTrainer:
    """The distillation loop: network, optimizer, batch generator and JSON state of one run; `train` runs the
    remaining steps, checkpointing every `checkpoint_every` (a later trainer on the same directory, config and
    data resumes bit-exactly)."""

    def __init__(self, data: DistillData, config: DistillConfig, ckpt_dir: Path, accelerator: Any, progress: bool):
        self.data, self.config, self.ckpt_dir, self.accelerator = data, config, ckpt_dir, accelerator
        self.progress, self.device = progress, accelerator.device
        self.num_frames = LoopSVDDFeatureExtractor().num_frames
        self.targets = standardise(data.features.float())
        self.lm = initial_model(PretrainConfig(size=config.size, init=config.init, seed=config.seed))
        torch.manual_seed(config.seed)
        hidden = self.lm.config.embedding_dim
        self.net = DistillModel(self.lm.encoder, hidden, self.targets.shape[1], data.tags.shape[1])
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.lr_at(0), weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        fingerprint = mels_fingerprint(data.mels[:50]) + f"-{len(data.mels)}-{float(data.features.sum()):.6g}"
        self.state: dict[str, Any] = {
            "config": config.to_dict(), "fingerprint": fingerprint, "step": 0, "elapsed_s": 0.0,
            "history": {"loss": [], "feature_mse": [], "tag_bce": [], "lr": []},
        }  # fmt: skip
        self._resume()
        self.net, self.optimizer = accelerator.prepare(self.net, self.optimizer)
        self.inner = accelerator.unwrap_model(self.net)

    def lr_at(self, step: int) -> float:
        c = self.config
        return warmup_cosine(step, c.lr, c.warmup_steps, c.steps)

    def _resume(self) -> None:
        expected = {key: self.state[key] for key in ("config", "fingerprint")}
        resumed = load_training_state(self.ckpt_dir, expected, self.device, self.generator)
        if resumed is not None:
            self.state, tensors, optimizer_state = resumed
            self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
            self.optimizer.load_state_dict(optimizer_state)

    def save(self) -> None:
        tensors = {f"net.{k}": v.clone() for k, v in self.inner.state_dict().items()}
        st = self.state
        save_training_state(self.ckpt_dir, st, tensors, self.optimizer, self.device, self.generator, 0, st["step"])

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Student inputs `(B, 1, frames, mels)`, standardised teacher features and teacher tags of a batch."""
        picked = torch.randperm(len(self.data.mels), generator=self.generator)[: self.config.batch_size]
        views = []
        for i in picked.tolist():
            view = crop_and_fill(self.data.mels[i], self.num_frames, SHIFT_ONLY, self.generator)
            if float(torch.rand((), generator=self.generator)) < self.config.mask_prob:
                start = int(torch.randint(0, self.num_frames - 80, (), generator=self.generator))
                view = view.clone()
                view[start : start + 80] = view.min()
            views.append(view)
        return torch.stack(views)[:, None], self.targets[picked], self.data.tags[picked].float()

    def step(self) -> dict[str, float]:
        config, step = self.config, self.state["step"]
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        views, targets, tags = (t.to(self.device) for t in self.batch())
        with self.accelerator.autocast():
            pred, tag_logits = self.net(views)
        mse = F.mse_loss(pred.float(), targets)
        bce = F.binary_cross_entropy_with_logits(tag_logits.float(), tags)
        loss = mse + config.tag_weight * bce
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"the distillation loss became {float(loss.detach())} at step {step}: lower --lr")
        self.optimizer.zero_grad()
        self.accelerator.backward(loss)
        if config.max_grad_norm:
            self.accelerator.clip_grad_norm_(self.net.parameters(), config.max_grad_norm)
        self.optimizer.step()
        values = {"loss": loss, "feature_mse": mse, "tag_bce": bce}
        return {**{k: float(v.detach()) for k, v in values.items()}, "lr": lr}

    def train(self) -> None:
        config, st = self.config, self.state
        bar = tqdm(total=config.steps, initial=st["step"], desc="distilling", unit="step", disable=not self.progress)
        self.net.train()
        started = time.perf_counter() - st["elapsed_s"]
        while st["step"] < config.steps:
            logs = self.step()
            st["step"] += 1
            st["elapsed_s"] = time.perf_counter() - started
            for key, value in logs.items():
                st["history"][key].append(value)
            if st["step"] % config.checkpoint_every == 0 or st["step"] == config.steps:
                self.save()
            bar.update(1)
            bar.set_postfix(mse=f"{logs['feature_mse']:.3f}")
        bar.close()


def _student_model(trainer: DistillTrainer, description: str):
    """A LoopSVDD model (untrained head) around the distilled encoder."""
    from ..models.loop_svdd.configuration_loop_svdd import LoopSVDDConfig
    from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel

    config, lm = trainer.config, trainer.lm
    name = (
        f"loop-svdd pretrain-encoder --teacher {config.teacher} ({lm.config.audio_config.hidden_size}-d HTS-AT from "
        f"{config.init}, {config.steps} steps x {config.batch_size} clips, seed {config.seed}) on {description}"
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        out = LoopSVDDConfig(audio_config=lm.config.audio_config.to_dict(), encoder_name_or_path=name,
                             encoder_pretrained=True)  # fmt: skip
        model = LoopSVDDModel(out)
    state = trainer.inner.encoder.state_dict()
    model.encoder.load_state_dict({k: v.detach().float().cpu() for k, v in state.items()})
    return model.eval()


def distill_encoder(
    dataset: datasets.Dataset,
    rows: list[int],
    output_dir: str | Path,
    config: DistillConfig,
    progress: bool = True,
    description: str = "clips",
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Distil `config.teacher` into an HTS-AT encoder on the clips `rows` of `dataset`; writes a LoopSVDD model
    folder (its head untrained) to `output_dir` and returns the summary written to its `pretraining.json`."""
    from accelerate import Accelerator

    from ..models.model_io import save_detector

    output_dir = Path(output_dir)
    started = time.perf_counter()
    data, teacher_s = teacher_cache(dataset, rows, config.teacher, output_dir / TEACHER_DIR / config.teacher, progress)
    if len(data.mels) < 2:
        raise ValueError(f"distillation needs at least 2 clips long enough to frame, got {len(data.mels)}")
    prepared_s = time.perf_counter() - started
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    with torch.random.fork_rng(devices=[]):
        trainer = DistillTrainer(data, config, output_dir / CHECKPOINT_DIR, accelerator, progress)
        trainer.train()
    hist = trainer.state["history"]
    summary = {
        "objective": f"distillation of {config.teacher}: standardised max_pool features (MSE)"
        + (f" + {config.tag_weight} x tag BCE" if config.tag_weight else ""),
        "data": description, "n_clips": len(data.mels), "steps": config.steps,
        "teacher_s": round(teacher_s, 1), "data_s": round(prepared_s, 1),
        "elapsed_s": round(trainer.state["elapsed_s"], 1), "device": str(accelerator.device),
        "config": config.to_dict(), "final_feature_mse": float(np.mean(hist["feature_mse"][-10:])),
        "first_feature_mse": float(np.mean(hist["feature_mse"][:10])), "history": hist, **(provenance or {}),
    }  # fmt: skip
    model = _student_model(trainer, description)
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    save_detector(model, extractor, output_dir, extra_json={PRETRAINING_JSON: summary})
    return summary
