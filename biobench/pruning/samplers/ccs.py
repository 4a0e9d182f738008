"""Coverage-centric coreset selection (CCS, Zheng et al., ICLR 2023), stratified sampling.

Drop the ``beta`` fraction of hardest samples (highest score; with the AUM score these are the lowest-AUM,
likely mislabelled ones), split the remaining score range into ``strata`` equal-width bins, hand out the
budget smallest-stratum-first (each gets ``min(size, remaining budget / remaining strata)``) and sample
uniformly inside each stratum. ``beta`` is capped so that at least ``budget`` samples remain.
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.samplers.base import Sampler


class CCSSampler(Sampler):
    def __init__(self, beta: float = 0.0, strata: int = 50) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"pruning.sampler.beta must be in [0, 1), got {beta}.")
        if strata < 1:
            raise ValueError(f"pruning.sampler.strata must be >= 1, got {strata}.")
        self.beta = beta
        self.strata = strata

    def __call__(self, scores: np.ndarray, labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
        n = len(scores)
        drop = min(int(self.beta * n), n - budget)
        pool = np.argsort(-scores, kind="stable")[drop:]
        s = scores[pool]
        edges = np.linspace(s.min(), s.max(), self.strata + 1)
        stratum = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, self.strata - 1)
        sizes = np.bincount(stratum, minlength=self.strata)
        order = np.argsort(pool, kind="stable")  # members of a stratum in index order, for determinism
        members = np.split(pool[order][np.argsort(stratum[order], kind="stable")], np.cumsum(sizes)[:-1])
        kept, left = [], budget
        nonempty = [k for k in np.argsort(sizes, kind="stable") if sizes[k] > 0]
        for i, k in enumerate(nonempty):
            take = min(int(sizes[k]), left // (len(nonempty) - i))
            kept.append(rng.choice(members[k], take, replace=False))
            left -= take
        return np.concatenate(kept)
