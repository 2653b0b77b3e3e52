"""The Deep SVDD head: an MLP autoencoder whose encoder half maps embeddings into the hypersphere space.

Follows Ruff et al. (Deep SVDD, ICML 2018) to avoid hypersphere collapse: no bias in any Linear layer and
BatchNorm without affine parameters (a BatchNorm ``beta`` is a bias in disguise). The decoder only exists for
autoencoder pretraining; scoring uses the encoder alone. This module is pure PyTorch so that both the
`PreTrainedModel` and the embedding-level detectors share it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

HEAD_TYPES = ("ae", "residual_ae")
ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


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

    Inputs are standardised with the buffers ``input_mean`` / ``input_std`` (identity until set by training).

    Shapes: ``encode``: (batch, input_dim) -> (batch, hidden_dims[-1]); ``forward`` also returns the
    reconstruction (batch, input_dim) in standardised units.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (512, 256, 128, 64, 32),
        head_type: str = "ae",
        activation: str = "elu",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {head_type!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not hidden_dims:
            raise ValueError("hidden_dims must name at least one layer width")
        dims = [int(input_dim), *(int(d) for d in hidden_dims)]
        self.head_type = head_type
        self.register_buffer("input_mean", torch.zeros(dims[0]))
        self.register_buffer("input_std", torch.ones(dims[0]))
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

    @property
    def latent_dim(self) -> int:
        return self.encoder_out.out_features

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        h = self.standardize(x)
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


def init_center(latents: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Ruff's centre: the mean latent, with coordinates closer than ``eps`` to 0 pushed to ``+-eps``.

    A coordinate of 0 would let a network with no bias map everything onto it trivially.
    """
    c = latents.mean(dim=0)
    c[(c.abs() < eps) & (c < 0)] = -eps
    c[(c.abs() < eps) & (c >= 0)] = eps
    return c
