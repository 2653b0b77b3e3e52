"""Ruff's first trainer: autoencoder pretraining of the whole head (reconstruction MSE on the standardised input)."""

from __future__ import annotations

import torch

from .trainer import PhaseTrainer


class AETrainer(PhaseTrainer):
    """Autoencoder pretraining: the whole head, reconstruction MSE."""

    phase = "pretrain"

    def n_epochs(self) -> int:
        return self.config.pretrain_epochs

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.run.model.parameters())

    def lr(self) -> float:
        return self.config.pretrain_lr or self.config.lr

    def batch_loss(self, xb: torch.Tensor) -> torch.Tensor:
        _, recon = self.run.prepared(xb)  # through the prepared module: DDP must see the forward call
        return self.run.model.reconstruction_loss(xb, recon)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.run.model.reconstruction_loss(x)

    def finish(self) -> None:
        self.run.state.update(phase="svdd", epoch=0, best=None, bad_epochs=0, global_epoch=self.config.pretrain_epochs)
