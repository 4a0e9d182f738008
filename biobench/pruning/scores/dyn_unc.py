"""Dynamic uncertainty (He et al., 2023, "Large-scale Dataset Pruning with Dynamic Uncertainty").

For every window of ``window`` (J) consecutive recorded epochs, the standard deviation of the target probability
p_y within the window (sample std, ddof = 1, as in the paper's 1 / (J - 1)); the score is the mean over all
E - J + 1 windows, averaged over the K experts. Higher = prediction fluctuates more = more informative.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.scores.base import Score, ScoreContext, check_recorded_epochs


def dynamic_uncertainty(record: ProxyRecord, window: int) -> np.ndarray:
    """Mean over sliding windows of the windowed std of p_y per sample ``[N]``."""
    windows = sliding_window_view(record.target_prob.astype(np.float64), window, axis=1)  # [N, E - J + 1, J]
    return windows.std(axis=2, ddof=1).mean(axis=1)


class DynamicUncertaintyScore(Score):
    version = 1

    def __init__(self, window: int = 3) -> None:
        if int(window) != window or window < 2:
            raise ValueError(f"pruning.score.window must be an integer >= 2, got {window!r}.")
        self.window = int(window)

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        records = ctx.proxies()
        check_recorded_epochs(records, "window", self.window)
        return np.mean([dynamic_uncertainty(r, self.window) for r in records], axis=0, dtype=np.float64)
