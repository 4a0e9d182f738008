"""Prediction uncertainty (Coleman et al., ICLR 2020, "Selection via Proxy"; as in DeepCore).

From the experts' final eval-mode ``probs`` averaged over the K experts (an ensemble prediction) p:
``least_confidence`` = 1 - max_k p_k; ``entropy`` = -sum_k p_k log p_k (0 log 0 = 0);
``margin`` = 1 - (p_(1) - p_(2)), the top-1 minus top-2 probability. Higher = more uncertain = harder.
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.scores.base import Score, ScoreContext

METHODS = ("least_confidence", "entropy", "margin")


def uncertainty(probs: np.ndarray, method: str) -> np.ndarray:
    """Uncertainty ``[N]`` of class probabilities ``[N, C]``."""
    if method == "least_confidence":
        return 1 - probs.max(axis=1)
    if method == "entropy":
        return -(probs * np.log(np.where(probs > 0, probs, 1))).sum(axis=1)
    if method == "margin":
        top2 = np.partition(probs, -2, axis=1)[:, -2:]
        return 1 - (top2[:, 1] - top2[:, 0])
    raise ValueError(f"pruning.score.method must be one of {list(METHODS)}, got {method!r}.")


class UncertaintyScore(Score):
    version = 1

    def __init__(self, method: str = "least_confidence") -> None:
        if method not in METHODS:
            raise ValueError(f"pruning.score.method must be one of {list(METHODS)}, got {method!r}.")
        self.method = method

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        probs = np.mean([r.probs for r in ctx.proxies()], axis=0, dtype=np.float64)
        return uncertainty(probs, self.method)
