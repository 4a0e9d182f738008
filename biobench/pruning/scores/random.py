"""Random score: i.i.d. uniform values, so any sampler keeps a uniformly random subset."""

from __future__ import annotations

import numpy as np

from biobench.pruning.scores.base import Score, ScoreContext


class RandomScore(Score):
    version = 1

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        return np.random.default_rng(ctx.seed).random(len(ctx.datamodule.train_labels))
