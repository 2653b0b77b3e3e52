"""LoopSVDD: the HTS-AT audio encoder (CLAP's audio tower) and a Deep SVDD head as one `PreTrainedModel`.

Data flows one way: log-mel windows -> HTS-AT pooled embedding (before CLAP's projection, as in the paper) ->
window embeddings fused into one clip embedding -> head latent -> squared distance to the centre = score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import ClapAudioModel, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_loop_svdd import LoopSVDDConfig
from .localisation import loop_time_scores, new_time_scorer, window_time_scores
from .svdd_head import SVDDAutoencoder


@dataclass
class LoopSVDDOutput(ModelOutput):
    """Output of [`LoopSVDDModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): the Deep SVDD objective, when `return_loss=True`.
        anomaly_score (`torch.FloatTensor` of shape `(batch_size,)`): squared distance of each loop's latent to
            the centre (minus R^2 for soft-boundary); higher = more anomalous.
        embedding (`torch.FloatTensor` of shape `(batch_size, embedding_dim)`): clip embeddings (window mean).
        latent (`torch.FloatTensor` of shape `(batch_size, latent_dim)`): clip latents in the hypersphere space.
        window_scores (`torch.FloatTensor` of shape `(num_windows,)`): one score per 10 s window, to see which
            part of a long loop is anomalous (fused encoders: one window per loop).
        window_embeddings (`torch.FloatTensor` of shape `(num_windows, embedding_dim)`).
        window_clip_index (`torch.LongTensor` of shape `(num_windows,)`): the loop of each window.
        window_start_s (`torch.FloatTensor` of shape `(num_windows,)`, *optional*): window offsets in seconds.
        time_scores (`list[torch.FloatTensor]`, *optional*): per loop, one score per time step on the loop's own
            timeline (repeated copies of a short loop folded back); `None` for a model without a memory bank or
            without `clip_duration_s`.
        time_scores_s (`list[torch.FloatTensor]`, *optional*): per loop, the centre time (s) of each step.
    """

    loss: torch.FloatTensor | None = None
    anomaly_score: torch.FloatTensor | None = None
    embedding: torch.FloatTensor | None = None
    latent: torch.FloatTensor | None = None
    window_scores: torch.FloatTensor | None = None
    window_embeddings: torch.FloatTensor | None = None
    window_clip_index: torch.LongTensor | None = None
    window_start_s: torch.FloatTensor | None = None
    time_scores: list[torch.FloatTensor] | None = None
    time_scores_s: list[torch.FloatTensor] | None = None


class LoopSVDDPreTrainedModel(PreTrainedModel):
    config_class = LoopSVDDConfig
    base_model_prefix = "loop_svdd"
    main_input_name = "input_features"
    supports_gradient_checkpointing = False

    def _init_weights(self, module: torch.nn.Module) -> None:
        if isinstance(module, SVDDAutoencoder):
            for sub in module.modules():
                if isinstance(sub, torch.nn.Linear):
                    torch.nn.init.kaiming_uniform_(sub.weight, a=5**0.5)
            module.input_mean.zero_()
            module.input_std.fill_(1.0)
        elif isinstance(module, torch.nn.BatchNorm1d):
            module.reset_running_stats()


class LoopSVDDModel(LoopSVDDPreTrainedModel):
    r"""HTS-AT encoder + Deep SVDD head. A freshly initialised model scores too (centre at the origin of the
    latent space until training sets one), so smoke runs need no training.

    Example:

    ```python
    >>> from loop_svdd import LoopSVDDConfig, LoopSVDDModel, LoopSVDDFeatureExtractor
    >>> config = LoopSVDDConfig.from_htsat_size("tiny")
    >>> model = LoopSVDDModel(config).eval()
    >>> extractor = LoopSVDDFeatureExtractor.from_model_config(config)
    >>> inputs = extractor([loop_3s, loop_25s], sampling_rate=48000)
    >>> model(**inputs).anomaly_score.shape
    torch.Size([2])
    ```
    """

    def __init__(self, config: LoopSVDDConfig) -> None:
        super().__init__(config)
        self.encoder = ClapAudioModel(config.audio_config)
        self.head = self._new_head(config)
        # Heads 2..k of an ensemble (empty for a single head, so single-head checkpoints are unchanged).
        self.extra_heads = torch.nn.ModuleList(self._new_head(config) for _ in range(config.ensemble_size - 1))
        self.time_scorer = new_time_scorer(config)  # memory bank of normal time steps, or None
        self.post_init()

    @staticmethod
    def _new_head(config: LoopSVDDConfig) -> SVDDAutoencoder:
        return SVDDAutoencoder(
            input_dim=config.embedding_dim,
            hidden_dims=config.hidden_dims,
            head_type=config.head_type,
            activation=config.activation,
            dropout=config.dropout,
        )

    @property
    def heads(self) -> list[SVDDAutoencoder]:
        return [self.head, *self.extra_heads]

    # -- Deep SVDD state (lives in the config so it is readable JSON) ---------------------------------------
    def center_tensor(
        self, index: int = 0, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """`(latent_dim,)` hypersphere centre of head `index` (the origin for an untrained model)."""
        centers = self.config.centers()
        if not centers:
            return torch.zeros(self.config.latent_dim, device=device, dtype=dtype)
        return torch.tensor(centers[index], device=device, dtype=dtype)

    def set_svdd_state(
        self,
        center: torch.Tensor | list,
        radius: float | list[float] = 0.0,
        threshold: float | None = None,
        calibration_scores: list[float] | None = None,
        score_scales: list[float] | None = None,
    ) -> None:
        """Store what Deep SVDD training learned: centre(s) `(latent_dim,)` or `(ensemble_size, latent_dim)`,
        radius (or radii), per-head score scales, the calibrated threshold and held-out normal scores."""
        if isinstance(center, (list, tuple)) and center and isinstance(center[0], torch.Tensor):
            center = torch.stack(list(center))
        centers = torch.as_tensor(center, dtype=torch.float64).reshape(-1, self.config.latent_dim).tolist()
        self.config.center = centers[0] if self.config.ensemble_size == 1 else centers
        radii = [float(radius)] if isinstance(radius, (int, float)) else [float(r) for r in radius]
        self.config.radius = radii[0] if self.config.ensemble_size == 1 else radii
        if score_scales is not None:
            self.config.score_scales = [float(v) for v in score_scales]
        if threshold is not None:
            self.config.threshold = float(threshold)
        if calibration_scores is not None:
            self.config.calibration_scores = sorted(float(s) for s in calibration_scores)
        self.config.validate_fields()

    # -- the pipeline ---------------------------------------------------------------------------------------
    def _check_inputs(self, input_features: torch.Tensor) -> None:
        channels = 4 if self.config.is_fused else 1
        if input_features.ndim != 4 or input_features.shape[1] != channels:
            kind = "a fused (4-view)" if self.config.is_fused else "an unfused (1-view, windowed)"
            raise ValueError(
                f"this model has {kind} encoder and expects input_features of shape (windows, {channels}, frames, "
                f"mels), got {tuple(input_features.shape)}; use LoopSVDDFeatureExtractor.from_model_config(config)"
            )
        if input_features.shape[-1] != self.config.audio_config.num_mel_bins:
            raise ValueError(
                f"input_features have {input_features.shape[-1]} mel bins, the encoder expects "
                f"{self.config.audio_config.num_mel_bins}"
            )

    def get_window_embeddings(
        self, input_features: torch.Tensor, is_longer: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`(num_windows, C, frames, mels)` -> `(num_windows, embedding_dim)` HTS-AT pooled embeddings."""
        self._check_inputs(input_features)
        if self.config.is_fused and is_longer is None:
            # Never guess at random (transformers marks a random clip as longer): derive it from the views.
            is_longer = ~(input_features == input_features[:, :1]).flatten(1).all(dim=1, keepdim=True)
        input_features = input_features.to(dtype=self.encoder.dtype)
        out = self.encoder(input_features=input_features, is_longer=is_longer)
        return out.pooler_output

    def pool_windows(self, window_embeddings: torch.Tensor, window_clip_index: torch.Tensor | None) -> torch.Tensor:
        """Fuse window embeddings into clip embeddings: `(num_windows, D)` -> `(batch_size, D)` (mean)."""
        if window_clip_index is None:
            return window_embeddings
        window_clip_index = window_clip_index.to(window_embeddings.device)
        num_clips = int(window_clip_index.max()) + 1
        sums = torch.zeros(
            num_clips,
            window_embeddings.shape[1],
            device=window_embeddings.device,
            dtype=window_embeddings.dtype,
        )
        sums.index_add_(0, window_clip_index, window_embeddings)
        counts = torch.bincount(window_clip_index, minlength=num_clips).clamp_min(1).to(sums.dtype)
        return sums / counts[:, None]

    def get_audio_embeddings(
        self,
        input_features: torch.Tensor,
        is_longer: torch.Tensor | None = None,
        window_clip_index: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Clip embeddings alone: `(batch_size, embedding_dim)`."""
        return self.pool_windows(self.get_window_embeddings(input_features, is_longer), window_clip_index)

    def score_embeddings(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(n, embedding_dim)` -> (`(n,)` anomaly scores, `(n, latent_dim)` latents of the first head).

        A head's score is the squared distance of its latent to its centre (minus R^2 for soft-boundary); an
        ensemble scores the mean over heads of each head's score divided by its scale.
        """
        embeddings = embeddings.to(self.head.input_mean.dtype)
        if self.config.l2_normalize:
            embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
        radii = self.config.radii()
        scales = self.config.score_scales or [1.0] * self.config.ensemble_size
        total, first_latent = 0.0, None
        for i, head in enumerate(self.heads):
            latent = head.encode(embeddings)
            dist = (latent - self.center_tensor(i, latent.device, latent.dtype)).square().sum(dim=-1)
            if self.config.objective == "soft-boundary":
                dist = dist - radii[i] ** 2
            total = total + dist / scales[i]
            first_latent = latent if first_latent is None else first_latent
        return total / len(self.heads), first_latent

    def forward(
        self,
        input_features: torch.Tensor,
        is_longer: torch.Tensor | None = None,
        window_clip_index: torch.Tensor | None = None,
        window_start_s: torch.Tensor | None = None,
        clip_duration_s: torch.Tensor | None = None,
        return_loss: bool = False,
        return_dict: bool | None = None,
    ) -> LoopSVDDOutput | tuple:
        r"""
        Args:
            input_features (`torch.FloatTensor` of shape `(num_windows, 4 or 1, frames, mels)`): from
                [`LoopSVDDFeatureExtractor`].
            is_longer (`torch.BoolTensor` of shape `(num_windows, 1)`, *optional*): fused encoders only.
            window_clip_index (`torch.LongTensor` of shape `(num_windows,)`, *optional*): the loop of each
                window; `None` means one window per loop.
            window_start_s (`torch.FloatTensor` of shape `(num_windows,)`, *optional*): passed through.
            clip_duration_s (`torch.FloatTensor` of shape `(batch_size,)`, *optional*): loop lengths, for
                `time_scores` (models with a memory bank).
            return_loss (`bool`): also return the Deep SVDD objective over the batch.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        window_embeddings, window_time = window_time_scores(self, input_features, is_longer)
        if window_embeddings is None:
            window_embeddings = self.get_window_embeddings(input_features, is_longer)
        embedding = self.pool_windows(window_embeddings, window_clip_index)
        scores, latent = self.score_embeddings(embedding)
        if window_clip_index is None:
            window_scores = scores
            window_clip_index = torch.arange(len(scores), device=scores.device)
        else:
            window_scores = self.score_embeddings(window_embeddings)[0]
        loss = None
        if return_loss:
            if self.config.objective == "soft-boundary":
                loss = self.config.radii()[0] ** 2 + torch.relu(scores).mean() / self.config.nu
            else:
                loss = scores.mean()
        time_scores, time_scores_s = loop_time_scores(
            self, window_time, window_clip_index, window_start_s, clip_duration_s
        )
        output = LoopSVDDOutput(
            loss=loss,
            anomaly_score=scores,
            embedding=embedding,
            latent=latent,
            window_scores=window_scores,
            window_embeddings=window_embeddings,
            window_clip_index=window_clip_index,
            window_start_s=window_start_s,
            time_scores=time_scores,
            time_scores_s=time_scores_s,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["LoopSVDDModel", "LoopSVDDOutput", "LoopSVDDPreTrainedModel"]
