"""SIMS importance sampling (Grosz et al., ICPR 2024): a ratio-aware sampling distribution with a hybrid
class-dependent / class-independent budget. The paper's formulas are not public; this is our reading
(docs/pruning.md), close to DUAL's Beta sampling.

1. Hardness u in (0, 1]: the rank-normalised score (0 = easiest).
2. Ratio-aware distribution: weight_i = BetaPDF(u_i; a, b) + floor, with the Beta mode moving with the keep
   ratio r: mode = mode_low + (mode_high - mode_low) * r^gamma, a = 1 + mode (kappa - 2), b = 1 + (1 - mode)
   (kappa - 2). Much data kept -> harder samples favoured (but the very hardest, often noisy, less); little kept
   -> easier, typical samples favoured.
3. Per-class budgets: ``class_mix`` x proportional to class size (class-independent) + (1 - class_mix) x
   proportional to size x mean hardness of the class (class-dependent: classes whose samples are harder, i.e.
   less separated under SIM, keep more). Every class keeps at least ``min_per_class`` samples (0 allows empty ones).
4. Within a class: weighted sampling without replacement (Efraimidis-Spirakis keys), exact and seeded.
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.samplers.base import Sampler, class_budgets
from biobench.pruning.scores.sim import rank_normalize


def beta_weights(u: np.ndarray, mode: float, concentration: float) -> np.ndarray:
    """Unnormalised Beta density with the given mode and concentration a + b at points u in (0, 1)."""
    a = 1.0 + mode * (concentration - 2.0)
    b = 1.0 + (1.0 - mode) * (concentration - 2.0)
    u = np.clip(u, 1e-6, 1 - 1e-6)
    log_pdf = (a - 1) * np.log(u) + (b - 1) * np.log1p(-u)
    return np.exp(log_pdf - log_pdf.max())


def weighted_sample(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` positions drawn without replacement with probability proportional to ``weights`` (> 0)."""
    keys = np.log(rng.random(len(weights))) / weights
    return np.argpartition(-keys, k - 1)[:k] if k < len(weights) else np.arange(len(weights))


class SIMSSampler(Sampler):
    def __init__(
        self,
        mode_low: float = 0.3,
        mode_high: float = 0.7,
        gamma: float = 1.0,
        concentration: float = 6.0,
        class_mix: float = 0.5,
        floor: float = 0.01,
        min_per_class: int = 1,
    ) -> None:
        if not (0.0 < mode_low < 1.0 and 0.0 < mode_high < 1.0):
            raise ValueError(f"pruning.sampler.mode_low/mode_high must be in (0, 1), got {mode_low}, {mode_high}.")
        if concentration < 2.0:
            raise ValueError(f"pruning.sampler.concentration must be >= 2, got {concentration}.")
        if not 0.0 <= class_mix <= 1.0:
            raise ValueError(f"pruning.sampler.class_mix must be in [0, 1], got {class_mix}.")
        self.mode_low, self.mode_high, self.gamma = mode_low, mode_high, gamma
        if min_per_class < 0:
            raise ValueError(f"pruning.sampler.min_per_class must be >= 0, got {min_per_class}.")
        self.concentration, self.class_mix, self.floor = concentration, class_mix, floor
        self.min_per_class = min_per_class

    def mode(self, keep_ratio: float) -> float:
        return self.mode_low + (self.mode_high - self.mode_low) * keep_ratio**self.gamma

    def __call__(self, scores: np.ndarray, labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
        labels = np.asarray(labels)
        u = rank_normalize(np.asarray(scores, dtype=np.float64))
        weights = beta_weights(u, self.mode(budget / len(scores)), self.concentration) + self.floor
        classes, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        hardness = np.bincount(inverse, weights=u) / sizes
        mix = self.class_mix * sizes / sizes.sum() + (1 - self.class_mix) * sizes * hardness / (sizes * hardness).sum()
        quota = class_budgets(mix, sizes, budget, self.min_per_class)
        kept = []
        for c in range(len(classes)):  # one vectorised draw per class
            members = np.flatnonzero(inverse == c)
            if quota[c]:
                kept.append(members[weighted_sample(weights[members], int(quota[c]), rng)])
        return np.concatenate(kept)
