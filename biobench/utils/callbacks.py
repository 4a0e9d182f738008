"""Small Lightning callbacks used by the entrypoints and the default callback config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch


class ReseedEachEpoch(pl.Callback):
    """Reseed torch's global RNG from (seed, epoch) at every training epoch start.

    Augmentations and dropout then draw the same numbers in a resumed run as in an uninterrupted one,
    so ``ckpt_path=last.ckpt`` reproduces the uninterrupted result exactly on CPU.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.manual_seed(self.seed * 1_000_003 + trainer.current_epoch + 7 * trainer.global_rank)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the run failed (its results must not be used)."""


class StopOnNonFiniteLoss(pl.Callback):
    """Fail the run at the first training batch whose loss (every ``*loss*`` tensor a training step returns) is not
    finite, with a message saying when it happened and what to try; the entrypoints always add it. Under DDP the
    ranks agree first (one boolean all-reduce), so all of them stop at the same batch instead of one rank leaving
    the others waiting in the next gradient all-reduce."""

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        losses = outputs if isinstance(outputs, Mapping) else {"loss": outputs}
        bad = {
            name: value.detach().float().sum().item()
            for name, value in losses.items()
            if "loss" in name and isinstance(value, torch.Tensor) and not torch.isfinite(value.detach()).all()
        }
        if not trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            return
        what = ", ".join(f"{name} became {value}" for name, value in bad.items()) or "loss of another rank blew up"
        raise NonFiniteLossError(
            f"The training {what} at epoch {trainer.current_epoch}, batch {batch_idx} (global step "
            f"{trainer.global_step}). The run is stopped as failed. Try a lower learning rate (the model's optimizer "
            "lr), gradient clipping (trainer.gradient_clip_val=1.0 with automatic optimisation), or "
            "trainer.precision=32-true."
        )
