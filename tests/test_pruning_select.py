"""Pruning spine: exact budgets, class constraints, determinism, direction conventions."""

from __future__ import annotations

import numpy as np
import pytest

from biobench.pruning import Pruner, keep_count
from biobench.pruning.samplers import TopKSampler, class_budgets
from biobench.pruning.scores import RandomScore


def test_class_budgets_are_exact_proportional_and_nonempty() -> None:
    sizes = np.array([500, 300, 150, 40, 10])
    for budget in (5, 17, 100, 999, 1000):
        alloc = class_budgets(sizes, sizes, budget)
        assert alloc.sum() == budget and (alloc <= sizes).all() and (alloc >= 1).all()
    assert class_budgets(sizes, sizes, 100).tolist() == [50, 30, 15, 4, 1]
    assert class_budgets(np.array([1, 0, 3]), np.array([10, 10, 10]), 12).tolist() == [3, 1, 8]
    assert class_budgets(sizes, sizes, 3).sum() == 3  # fewer samples than classes: no floor


@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.33, 0.5, 0.999])
def test_topk_budget_direction_and_balance(ratio: float) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 1000)
    scores = rng.random(1000)
    budget = keep_count(1000, ratio)
    hard = TopKSampler("hard")(scores, labels, budget, np.random.default_rng(1))
    easy = TopKSampler("easy")(scores, labels, budget, np.random.default_rng(1))
    assert len(hard) == len(easy) == budget == round(ratio * 1000)
    assert scores[hard].min() >= np.delete(scores, hard).max()
    assert scores[easy].max() <= np.delete(scores, easy).min()

    bal = TopKSampler("hard", class_balanced=True)(scores, labels, budget, np.random.default_rng(1))
    assert len(np.unique(bal)) == budget
    per_class = np.bincount(labels[bal], minlength=7)
    expected = class_budgets(np.bincount(labels), np.bincount(labels), budget)
    assert per_class.tolist() == expected.tolist()
    for c in range(7):  # within a class the hardest are kept
        kept, rest = bal[labels[bal] == c], np.setdiff1d(np.flatnonzero(labels == c), bal)
        if len(kept) and len(rest):
            assert scores[kept].min() >= scores[rest].max()


def test_topk_ties_are_broken_by_the_seed() -> None:
    scores, labels = np.zeros(100), np.zeros(100, dtype=int)
    a = TopKSampler()(scores, labels, 10, np.random.default_rng(0))
    assert np.array_equal(a, TopKSampler()(scores, labels, 10, np.random.default_rng(0)))
    assert not np.array_equal(np.sort(a), np.sort(TopKSampler()(scores, labels, 10, np.random.default_rng(1))))


class _Data:
    """The slice of the DataModule contract a Pruner reads."""

    def __init__(self, n: int) -> None:
        self.train_labels = np.arange(n) % 4

    def data_hash(self) -> str:
        return "toy"

    def transform_settings(self) -> dict:
        return {"mean": [0.5], "std": [0.5], "crop_padding": 0, "hflip": False, "image_size": None}


def test_pruner_keeps_exact_budget_deterministically() -> None:
    data = _Data(1001)
    kept, metrics = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.3, seed=4).select(data)
    again, _ = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.3, seed=4).select(data)
    other, _ = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.3, seed=5).select(data)
    assert len(kept) == 300 == metrics["pruning/kept"] and np.array_equal(kept, again)
    assert not np.array_equal(kept, other)
    full, _ = Pruner(RandomScore(), TopKSampler(), keep_ratio=1.0).select(data)
    assert np.array_equal(full, np.arange(1001))


@pytest.mark.parametrize("ratio", [0, -1, 1.01, "half", None])
def test_pruner_rejects_bad_keep_ratio(ratio) -> None:
    with pytest.raises(ValueError, match=r"pruning\.keep_ratio must be a number in \(0, 1\]"):
        Pruner(RandomScore(), TopKSampler(), keep_ratio=ratio)
