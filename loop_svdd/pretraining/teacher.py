"""musicnn as a loop embedder: the shipped checkpoints, and a loop's pooled teacher features.

A loop's features are those the issue's measurement used: the loop cut into 3 s patches with half overlap (repeated
up to one patch when shorter), and the mean over patches of musicnn's `max_pool` layer (753-d), plus the mean tag
probabilities. `both` concatenates the MTT and MSD features (1506-d).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..models.musicnn.feature_extraction_musicnn import MusicnnFeatureExtractor
from ..models.musicnn.modeling_musicnn import MusicnnModel
from ..paths import ASSETS_DIR
from ..settings import SAMPLING_RATE

ASSETS = ASSETS_DIR
CHECKPOINTS = {"musicnn-mtt": ASSETS / "musicnn_mtt", "musicnn-msd": ASSETS / "musicnn_msd"}
TEACHERS = (*CHECKPOINTS, "both")
MAX_PATCHES_PER_CALL = 64


def is_teacher(name: str) -> bool:
    return name in TEACHERS


def members(name: str) -> list[str]:
    """The checkpoints a teacher name stands for."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose one of {', '.join(TEACHERS)}")
    return list(CHECKPOINTS) if name == "both" else [name]


@lru_cache(maxsize=2)
def load_musicnn(name: str) -> MusicnnModel:
    """A shipped musicnn checkpoint (`musicnn-mtt` or `musicnn-msd`), in eval mode."""
    import transformers

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return MusicnnModel.from_pretrained(CHECKPOINTS[name]).eval()
    finally:
        transformers.logging.set_verbosity(level)


@dataclass
class TeacherFeatures:
    """Pooled teacher outputs of a batch of loops: `features` `(n, 753 x members)`, `tags` `(n, 50 x members)`."""

    features: np.ndarray
    tags: np.ndarray


class MusicnnEmbedder:
    """Pooled musicnn features of loops given as waveforms at any sampling rate."""

    def __init__(self, name: str = "musicnn-mtt") -> None:
        self.name = name
        self.models = [load_musicnn(m) for m in members(name)]
        self.extractor = MusicnnFeatureExtractor(self.models[0].config)

    @property
    def dim(self) -> int:
        return sum(m.config.feature_dim for m in self.models)

    @torch.inference_mode()
    def embed_one(self, waveform: np.ndarray | torch.Tensor, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """One loop -> (features, tags), each the mean over its patches."""
        patches = self.extractor.patches(torch.as_tensor(waveform, dtype=torch.float32), sampling_rate)
        feats, tags = [], []
        for model in self.models:
            outs = [model(chunk) for chunk in patches.split(MAX_PATCHES_PER_CALL)]
            feats.append(torch.cat([o.max_pool for o in outs]).mean(0))
            tags.append(torch.cat([o.probabilities for o in outs]).mean(0))
        return torch.cat(feats).numpy(), torch.cat(tags).numpy()

    def embed(self, waveforms: list[np.ndarray], sampling_rate: int) -> TeacherFeatures:
        pairs = [self.embed_one(w, sampling_rate) for w in waveforms]
        if not pairs:
            return TeacherFeatures(np.zeros((0, self.dim), np.float32), np.zeros((0, 50 * len(self.models))))
        return TeacherFeatures(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))


def teacher_embeddings(name: str, dataset, rows=None, progress: bool = False) -> np.ndarray:
    """`(len(rows), D)` pooled `name` features of the loops `rows` (all by default) of a corpus `dataset`."""
    from tqdm.auto import tqdm

    from ..audio.corpora import audio_column, waveform_of, with_decoding

    embedder, column, sr = MusicnnEmbedder(name), audio_column(dataset), SAMPLING_RATE
    decoded = with_decoding(dataset, sr)
    if rows is not None:
        decoded = decoded.select([int(r) for r in rows])
    out = [embedder.embed_one(waveform_of(ex, column), sr)[0] for ex in tqdm(decoded, disable=not progress)]
    return np.stack(out) if out else np.zeros((0, embedder.dim), np.float32)
