"""Timing helpers of the ``scripts/bench_*.py`` benchmarks: a wall-clock call and a per-training-step callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl


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
