"""Per-step learning-rate schedules sized from the number of optimiser steps the trainer will run.

A scheduler factory (a Hydra ``_partial_`` such as ``conf/model/pruned_classifier.yaml``'s) that takes a
``total_steps`` argument is a *step schedule*: :func:`lightning_scheduler` builds it with
``trainer.estimated_stepping_batches`` at ``configure_optimizers`` time and has Lightning step it after every
optimiser step, so the schedule spans exactly what the trainer runs, whether that is bounded by
``trainer.max_epochs`` or ``trainer.max_steps``. Any other factory (e.g. ``CosineAnnealingLR`` with ``T_max`` in
epochs) is stepped once per epoch, as before.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR


def one_cycle(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1.0e4,
    cycle_momentum: bool = True,
) -> OneCycleLR:
    """:class:`torch.optim.lr_scheduler.OneCycleLR` peaking at the optimiser's own ``lr`` (so the config has one
    learning rate): warm up from ``lr / div_factor`` over ``pct_start`` of the steps, cosine down to
    ``lr / (div_factor * final_div_factor)``; momentum cycles inversely (0.95 -> 0.85 -> 0.95) when the optimiser
    has one and ``cycle_momentum``."""
    max_lr = [group["lr"] for group in optimizer.param_groups]
    has_momentum = any(group.get("momentum", 0.0) > 0 or "betas" in group for group in optimizer.param_groups)
    total_steps = max(int(total_steps), 2)
    # OneCycleLR divides by (warm-up steps - 1) and by the steps after the warm-up: keep the warm-up in [1.5, T - 0.5]
    warmup = min(max(pct_start * total_steps, 1.5), total_steps - 0.5)
    return OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total_steps,
        pct_start=warmup / total_steps,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=cycle_momentum and has_momentum,
    )


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float = 0.05, final_fraction: float = 0.0
) -> LambdaLR:
    """Linear warm-up from 0 to the optimiser's ``lr`` over ``warmup_fraction`` of the steps, then cosine decay
    to ``final_fraction * lr`` at the last step."""
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_cosine: warmup_fraction must be in [0, 1), got {warmup_fraction}.")
    total = max(int(total_steps), 1)
    warmup = round(warmup_fraction * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def is_step_schedule(factory: Callable[..., Any]) -> bool:
    """Whether ``factory`` still needs a ``total_steps`` argument (a per-step schedule)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "total_steps" in params


def lightning_scheduler(
    factory: Callable[..., LRScheduler], optimizer: torch.optim.Optimizer, total_steps: int | float
) -> dict[str, Any]:
    """The ``lr_scheduler`` entry of ``configure_optimizers``: a step schedule over ``total_steps`` stepped per
    optimiser step, or any other scheduler stepped per epoch."""
    if is_step_schedule(factory):
        if not math.isfinite(total_steps) or total_steps < 1:
            raise ValueError(
                f"A per-step LR schedule needs a finite number of training steps, got {total_steps}: set "
                "trainer.max_epochs or trainer.max_steps (or model.scheduler=null)."
            )
        return {"scheduler": factory(optimizer=optimizer, total_steps=int(total_steps)), "interval": "step"}
    return {"scheduler": factory(optimizer=optimizer), "interval": "epoch"}


def optimizers_config(
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    scheduler_factory: Callable[..., LRScheduler] | None,
    params: Any,
    total_steps: int | float,
) -> Any:
    """What ``configure_optimizers`` returns for one optimiser over ``params`` and an optional schedule (sized by
    :func:`lightning_scheduler`); ``total_steps`` is the trainer's ``estimated_stepping_batches``."""
    optimizer = optimizer_factory(params=params)
    if scheduler_factory is None:
        return optimizer
    return {"optimizer": optimizer, "lr_scheduler": lightning_scheduler(scheduler_factory, optimizer, total_steps)}
