"""The score interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ScoreContext:
    """What a score may use: the datamodule (train set, labels, fingerprint), the seed and the cache folder."""

    datamodule: Any
    seed: int
    cache_dir: Path | None = None


class Score(ABC):
    """Maps the training set to one float per sample (by ``index``); higher = harder / more informative."""

    @abstractmethod
    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        """Return ``float64 [N]`` scores for the ``N`` training samples."""
