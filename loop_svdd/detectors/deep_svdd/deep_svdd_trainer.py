"""Ruff's second trainer: Deep SVDD on the head's encoder half. The centre ``c`` is Ruff's eps-fixed mean latent
(:func:`svdd_head.init_center_c`), computed once and then fixed; dropout is off; the loss is the head's own
(:meth:`svdd_head.SVDDAutoencoder.svdd_loss`), with the soft-boundary radius (:func:`svdd_head.get_radius`)
updated every epoch after a warm-up. Centre and radius end up in the head's buffers: the head that ships."""

from __future__ import annotations

import torch

from ...models.loop_svdd.svdd_head import get_radius, init_center_c
from .trainer import PhaseTrainer


class DeepSVDDTrainer(PhaseTrainer):
    """Deep SVDD on the head's encoder half: fixed centre, no dropout, the head's own loss."""

    phase = "svdd"

    def n_epochs(self) -> int:
        return self.config.epochs

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.run.model.named_parameters() if n.startswith("encoder_")]

    def lr(self) -> float:
        return self.config.lr

    def start(self) -> None:
        run, model = self.run, self.run.model
        model.set_dropout(0.0)
        if not run.state["center_set"]:
            # Ruff's centre over the training latents, dropout off: computed once, then fixed.
            model.eval()
            with torch.no_grad():
                model.set_state(center=init_center_c(model.encode(run.x_train), self.config.eps))
            run.state.update(center_set=True, epoch=0, best=None, bad_epochs=0)

    def batch_loss(self, xb: torch.Tensor) -> torch.Tensor:
        run, model = self.run, self.run.model
        if run.prepared is model:
            return model.svdd_loss(model.distance(xb))
        latent, recon = run.prepared(xb)
        # DDP: the decoder takes no part in this phase but must be in the graph
        return model.svdd_loss(model.distance(xb, latent)) + 0.0 * recon.sum()

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.run.model.svdd_loss(self.run.model.distance(x))

    def after_epoch(self) -> None:
        run, cfg = self.run, self.config
        if cfg.objective == "soft-boundary" and run.state["epoch"] >= cfg.warmup_epochs:
            run.model.eval()
            with torch.no_grad():
                run.state["radius"] = get_radius(run.model.distance(run.x_train), cfg.nu)
            run.model.set_state(radius=run.state["radius"])

    def finish(self) -> None:
        cfg = self.config
        radius = self.run.state["best_radius"] if cfg.objective == "soft-boundary" else 0.0
        self.run.state.update(done=True, radius=radius, global_epoch=cfg.pretrain_epochs + cfg.epochs)
