"""Per-sample importance scores. Convention: a higher score means a harder / more informative sample."""

from biobench.pruning.scores.base import Score, ScoreContext
from biobench.pruning.scores.random import RandomScore

__all__ = ["RandomScore", "Score", "ScoreContext"]
