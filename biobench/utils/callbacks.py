"""Small Lightning callbacks used by the default callback config."""

from __future__ import annotations

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
