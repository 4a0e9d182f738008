"""Area Under the Margin (Pleiss et al., NeurIPS 2020), in probability form as in CCS (Zheng et al., ICLR 2023).

AUM = mean over the recorded epochs of p_y - max_{k != y} p_k. A low (negative) AUM marks hard or mislabelled
samples, so the score is -AUM (higher = harder), averaged over the K experts.
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.scores.base import Score, ScoreContext


class AUMScore(Score):
    version = 1

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        margins = [
            r.target_prob.astype(np.float64).mean(axis=1) - r.other_max_prob.astype(np.float64).mean(axis=1)
            for r in ctx.proxies()
        ]
        return -np.mean(margins, axis=0, dtype=np.float64)
