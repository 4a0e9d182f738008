"""The sampler interface and exact per-class budget allocation."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Sampler(ABC):
    """Chooses exactly ``budget`` sample indices from per-sample scores."""

    @abstractmethod
    def __call__(self, scores: np.ndarray, labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
        """Return ``budget`` distinct indices into ``scores`` (any order)."""


def class_budgets(weights: np.ndarray, sizes: np.ndarray, budget: int, min_per_class: int = 1) -> np.ndarray:
    """Split ``budget`` over classes in proportion to ``weights`` (largest remainder), capped by class ``sizes``.

    Every non-empty class gets at least ``min_per_class`` when the budget allows it. The result sums to
    exactly ``budget`` (``budget <= sizes.sum()``).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if budget > sizes.sum():
        raise ValueError(f"budget {budget} exceeds the {sizes.sum()} available samples.")
    weights = np.where(sizes > 0, np.maximum(np.asarray(weights, dtype=np.float64), 0.0), 0.0)
    if weights.sum() == 0:
        weights = (sizes > 0).astype(np.float64)
    floor = np.minimum(sizes, min_per_class)
    if floor.sum() > budget:
        floor = np.zeros_like(sizes)
    ideal = weights / weights.sum() * budget
    alloc = np.clip(np.floor(ideal).astype(np.int64), floor, sizes)
    while (diff := budget - int(alloc.sum())) != 0:
        gap = ideal - alloc  # > 0: the class is owed samples; ties go to the larger class
        if diff > 0:
            room = alloc < sizes
            order = np.lexsort((-ideal, -np.where(room, gap, -np.inf)))[: min(diff, int(room.sum()))]
            alloc[order] += 1
        else:
            spare = alloc > floor
            order = np.lexsort((-ideal, np.where(spare, gap, np.inf)))[: min(-diff, int(spare.sum()))]
            alloc[order] -= 1
    return alloc
