"""Samplers: (scores, labels, keep ratio, rng) -> sorted kept indices, with exact budgets."""

from biobench.pruning.samplers.base import Sampler, class_budgets
from biobench.pruning.samplers.topk import TopKSampler

__all__ = ["Sampler", "TopKSampler", "class_budgets"]
