"""Data pruning = score x sampler (DESIGN.md): a score gives one float per training sample, a sampler
turns (scores, labels, keep ratio, rng) into the kept indices. Any score works with any sampler."""

from biobench.pruning.pruner import Pruner, keep_count

__all__ = ["Pruner", "keep_count"]
