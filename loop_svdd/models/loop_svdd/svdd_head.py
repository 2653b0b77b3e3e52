"""Deep SVDD in one place: the head (a bias-free MLP autoencoder) and everything the method computes with it.

Follows Ruff et al. (Deep SVDD, ICML 2018; lukasruff/Deep-SVDD-PyTorch) to avoid hypersphere collapse: no bias in
any Linear layer and BatchNorm without affine parameters (a BatchNorm ``beta`` is a bias in disguise). The decoder
only exists for autoencoder pretraining. Each head carries what training learned as buffers (saved with its
weights): the input standardisation, the hypersphere ``center``, the soft-boundary ``radius`` and the ensemble
``score_scale``. Scoring, the loss, the centre (`init_center_c`), the radius (`get_radius`) and the ensemble's
median scaling (`ensemble_scale`, `ensemble_score`) live here and nowhere else: the trainers and the detector
(`loop_svdd.detectors.deep_svdd`) and the `PreTrainedModel` all call them. Pure PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

HEAD_TYPES = ("ae", "residual_ae")
OBJECTIVES = ("one-class", "soft-boundary")
ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass
class HeadConfig:
    """The head's shape and objective: the one source of these fields and their defaults, shared by
    `LoopSVDDConfig` (what ships) and `SVDDTrainingConfig` (what trains it). Defaults are the `tuned` preset
    (see `loop_svdd.detectors.deep_svdd.PRESETS`)."""

    head_type: str = "ae"
    hidden_dims: list[int] = field(default_factory=lambda: [512, 256])
    activation: str = "elu"
    dropout: float = 0.2
    objective: str = "one-class"
    nu: float = 0.1
    l2_normalize: bool = True

    def __post_init__(self) -> None:
        self.hidden_dims = [int(d) for d in self.hidden_dims]
        self.dropout, self.nu, self.l2_normalize = float(self.dropout), float(self.nu), bool(self.l2_normalize)
        if self.head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {self.head_type!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not self.hidden_dims or any(d < 1 for d in self.hidden_dims):
            raise ValueError(f"hidden_dims must be a non-empty list of positive widths, got {self.hidden_dims}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.nu <= 1.0:
            raise ValueError(f"nu must be in (0, 1], got {self.nu}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(HeadConfig)]

    @classmethod
    def of(cls, obj: Any) -> HeadConfig:
        """The head fields of any object carrying them (a `LoopSVDDConfig`, an `SVDDTrainingConfig`)."""
        return HeadConfig(**{name: getattr(obj, name) for name in cls.field_names()})

    def head_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HeadConfig.field_names()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DEFAULTS = HeadConfig()  # the head's defaults, written once (the fields above)


def _block(in_dim: int, out_dim: int, activation: str, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, out_dim, bias=False),
        nn.BatchNorm1d(out_dim, eps=1e-4, affine=False),
        ACTIVATIONS[activation](),
        nn.Dropout(dropout),
    )


class SVDDAutoencoder(nn.Module):
    """Bias-free MLP autoencoder ``input_dim -> hidden_dims[0] -> ... -> hidden_dims[-1]`` and back.

    With ``head_type="residual_ae"`` each decoder level adds the activation of the mirrored encoder level
    (U-Net-style skips, the paper's "AEwRES").

    Inputs are L2-normalised (``l2_normalize``) then standardised with the buffers ``input_mean`` / ``input_std``
    (identity until set by training). ``objective`` and ``nu`` select the Deep SVDD score and loss. Every shape
    argument defaults to :class:`HeadConfig`'s (L2 normalisation included: on, as in the ``tuned`` preset).

    Shapes: ``encode``: (batch, input_dim) -> (batch, hidden_dims[-1]); ``forward`` also returns the
    reconstruction (batch, input_dim) in standardised units.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = tuple(_DEFAULTS.hidden_dims),
        head_type: str = _DEFAULTS.head_type,
        activation: str = _DEFAULTS.activation,
        dropout: float = _DEFAULTS.dropout,
        objective: str = _DEFAULTS.objective,
        nu: float = _DEFAULTS.nu,
        l2_normalize: bool = _DEFAULTS.l2_normalize,
    ) -> None:
        super().__init__()
        if head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {head_type!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if not hidden_dims:
            raise ValueError("hidden_dims must name at least one layer width")
        dims = [int(input_dim), *(int(d) for d in hidden_dims)]
        self.head_type, self.objective, self.nu, self.l2_normalize = head_type, objective, float(nu), bool(l2_normalize)
        self.register_buffer("input_mean", torch.zeros(dims[0]))
        self.register_buffer("input_std", torch.ones(dims[0]))
        # What Deep SVDD training learns besides the weights (identity values until then).
        self.register_buffer("center", torch.zeros(dims[-1]))
        self.register_buffer("radius", torch.zeros(()))
        self.register_buffer("score_scale", torch.ones(()))
        # Encoder: every level but the last is Linear -> BN(affine=False) -> act -> dropout; the last is Linear.
        self.encoder_blocks = nn.ModuleList(
            _block(dims[i], dims[i + 1], activation, dropout) for i in range(len(dims) - 2)
        )
        self.encoder_out = nn.Linear(dims[-2], dims[-1], bias=False)
        # Decoder mirrors the encoder; its last layer is linear (reconstructs standardised inputs).
        rev = dims[::-1]
        self.decoder_blocks = nn.ModuleList(
            _block(rev[i], rev[i + 1], activation, dropout) for i in range(len(rev) - 2)
        )
        self.decoder_out = nn.Linear(rev[-2], rev[-1], bias=False)

    @classmethod
    def from_config(cls, input_dim: int, config: Any) -> SVDDAutoencoder:
        """A head shaped by the `HeadConfig` fields of `config`."""
        return cls(input_dim, **HeadConfig.of(config).head_kwargs())

    @property
    def latent_dim(self) -> int:
        return self.encoder_out.out_features

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """What the network sees (and the autoencoder reconstructs): L2-normalised if set, then standardised."""
        if self.l2_normalize:
            x = l2_normalize(x)
        return (x - self.input_mean) / self.input_std

    def fit_standardization(self, x: torch.Tensor) -> None:
        """Set ``input_mean`` / ``input_std`` from training rows ``x`` (raw embeddings)."""
        x = l2_normalize(x) if self.l2_normalize else x
        std = x.std(0) if len(x) > 1 else torch.ones(x.shape[1], device=x.device)
        self.input_mean.copy_(x.mean(0))
        self.input_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        h = self.standardize(x.to(self.input_mean.dtype))
        for block in self.encoder_blocks:
            h = block(h)
            skips.append(h)
        return self.encoder_out(h), skips

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, input_dim) embeddings -> (batch, latent_dim) latents."""
        return self._encode(x)[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(latent, reconstruction)``; the reconstruction targets ``standardize(x)``."""
        latent, skips = self._encode(x)
        h = latent
        for i, block in enumerate(self.decoder_blocks):
            h = block(h)
            if self.head_type == "residual_ae":
                h = h + skips[-(i + 1)]
        return latent, self.decoder_out(h)

    def set_dropout(self, p: float) -> None:
        """Deep SVDD trains without dropout (a stochastic map cannot be a fixed hypersphere)."""
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p

    # -- Deep SVDD ------------------------------------------------------------------------------------------
    def distance(self, x: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """Squared distance of each row's latent to ``center``: (batch, input_dim) -> (batch,)."""
        latent = self.encode(x) if latent is None else latent
        return (latent - self.center).square().sum(dim=-1)

    def score(self, x: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """Raw anomaly score (higher = more abnormal): ``dist``, minus ``R^2`` for soft-boundary."""
        dist = self.distance(x, latent)
        return dist - self.radius.square() if self.objective == "soft-boundary" else dist

    def svdd_loss(self, dist: torch.Tensor) -> torch.Tensor:
        """Ruff's objective over a batch of squared distances: their mean (one-class), or
        ``R^2 + mean(max(0, dist - R^2)) / nu`` (soft-boundary)."""
        if self.objective == "soft-boundary":
            r2 = self.radius.square()
            return r2 + torch.clamp(dist - r2, min=0).mean() / self.nu
        return dist.mean()

    def reconstruction_loss(self, x: torch.Tensor, recon: torch.Tensor | None = None) -> torch.Tensor:
        """Autoencoder pretraining loss: MSE against the standardised input."""
        recon = self(x)[1] if recon is None else recon
        return (recon - self.standardize(x)).square().mean()

    def set_state(self, center=None, radius: float | None = None, score_scale: float | None = None) -> None:
        """Write the learned Deep SVDD state into the buffers (validated: finite, radius >= 0, scale > 0)."""
        with torch.no_grad():
            if center is not None:
                c = torch.as_tensor(center, dtype=self.center.dtype).reshape(-1)
                if c.numel() != self.center.numel():
                    raise ValueError(
                        f"center has {c.numel()} coordinates but the head's latent size is {self.center.numel()}"
                    )
                if not torch.isfinite(c).all():
                    raise ValueError("center contains NaN or infinite values")
                self.center.copy_(c.to(self.center.device))
            if radius is not None:
                if not (math.isfinite(float(radius)) and float(radius) >= 0):
                    raise ValueError(f"radius must be a finite number >= 0, got {radius}")
                self.radius.fill_(float(radius))
            if score_scale is not None:
                if not (math.isfinite(float(score_scale)) and float(score_scale) > 0):
                    raise ValueError(f"score_scale must be a positive finite number, got {score_scale}")
                self.score_scale.fill_(float(score_scale))


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def init_center_c(latents: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Ruff's centre: the mean latent, with coordinates closer than ``eps`` to 0 pushed to ``+-eps``.

    A coordinate of 0 would let a network with no bias map everything onto it trivially.
    """
    c = latents.mean(dim=0)
    c[(c.abs() < eps) & (c < 0)] = -eps
    c[(c.abs() < eps) & (c >= 0)] = eps
    return c


init_center = init_center_c  # the name used before the Deep SVDD core moved here


def get_radius(dist: torch.Tensor, nu: float) -> float:
    """Ruff's soft-boundary radius: the (1 - nu)-quantile of the distances ``sqrt(dist)``."""
    return float(torch.quantile(dist.detach().sqrt().double(), 1.0 - nu))


def ensemble_scale(scores: torch.Tensor) -> float:
    """A head's ensemble divisor: the median absolute raw score on its training rows."""
    return float(max(float(scores.detach().abs().double().median()), 1e-12))


def ensemble_score(heads: Sequence[SVDDAutoencoder], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's score of ``x`` (n, input_dim): the mean over heads of each raw score divided by its
    ``score_scale``. Returns ``(scores (n,), latents of the first head (n, latent_dim))``."""
    latents = [head.encode(x) for head in heads]
    total = sum(head.score(x, z) / head.score_scale for head, z in zip(heads, latents, strict=True))
    return total / len(heads), latents[0]


def ensemble_loss(heads: Sequence[SVDDAutoencoder], x: torch.Tensor) -> torch.Tensor:
    """The ensemble's Deep SVDD objective: the mean over heads of each head's loss divided by its
    ``score_scale`` (for one head with scale 1, exactly the loss its trainer minimises)."""
    return sum(head.svdd_loss(head.distance(x)) / head.score_scale for head in heads) / len(heads)


@torch.no_grad()
def score_array(heads: Sequence[SVDDAutoencoder], embeddings, batch_size: int = 1024) -> torch.Tensor:
    """``ensemble_score`` of a (n, input_dim) array in eval mode, batch by batch (float64 on the CPU)."""
    x = torch.as_tensor(embeddings, dtype=torch.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {tuple(x.shape)}")
    modes = [h.training for h in heads]
    for h in heads:
        h.eval()
    device = heads[0].center.device
    out = [ensemble_score(heads, x[i : i + batch_size].to(device))[0].cpu() for i in range(0, len(x), batch_size)]
    for h, mode in zip(heads, modes, strict=True):
        h.train(mode)
    return torch.cat(out).double() if out else torch.zeros(0, dtype=torch.float64)
