"""Top-k sampler: keep the highest-score (``keep="hard"``) or lowest-score (``keep="easy"``) samples,
over the whole set or per class (``class_balanced``: budgets proportional to class sizes)."""

from __future__ import annotations

import numpy as np

from biobench.pruning.samplers.base import Sampler, class_budgets


class TopKSampler(Sampler):
    def __init__(self, keep: str = "hard", class_balanced: bool = False) -> None:
        if keep not in ("hard", "easy"):
            raise ValueError(f"pruning.sampler.keep must be 'hard' or 'easy', got '{keep}'.")
        self.keep = keep
        self.class_balanced = class_balanced

    def _order(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Indices from most to least wanted; ties are broken at random (seeded)."""
        key = -scores if self.keep == "hard" else scores
        return np.lexsort((rng.random(len(scores)), key))

    def __call__(self, scores: np.ndarray, labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
        order = self._order(np.asarray(scores, dtype=np.float64), rng)
        if not self.class_balanced:
            return order[:budget]
        classes, sizes = np.unique(labels, return_counts=True)
        quota = np.zeros(classes.max() + 1, dtype=np.int64)
        quota[classes] = class_budgets(sizes, sizes, budget)
        ordered_labels = labels[order]
        # rank of each sample within its class, in wanted order
        rank = np.empty(len(order), dtype=np.int64)
        for c in classes:
            members = ordered_labels == c
            rank[members] = np.arange(members.sum())
        keep = rank < quota[ordered_labels]
        return order[keep]
