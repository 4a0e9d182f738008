"""The pruning stage run before training: score the training set, sample the kept subset, save it.

A saved subset (``subset.json``) records the content hash of its data (``data_hash``; loading it for other data
fails) and its provenance: the score, sampler, proxy settings, keep ratio and seed that chose the indices. A run
that re-uses a subset through ``indices_file`` records the provenance read from that file, plus the file's path.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from biobench.contracts import SubsetDataModule
from biobench.pruning.budget import TrainingLength, check_budget
from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.proxy import ProxyStage
from biobench.pruning.rng import isolated_rng
from biobench.pruning.samplers.base import Sampler
from biobench.pruning.scores.base import Score, ScoreContext
from biobench.utils.cache import cached_arrays
from biobench.utils.io import read_json, write_json

log = logging.getLogger(__name__)

SUBSET_FILE = "subset.json"
PROVENANCE_KEYS = ("keep_ratio", "score", "sampler", "proxy", "seed")


def keep_count(n: int, keep_ratio: float) -> int:
    """Exact budget: ``round(keep_ratio * n)``, at least one sample."""
    return max(1, round(keep_ratio * n))


def check_keep_ratio(keep_ratio: float) -> float:
    if not isinstance(keep_ratio, int | float) or not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"pruning.keep_ratio must be a number in (0, 1], got {keep_ratio!r}.")
    return float(keep_ratio)


def load_subset(path: str | Path, data_hash: str, n_train: int, what: str = "pruning.indices_file") -> np.ndarray:
    """Read kept indices from a ``subset.json``, refusing a subset made for other data; ``what`` names the file
    in errors."""
    data = read_json(path, what=what)
    saved_hash = data.get("data_hash", data.get("fingerprint")) if isinstance(data, dict) else None  # older files
    if saved_hash is None or "indices" not in data:
        raise ValueError(f"{what} '{path}' is not a biobench subset file (needs 'indices', 'data_hash').")
    if saved_hash != data_hash:
        raise ValueError(
            f"{what} '{path}' was made for dataset {saved_hash}, but the configured data is "
            f"{data_hash} (other files, labels or split). Re-create the subset for this data."
        )
    idx = np.asarray(data["indices"], dtype=np.int64)
    if len(idx) == 0 or idx.min() < 0 or idx.max() >= n_train:
        raise ValueError(f"{what} '{path}': indices must be non-empty and lie in [0, {n_train}).")
    return idx


class Pruner:
    """Selects the training subset: ``indices_file`` if given, else ``sampler(score(data), keep_ratio)``.

    ``keep_ratio == 1`` keeps everything and computes no score. Scores are cached under ``cache_dir`` keyed by
    (dataset content hash, score config and version, proxy key, train transform settings, seed); the proxies they
    need are trained lazily. ``wait_timeout_s``: how long the pruning stage's other ranks wait for rank 0's subset
    (:func:`biobench.pruning.stage.run_pruning_stage`). ``budget``: ``epochs`` or ``steps``
    (:mod:`biobench.pruning.budget`).
    """

    def __init__(
        self,
        score: Score,
        sampler: Sampler,
        keep_ratio: float = 1.0,
        seed: int = 0,
        indices_file: str | None = None,
        cache_dir: str | None = None,
        proxy: ProxyStage | None = None,
        wait_timeout_s: float = 4 * 3600.0,
        budget: str = "epochs",
    ) -> None:
        self.score = score
        self.sampler = sampler
        self.proxy = proxy
        self.keep_ratio = check_keep_ratio(keep_ratio)
        self.seed = seed
        self.indices_file = indices_file
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.wait_timeout_s = float(wait_timeout_s)
        self.budget = check_budget(budget)

    def select(self, datamodule: SubsetDataModule) -> tuple[np.ndarray, dict[str, float]]:
        """Return the sorted kept indices and pruning metrics (``pruning/...``).

        Runs inside :func:`isolated_rng`: the global random state afterwards is the one before.
        """
        with isolated_rng():
            return self._select(datamodule)

    def _select(self, datamodule: SubsetDataModule) -> tuple[np.ndarray, dict[str, float]]:
        labels = np.asarray(datamodule.train_labels)
        n = len(labels)
        start = time.perf_counter()
        metrics: dict[str, float] = {}
        if self.indices_file:
            kept = load_subset(self.indices_file, datamodule.data_hash(), n)
        elif self.keep_ratio >= 1.0:
            kept = np.arange(n)
        else:
            scores, hit = self.scores(datamodule)
            metrics["pruning/score_cached"] = float(hit)
            metrics["pruning/score_time_s"] = time.perf_counter() - start
            if self.proxy is not None:
                metrics["pruning/proxy_train_time_s"] = self.proxy.cost_s
            budget = keep_count(n, self.keep_ratio)
            kept = np.asarray(self.sampler(scores, labels, budget, np.random.default_rng(self.seed)), dtype=np.int64)
            if len(kept) != budget or len(np.unique(kept)) != budget:
                raise RuntimeError(
                    f"{type(self.sampler).__name__} returned {len(kept)} indices, expected {budget} distinct ones."
                )
        kept = np.sort(kept)
        metrics |= {
            "pruning/kept": float(len(kept)),
            "pruning/kept_fraction": len(kept) / n,
            "pruning/select_time_s": time.perf_counter() - start,
        }
        log.info("Pruning keeps %d of %d training samples (%.1f%%).", len(kept), n, 100 * len(kept) / n)
        return kept, metrics

    def scores(self, datamodule: SubsetDataModule) -> tuple[np.ndarray, bool]:
        """``(scores [N], cache hit)``; proxies are trained (or loaded) only when the score asks for them."""
        n = len(datamodule.train_labels)
        records: list[ProxyRecord] = []

        def proxies() -> list[ProxyRecord]:
            if self.proxy is None:
                raise ValueError(f"{type(self.score).__name__} needs proxy models: set pruning.proxy.")
            if not records:
                records.extend(self.proxy.run(datamodule, self.seed, self.cache_dir))
            return records

        def compute() -> dict[str, np.ndarray]:
            values = np.asarray(self.score(ScoreContext(datamodule, self.seed, proxies)), np.float64)
            if values.shape != (n,) or not np.isfinite(values).all():
                raise ValueError(
                    f"{type(self.score).__name__} returned scores of shape {values.shape} "
                    f"(finite values expected, shape ({n},))."
                )
            return {"scores": values}

        proxy_key = self.proxy.key(datamodule) if self.proxy else None
        key = (self.score.config(), proxy_key, datamodule.transform_settings(), self.seed)
        arrays, hit = cached_arrays(self.cache_dir, "scores", key, datamodule.data_hash(), n, compute)
        return arrays["scores"], hit

    def provenance(self, datamodule: SubsetDataModule) -> dict[str, Any]:
        """What chose the subset: this config, or for a re-used ``indices_file`` the settings recorded in it."""
        if self.indices_file:
            source = read_json(self.indices_file, what="pruning.indices_file")
            return {k: source.get(k) for k in PROVENANCE_KEYS} | {
                "indices_file": str(Path(self.indices_file).resolve())
            }
        return {
            "keep_ratio": self.keep_ratio,
            "score": self.score.config(),
            "sampler": {"sampler": type(self.sampler).__name__, **vars(self.sampler)},
            "proxy": self.proxy.key(datamodule) if self.proxy else None,
            "seed": self.seed,
            "indices_file": None,
        }

    def record_training(self, path: str | Path, length: TrainingLength) -> Path:
        """Add the training length of the run to its ``subset.json`` (known once the trainer exists)."""
        saved = read_json(path, what="the run's pruning subset")
        fields = {"budget": length.budget, "train_epochs": length.epochs, "train_steps": length.steps}
        return write_json(path, saved | fields)

    def save(self, path: str | Path, kept: np.ndarray, datamodule: SubsetDataModule, **extra: Any) -> Path:
        """Write ``subset.json`` atomically: indices + what made them (+ ``extra`` fields, e.g. the pruning stage's
        run token), so a subset can be re-used and shared."""
        return write_json(
            path,
            {
                "data_hash": datamodule.data_hash(),
                "n_train": len(datamodule.train_labels),
                **self.provenance(datamodule),
                **extra,
                "indices": kept.tolist(),
            },
        )
