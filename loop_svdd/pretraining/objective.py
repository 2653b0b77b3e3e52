"""SimCLR's NT-Xent objective (Chen et al., 2020) and the projection MLP it trains through.

Two views of the same loop are pulled together and pushed away from the views of the other loops of the batch.
The projection head is discarded after training: the detector uses the HTS-AT pooled embedding below it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """`Linear -> BatchNorm -> ReLU -> Linear`, embedding -> contrastive space."""

    def __init__(self, input_dim: int, hidden_dim: int = 256, output_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, output_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Normalised-temperature cross-entropy over `2B` views: for each view the positive is the other view of its
    loop, the `2B - 2` others are negatives. `z1`, `z2`: `(B, D)` projections."""
    if z1.shape != z2.shape or z1.ndim != 2 or z1.shape[0] < 2:
        raise ValueError(f"need two (B >= 2, D) batches of the same shape, got {tuple(z1.shape)}, {tuple(z2.shape)}")
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, targets)


@torch.no_grad()
def positive_accuracy(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Fraction of views whose nearest other view is their positive (a readable training signal)."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return float((sim.argmax(dim=1) == targets).float().mean())
