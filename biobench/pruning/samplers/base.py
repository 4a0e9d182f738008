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
    weights = np.where(sizes > 0, np.maximum(np.asarray(weights, dtype=np.float64), 0.0), 0.0)
    if budget > sizes.sum():
        raise ValueError(f"budget {budget} exceeds the {sizes.sum()} available samples.")
    floor = np.minimum(sizes, min_per_class) if budget >= np.minimum(sizes, min_per_class).sum() else 0 * sizes
    alloc = floor.copy()
    while (left := budget - alloc.sum()) > 0:
        room = sizes - alloc
        w = np.where(room > 0, weights if weights[room > 0].sum() > 0 else (room > 0).astype(float), 0.0)
        share = w / w.sum() * left
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:  # hand out the remainder one by one, largest fractional share first
            order = np.argsort(-(share - np.floor(share)), kind="stable")
            order = order[room[order] > 0][:left]
            add = np.zeros_like(alloc)
            add[order] = 1
        alloc += add
    return alloc
