"""How long a model trains on a pruned subset: the ``pruning.budget``.

- ``epochs``: the configured ``trainer.max_epochs`` over the kept samples (a subset of 10 % takes 10 % of the steps);
- ``steps``: as many optimiser steps as the full training set takes at the configured epochs, i.e. more epochs over
  the subset (a convention of parts of the pruning literature, so that small subsets are not merely under-trained).

Steps are counted as the trainer does with one optimiser and no gradient accumulation: ``ceil(ceil(n / world_size) /
batch_size)`` per epoch (DistributedSampler pads each rank to ``ceil(n / world_size)``; loaders keep the last partial
batch). Learning-rate schedules sized from ``trainer.estimated_stepping_batches`` follow the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BUDGETS = ("epochs", "steps")


def check_budget(budget: str) -> str:
    if budget not in BUDGETS:
        raise ValueError(f"pruning.budget must be one of {list(BUDGETS)}, got {budget!r}.")
    return budget


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    return math.ceil(math.ceil(n / world_size) / batch_size)


@dataclass(frozen=True)
class TrainingLength:
    """``epochs`` and ``steps`` the trainer runs on the kept subset under ``budget``."""

    budget: str
    epochs: int
    steps: int

    def metrics(self) -> dict[str, float]:
        """For ``metrics.json``: the step count and whether it is the full set's (``pruning/step_budget`` 1)."""
        return {
            "pruning/step_budget": float(self.budget == "steps"),
            "pruning/train_epochs": float(self.epochs),
            "pruning/train_steps": float(self.steps),
        }


def training_length(
    budget: str, epochs: int, batch_size: int, n_full: int, n_kept: int, world_size: int = 1
) -> TrainingLength:
    """The training length of ``n_kept`` of ``n_full`` samples at ``epochs`` configured epochs under ``budget``."""
    check_budget(budget)
    if epochs < 1 or batch_size < 1 or not 0 < n_kept <= n_full:
        raise ValueError(
            f"training_length needs epochs, batch_size >= 1 and 0 < n_kept <= n_full, got {epochs}, {batch_size}, "
            f"{n_kept}, {n_full}."
        )
    per_epoch = steps_per_epoch(n_kept, batch_size, world_size)
    if budget == "epochs":
        return TrainingLength(budget, epochs, epochs * per_epoch)
    steps = epochs * steps_per_epoch(n_full, batch_size, world_size)
    return TrainingLength(budget, math.ceil(steps / per_epoch), steps)
