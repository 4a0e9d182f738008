"""Forgetting events (Toneva et al., ICLR 2019).

A forgetting event is a transition from correct at epoch e to incorrect at epoch e + 1 over the recorded epochs.
Samples never classified correctly in any epoch are the hardest (the paper's code counts them as forgotten
infinitely often) and get E + 1, more than any learned sample can reach. Averaged over the K experts.
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.scores.base import Score, ScoreContext


def forgetting_events(record: ProxyRecord) -> np.ndarray:
    """Number of correct -> incorrect transitions per sample ``[N]``; E + 1 for never-learned samples."""
    correct = record.correct.astype(bool)
    events = (correct[:, :-1] & ~correct[:, 1:]).sum(axis=1)
    return np.where(correct.any(axis=1), events, record.num_epochs + 1).astype(np.float64)


class ForgettingScore(Score):
    version = 1

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        return np.mean([forgetting_events(r) for r in ctx.proxies()], axis=0, dtype=np.float64)
