"""musicnn in PyTorch: the music-tagging CNN of Pons and Serra ("musicnn: pre-trained convolutional neural networks
for music audio tagging", ISMIR 2019 late-breaking demo; github.com/jordipons/musicnn, ISC licence).

A port of `musicnn/models.py::build_musicnn` (TensorFlow 1 layers, NHWC) to NCHW PyTorch modules: a musically
motivated front end (two timbral convolutions spanning 40 % and 70 % of the mel axis, three temporal
convolutions of 128/64/32 frames, each max-pooled over frequency), a mid end of three dense 1-d convolutions with
residual connections, and a back end of temporal max+mean pooling and two dense layers. Weights come from the
wheel's TensorFlow checkpoints via `loop_svdd.models.musicnn.conversion` (no TensorFlow needed at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_musicnn import MusicnnConfig


@dataclass
class MusicnnOutput(ModelOutput):
    """Outputs of [`MusicnnModel`] for a batch of B log-mel patches.

    Args:
        logits (`(B, num_tags)`): tag logits; `probabilities` is their sigmoid (the musicnn "taggram").
        max_pool (`(B, feature_dim)`): temporal max of the dense mid-end features (753-d): the embedding.
        mean_pool (`(B, feature_dim)`): temporal mean of the same features.
        penultimate (`(B, backend_units)`): the penultimate dense layer (after batch norm).
    """

    logits: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None
    max_pool: torch.Tensor | None = None
    mean_pool: torch.Tensor | None = None
    penultimate: torch.Tensor | None = None


class FrequencyPooledConv(nn.Module):
    """Conv2d over (time, frequency) -> ReLU -> BatchNorm -> max over frequency: `(B, 1, T, F)` -> `(B, C, T)`.
    Time is padded so that T is kept (TensorFlow's 'same' split: the extra frame of an even kernel goes last)."""

    def __init__(self, filters: int, kernel: tuple[int, int], eps: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = nn.BatchNorm2d(filters, eps=eps)
        self.time_pad = ((kernel[0] - 1) // 2, kernel[0] - 1 - (kernel[0] - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, *self.time_pad))
        return self.bn(F.relu(self.conv(x))).amax(dim=3)


class DenseTimeConv(nn.Module):
    """Conv1d over time with kernel 7 ('same') -> ReLU -> BatchNorm: `(B, C_in, T)` -> `(B, C_out, T)`."""

    def __init__(self, in_channels: int, out_channels: int, eps: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 7, padding=3)
        self.bn = nn.BatchNorm1d(out_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class MusicnnPreTrainedModel(PreTrainedModel):
    config_class = MusicnnConfig
    base_model_prefix = "musicnn"
    main_input_name = "input_features"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


class MusicnnModel(MusicnnPreTrainedModel):
    """musicnn (MTT_musicnn / MSD_musicnn shape). Input: `input_features` `(B, T, n_mels)` log-mel patches
    (`log10(10000 * mel + 1)`, see [`MusicnnFeatureExtractor`]); T is 187 for the shipped checkpoints but any
    length works."""

    def __init__(self, config: MusicnnConfig) -> None:
        super().__init__(config)
        eps, n_mels = config.batch_norm_eps, config.n_mels
        self.input_bn = nn.BatchNorm2d(1, eps=eps)
        timbral = [(7, int(0.4 * n_mels)), (7, int(0.7 * n_mels))]
        temporal = [(128, 1), (64, 1), (32, 1)]
        self.frontend = nn.ModuleList(
            [FrequencyPooledConv(config.timbral_filters, k, eps) for k in timbral]
            + [FrequencyPooledConv(config.temporal_filters, k, eps) for k in temporal]
        )
        width = config.midend_filters
        self.midend = nn.ModuleList(
            [DenseTimeConv(config.frontend_dim, width, eps), DenseTimeConv(width, width, eps)]
            + [DenseTimeConv(width, width, eps)]
        )
        self.pool_bn = nn.BatchNorm1d(2 * config.feature_dim, eps=eps)
        self.dense = nn.Linear(2 * config.feature_dim, config.backend_units)
        self.dense_bn = nn.BatchNorm1d(config.backend_units, eps=eps)
        self.classifier = nn.Linear(config.backend_units, len(config.labels))
        self.post_init()

    def features(self, input_features: torch.Tensor) -> torch.Tensor:
        """The dense mid-end features `(B, feature_dim, T)`: front end, then each mid-end layer's output."""
        x = self.input_bn(input_features[:, None])
        front = torch.cat([block(x) for block in self.frontend], dim=1)
        first = self.midend[0](front)
        second = self.midend[1](first) + first
        third = self.midend[2](second) + second
        return torch.cat([front, first, second, third], dim=1)

    def forward(self, input_features: torch.Tensor) -> MusicnnOutput:
        feats = self.features(input_features)
        max_pool, mean_pool = feats.amax(dim=2), feats.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF order: (max_i, mean_i) pairs
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        logits = self.classifier(penultimate)
        return MusicnnOutput(
            logits=logits,
            probabilities=torch.sigmoid(logits),
            max_pool=max_pool,
            mean_pool=mean_pool,
            penultimate=penultimate,
        )
