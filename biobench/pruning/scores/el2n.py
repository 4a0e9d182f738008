"""EL2N: the error L2 norm ||softmax(x) - onehot(y)||_2 early in training (Paul et al., NeurIPS 2021).

Score = mean over the first ``epochs`` recorded epochs of the per-epoch EL2N, averaged over the K experts
(the paper averages over several initialisations; CCS sums the early epochs, which ranks identically).
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.scores.base import Score, ScoreContext, check_recorded_epochs


class EL2NScore(Score):
    version = 1

    def __init__(self, epochs: int = 3) -> None:
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"pruning.score.epochs must be a positive integer, got {epochs!r}.")
        self.epochs = int(epochs)

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        records = ctx.proxies()
        check_recorded_epochs(records, "epochs", self.epochs)
        return np.mean([r.el2n(slice(0, self.epochs)).mean(axis=1) for r in records], axis=0, dtype=np.float64)
