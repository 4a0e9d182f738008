"""The score interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biobench.pruning.dynamics import ProxyRecord


def _no_proxies() -> list[ProxyRecord]:
    raise RuntimeError("This score needs proxy models, but the pruning config provides none (pruning.proxy).")


@dataclass
class ScoreContext:
    """What a score may use.

    ``datamodule``: the training set (``train_labels``, ``fingerprint()``); ``seed``;
    ``proxies()``: the K proxy models' :class:`ProxyRecord` s, trained (or read from the cache) on first call,
    so scores that do not need them cost nothing.
    """

    datamodule: Any
    seed: int
    proxies: Callable[[], list[ProxyRecord]] = field(default=_no_proxies)


class Score(ABC):
    """Maps the training set to one float per sample (by ``index``); higher = harder / more informative."""

    @abstractmethod
    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        """Return ``float64 [N]`` scores for the ``N`` training samples."""

    def config(self) -> dict[str, Any]:
        """What defines this score's values (for cache keys): class name + constructor settings."""
        return {"score": type(self).__name__, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


def check_recorded_epochs(records: list[ProxyRecord], key: str, epochs: int) -> None:
    """Raise if a score asks for more epochs (``pruning.score.<key>``) than the proxies recorded."""
    available = min(r.num_epochs for r in records)
    if epochs > available:
        raise ValueError(f"pruning.score.{key}={epochs} exceeds the {available} epochs recorded by the proxy models.")
