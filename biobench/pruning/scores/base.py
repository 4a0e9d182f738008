"""The score interface.

Scores are cached on disk (see :meth:`biobench.pruning.pruner.Pruner.scores`), keyed by :meth:`Score.config`, which
includes the class attribute ``version``. Bump a score's ``version`` whenever its formula changes (anything that
changes its values for the same inputs, a bug fix included), so cached values of the old formula are not reused;
refactors that keep the values keep the number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from biobench.contracts import SubsetDataModule
from biobench.pruning.dynamics import ProxyRecord


def _no_proxies() -> list[ProxyRecord]:
    raise RuntimeError("This score needs proxy models, but the pruning config provides none (pruning.proxy).")


@dataclass
class ScoreContext:
    """What a score may use.

    ``datamodule``: the training set (``train_labels``, ``data_hash()``); ``seed``;
    ``proxies()``: the K proxy models' :class:`ProxyRecord` s, trained (or read from the cache) on first call,
    so scores that do not need them cost nothing.
    """

    datamodule: SubsetDataModule
    seed: int
    proxies: Callable[[], list[ProxyRecord]] = field(default=_no_proxies)


class Score(ABC):
    """Maps the training set to one float per sample (by ``index``); higher = harder / more informative.

    Every concrete score declares ``version`` (an int, see the module docstring).
    """

    version: ClassVar[int]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "version", None), int):
            raise TypeError(f"{cls.__name__} must declare a code version: `version = 1` (an int) in its class body.")

    @abstractmethod
    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        """Return ``float64 [N]`` scores for the ``N`` training samples."""

    def config(self) -> dict[str, Any]:
        """What defines this score's values (for cache keys and ``subset.json``): class name, code version and
        constructor settings."""
        settings = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"score": type(self).__name__, "version": self.version, **settings}


def check_recorded_epochs(records: list[ProxyRecord], key: str, epochs: int) -> None:
    """Raise if a score asks for more epochs (``pruning.score.<key>``) than the proxies recorded."""
    available = min(r.num_epochs for r in records)
    if epochs > available:
        raise ValueError(f"pruning.score.{key}={epochs} exceeds the {available} epochs recorded by the proxy models.")
