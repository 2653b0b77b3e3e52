"""LoopSVDD: the HTS-AT audio encoder (CLAP's audio tower) and a Deep SVDD head as one `PreTrainedModel`.

Data flows one way: log-mel windows -> HTS-AT pooled embedding (before CLAP's projection, as in the paper) ->
window embeddings fused into one clip embedding -> head latent -> squared distance to the centre = score.
`forward` is the one inference path: the CLI, the demo, the speed benchmark and long-file streaming all call it.
The Deep SVDD maths (score, loss, ensemble scaling) is `svdd_head`'s, shared with the trainer and the detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import ClapAudioModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_loop_svdd import LoopSVDDConfig
from .svdd_head import SVDDAutoencoder, ensemble_loss, ensemble_score
from .time_scoring import loop_time_scores, new_time_scorer, window_time_scores

# Windows per encoder forward: small batches are the fastest on CPU (cache-bound: measured 0.29-0.36 s/window
# at 4 vs 0.35-0.38 s at 16 for HTSAT-base on 2 cores); GPUs want large ones. Either way memory stays bounded.
MAX_WINDOWS_PER_FORWARD = {"cpu": 4}
DEFAULT_MAX_WINDOWS = 64
_SVDD_BUFFERS = ("center", "radius", "score_scale")


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
        # transformers' init functions skip tensors already loaded from a checkpoint (a folder written before the
        # Deep SVDD state became buffers lacks only those: the loaded weights must survive their initialisation).
        if isinstance(module, SVDDAutoencoder):
            for sub in module.modules():
                if isinstance(sub, torch.nn.Linear):
                    init.kaiming_uniform_(sub.weight, a=5**0.5)
            for name in ("input_mean", "center", "radius"):
                init.zeros_(getattr(module, name))
            init.ones_(module.input_std)
            init.ones_(module.score_scale)
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
        # A config.json of an older version carries the Deep SVDD state: move it into the head buffers.
        self._legacy_svdd_state, config.legacy_svdd_state = dict(getattr(config, "legacy_svdd_state", {})), {}
        if self._legacy_svdd_state and self.head.center.device.type != "meta":
            self.set_svdd_state(**self._legacy_svdd_state)

    @staticmethod
    def _new_head(config: LoopSVDDConfig) -> SVDDAutoencoder:
        return SVDDAutoencoder.from_config(config.embedding_dim, config)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any):
        """`PreTrainedModel.from_pretrained`, also for folders written before the centre, radius and score scale
        became head buffers: their `config.json` values are moved into the buffers."""
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        if model._legacy_svdd_state:
            model.set_svdd_state(**model._legacy_svdd_state)
        missing = info.get("missing_keys")
        if missing:  # absent buffers of an old folder are the identity (untrained) or migrated just above
            kept = [k for k in missing if k.rsplit(".", 1)[-1] not in _SVDD_BUFFERS]
            info["missing_keys"] = type(missing)(kept)
        return (model, info) if want_info else model

    @property
    def heads(self) -> list[SVDDAutoencoder]:
        return [self.head, *self.extra_heads]

    # -- Deep SVDD state (head buffers: saved in model.safetensors) -------------------------------------------
    def center_tensor(
        self, index: int = 0, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """`(latent_dim,)` hypersphere centre of head `index` (the origin for an untrained model)."""
        return self.heads[index].center.to(device=device, dtype=dtype)

    def set_svdd_state(
        self,
        center: torch.Tensor | list | None = None,
        radius: float | list[float] | None = None,
        threshold: float | None = None,
        calibration_scores: list[float] | None = None,
        score_scales: list[float] | None = None,
    ) -> None:
        """Store what Deep SVDD training learned: centre(s) `(latent_dim,)` or `(ensemble_size, latent_dim)`,
        radius (or radii) and per-head score scales go into the head buffers; the calibrated threshold and
        held-out normal scores into the config."""
        k = self.config.ensemble_size
        if center is not None:
            if isinstance(center, (list, tuple)) and center and isinstance(center[0], torch.Tensor):
                center = torch.stack(list(center))
            centers = torch.as_tensor(center, dtype=torch.float32)
            centers = centers.reshape(-1, centers.shape[-1]) if centers.ndim else centers.reshape(1, 1)
            if len(centers) != k:
                raise ValueError(f"center holds {len(centers)} centre(s) but ensemble_size is {k}")
            for head, c in zip(self.heads, centers, strict=True):
                head.set_state(center=c)
        if radius is not None:
            radii = [float(radius)] * k if isinstance(radius, (int, float)) else [float(r) for r in radius]
            if len(radii) != k:
                raise ValueError(f"radius holds {len(radii)} value(s) but ensemble_size is {k}")
            for head, r in zip(self.heads, radii, strict=True):
                head.set_state(radius=r)
        if score_scales is not None:
            if len(score_scales) != k:
                raise ValueError(f"score_scales must be {k} positive finite numbers, got {score_scales}")
            for head, v in zip(self.heads, score_scales, strict=True):
                head.set_state(score_scale=v)
        if threshold is not None:
            self.config.threshold = float(threshold)
        if calibration_scores is not None:
            self.config.calibration_scores = sorted(float(s) for s in calibration_scores)
        self.config.validate_fields()

    def load_heads(self, heads: list[SVDDAutoencoder]) -> None:
        """Take over trained heads (weights and Deep SVDD buffers), e.g. a fitted `DeepSVDD` detector's."""
        if len(heads) != len(self.heads):
            raise ValueError(f"got {len(heads)} head(s) for a model with ensemble_size {len(self.heads)}")
        for mine, theirs in zip(self.heads, heads, strict=True):
            mine.load_state_dict(theirs.state_dict())

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
        """`(n, embedding_dim)` -> (`(n,)` anomaly scores, `(n, latent_dim)` latents of the first head): see
        `svdd_head.ensemble_score`."""
        return ensemble_score(self.heads, embeddings)

    def embed_windows(
        self, input_features: torch.Tensor, is_longer: torch.Tensor | None = None, max_windows: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`get_window_embeddings` at most `max_windows` windows at a time (memory bounded whatever the loop
        lengths; the result does not depend on the chunking). Default: 4 on CPU, 64 on accelerators.

        Returns `(num_windows, embedding_dim)` embeddings and, for a model with a memory bank of normal time steps,
        their time scores `(num_windows, steps)` from the same encoder pass (else None)."""
        max_windows = max_windows or MAX_WINDOWS_PER_FORWARD.get(self.device.type, DEFAULT_MAX_WINDOWS)
        chunks, times = [], []
        for i in range(0, len(input_features), max_windows):
            feats = input_features[i : i + max_windows]
            longer = None if is_longer is None else is_longer[i : i + max_windows]
            pooled, time_scores = window_time_scores(self, feats, longer)
            chunks.append(pooled if pooled is not None else self.get_window_embeddings(feats, longer))
            times += [] if time_scores is None else [time_scores]
        return torch.cat(chunks), (torch.cat(times) if times else None)

    def forward(
        self,
        input_features: torch.Tensor,
        is_longer: torch.Tensor | None = None,
        window_clip_index: torch.Tensor | None = None,
        window_start_s: torch.Tensor | None = None,
        clip_duration_s: torch.Tensor | None = None,
        return_loss: bool = False,
        return_dict: bool | None = None,
        max_windows: int | None = None,
    ) -> LoopSVDDOutput | tuple:
        r"""
        Args:
            input_features (`torch.FloatTensor` of shape `(num_windows, 4 or 1, frames, mels)`): from
                [`LoopSVDDFeatureExtractor`].
            is_longer (`torch.BoolTensor` of shape `(num_windows, 1)`, *optional*): fused encoders only.
            window_clip_index (`torch.LongTensor` of shape `(num_windows,)`, *optional*): the loop of each
                window; `None` means one window per loop.
            window_start_s (`torch.FloatTensor` of shape `(num_windows,)`, *optional*): passed through.
            return_loss (`bool`): also return the Deep SVDD objective over the batch
                (`svdd_head.ensemble_loss`: for one head, exactly the loss its trainer minimises).
            clip_duration_s (`torch.FloatTensor` of shape `(batch_size,)`, *optional*): loop lengths, for
                `time_scores` (models with a memory bank).
            max_windows (`int`, *optional*): windows per encoder pass (memory bound); 4 on CPU, 64 otherwise.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        window_embeddings, window_time = self.embed_windows(input_features, is_longer, max_windows)
        embedding = self.pool_windows(window_embeddings, window_clip_index)
        scores, latent = self.score_embeddings(embedding)
        if window_clip_index is None:
            window_scores = scores
            window_clip_index = torch.arange(len(scores), device=scores.device)
        else:
            window_scores = self.score_embeddings(window_embeddings)[0]
        loss = ensemble_loss(self.heads, embedding) if return_loss else None
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


__all__ = ["MAX_WINDOWS_PER_FORWARD", "LoopSVDDModel", "LoopSVDDOutput", "LoopSVDDPreTrainedModel"]
