"""Samplers: (scores, labels, budget, rng) -> kept indices, with exact budgets."""

from biobench.pruning.samplers.base import Sampler, class_budgets
from biobench.pruning.samplers.ccs import CCSSampler
from biobench.pruning.samplers.sims import SIMSSampler
from biobench.pruning.samplers.topk import TopKSampler

__all__ = ["CCSSampler", "SIMSSampler", "Sampler", "TopKSampler", "class_budgets"]
