"""Per-sample importance scores. Convention: a higher score means a harder / more informative sample."""

from biobench.pruning.scores.aum import AUMScore
from biobench.pruning.scores.base import Score, ScoreContext
from biobench.pruning.scores.dyn_unc import DynamicUncertaintyScore
from biobench.pruning.scores.el2n import EL2NScore
from biobench.pruning.scores.forgetting import ForgettingScore
from biobench.pruning.scores.grand import GraNdScore
from biobench.pruning.scores.moderate import ModerateScore
from biobench.pruning.scores.random import RandomScore
from biobench.pruning.scores.sim import SIMScore
from biobench.pruning.scores.uncertainty import UncertaintyScore

__all__ = [
    "AUMScore",
    "DynamicUncertaintyScore",
    "EL2NScore",
    "ForgettingScore",
    "GraNdScore",
    "ModerateScore",
    "RandomScore",
    "SIMScore",
    "Score",
    "ScoreContext",
    "UncertaintyScore",
]
