"""Timing helpers of the ``scripts/bench_*.py`` benchmarks: a wall-clock call, a per-training-step callback and the
median training step of a fresh trainer."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class StepTimer(pl.Callback):
    """Wall time of every training step (``training_step`` with its optimiser steps) after the first, which warms
    up (allocations, lazy inits)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.start = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, idx: int) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, out: Any, batch: Any, idx: int
    ) -> None:
        if idx > 0:
            self.times.append(time.perf_counter() - self.start)


def median_step_seconds(model: pl.LightningModule, loader: DataLoader) -> float:
    """Median seconds of a training step of ``model`` over one epoch of ``loader`` (the first step excluded) under a
    fresh CPU trainer without logging, checkpoints or validation."""
    timer = StepTimer()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, callbacks=[timer],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, train_dataloaders=loader)
    return statistics.median(timer.times)
