"""Fingerprint data for training and evaluation: synthetic (default) or a folder of real prints.

Splits are identity-disjoint: fingers (not images) are assigned to test (``test_fraction``), validation
(``val_fraction``) and train by ``split_seed``. Two label sets:

- ``task=henry``: the Henry class (arch, tented arch, left loop, right loop, whorl) -- a classification task
  for ``pruned_classifier`` / ``kd_student`` (``experiment=prune_fingerprint_class``);
- ``task=finger``: a dense finger id per split, for identity-supervised embedders; evaluation then uses
  :meth:`FingerprintDataModule.verification_pairs` (the FVC protocol). Validation and test fingers are never
  training classes, so classification accuracy means nothing there: use verification metrics.

Synthetic prints are rendered once (in ``gen_workers`` processes) and cached under ``cache_dir`` keyed by the
generator's identity, so every run of a sweep reads the same images from disk.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from biobench.data.base import ClassificationDataModule
from biobench.data.fingerprints.export import render_fingerprints
from biobench.data.fingerprints.generator import FingerprintGenerator
from biobench.data.fingerprints.orientation import HENRY_CLASSES
from biobench.data.fingerprints.readers import read_fingerprint_folder
from biobench.data.sources import ArraySource, FileSource
from biobench.metrics.verification import fvc_pairs
from biobench.utils.cache import cached_arrays
from biobench.utils.hashing import content_hash

TASKS = ("henry", "finger")


class FingerprintDataModule(ClassificationDataModule):
    """Synthetic fingerprints (``data_dir=None``) or real ones read by layout; see the module docstring."""

    def __init__(
        self,
        data_dir: str | None = None,
        layout: str = "auto",
        pattern: str | None = None,
        task: str = "henry",
        n_fingers: int = 200,
        impressions: int = 4,
        generator: dict[str, Any] | None = None,
        image_size: int | None = 128,
        test_fraction: float = 0.2,
        preload: bool = True,
        cache_dir: str | None = None,
        gen_workers: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if task not in TASKS:
            raise ValueError(f"data.task must be one of {TASKS}, got '{task}'.")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"data.test_fraction must be in (0, 1) (a fraction of the fingers), got {test_fraction}.")
        if data_dir is None and (n_fingers < 3 or impressions < 1):
            raise ValueError(
                f"Synthetic fingerprints need >= 3 fingers and >= 1 impression, got {n_fingers} x {impressions}."
            )
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.layout, self.pattern, self.task = layout, pattern, task
        self.n_fingers, self.impressions = n_fingers, impressions
        self.generator_kwargs = dict(generator or {})
        self._image_size = image_size
        self.test_fraction = test_fraction
        self.preload = preload
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.gen_workers = gen_workers

    # -- the data ------------------------------------------------------------------------------------
    @cached_property
    def _all(self) -> dict[str, Any]:
        """Every image's source position, finger, impression rank and Henry class (``None`` when unknown)."""
        if self.data_dir is None:
            gen = FingerprintGenerator(**self.generator_kwargs)
            fingers = np.arange(self.n_fingers)
            arrays, _ = cached_arrays(
                self.cache_dir,
                "fingerprints",
                (),  # everything that determines the prints is in the fingerprint below
                content_hash(gen.describe_content(), self.n_fingers, self.impressions, self._image_size),
                self.n_fingers * self.impressions,
                lambda: render_fingerprints(
                    self.generator_kwargs, fingers, self.impressions, self._image_size, self.gen_workers
                ),
            )
            source = ArraySource(arrays["images"][:, None])
            identity = [gen.describe_content(), self.n_fingers, self.impressions]
            return {"source": source, "finger": arrays["finger"], "impression": arrays["impression"],
                    "henry": arrays["henry"], "identity": identity}  # fmt: skip
        records = read_fingerprint_folder(self.data_dir, self.layout, self.pattern)
        order = np.argsort(records.finger, kind="stable")  # impression rank within each finger, in file order
        starts = np.r_[True, records.finger[order][1:] != records.finger[order][:-1]]
        rank = np.empty(len(records), dtype=np.int64)
        rank[order] = np.arange(len(order)) - np.flatnonzero(starts)[np.cumsum(starts) - 1]
        source = FileSource(records.paths, channels=1, size=self._image_size)
        if self.preload:
            source = source.preload(desc=f"decoding {self.data_dir.name}")
        rel = [str(p.relative_to(self.data_dir)) for p in records.paths]
        identity = [rel, [p.stat().st_size for p in records.paths], self.layout, self.pattern]
        return {"source": source, "finger": records.finger, "impression": rank, "henry": records.henry,
                "identity": identity}  # fmt: skip

    @cached_property
    def _finger_split(self) -> dict[str, np.ndarray]:
        """Sorted finger ids of the ``test`` split and of the train ``pool`` (train + validation)."""
        fingers = np.unique(self._all["finger"])
        order = np.random.default_rng([self.split_seed, 31]).permutation(fingers)
        n_test = max(1, round(self.test_fraction * len(fingers)))
        if n_test >= len(fingers):
            raise ValueError(f"{len(fingers)} fingers are too few to hold out test_fraction={self.test_fraction}.")
        return {"test": np.sort(order[:n_test]), "pool": np.sort(order[n_test:])}

    def _split_samples(self, split: str) -> np.ndarray:
        fingers = self._finger_split["test" if split == "test" else "pool"]
        return np.flatnonzero(np.isin(self._all["finger"], fingers))

    # -- ClassificationDataModule ------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        if self.task == "henry":
            return list(HENRY_CLASSES)
        return [str(f) for f in self._finger_split["pool"]]

    @property
    def image_size(self) -> int | None:
        return self._image_size

    def _labels(self, ids: np.ndarray) -> np.ndarray:
        if self.task == "finger":
            return np.unique(self._all["finger"][ids], return_inverse=True)[1].astype(np.int64)
        if self._all["henry"] is None:
            raise ValueError(
                f"data.task=henry needs Henry classes, but '{self.data_dir}' has no metadata.csv with a 'henry' "
                "column for every image; use data.task=finger or add the labels."
            )
        return self._all["henry"][ids]

    def load_split(self, split: str) -> tuple[Any, np.ndarray]:
        ids = self._split_samples(split)
        return _Subset(self._all["source"], ids), self._labels(ids)

    def carve_val(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation = all images of a ``val_fraction`` of the pool's fingers (identity-disjoint from train)."""
        fingers = self._all["finger"][self._split_samples("train")]
        pool = np.unique(fingers)
        rng = np.random.default_rng([self.split_seed, 37])
        n_val = round(self.val_fraction * len(pool))
        if n_val >= len(pool):
            raise ValueError(
                f"data.val_fraction={self.val_fraction} leaves no training finger of the {len(pool)} outside the test "
                "split; lower it or add fingers."
            )
        val_fingers = rng.permutation(pool)[:n_val]
        is_val = np.isin(fingers, val_fingers)
        return np.flatnonzero(is_val), np.flatnonzero(~is_val)

    def describe_content(self) -> Any:
        henry = self._all["henry"]
        return {"data": self._all["identity"], "task": self.task, "test_fraction": self.test_fraction,
                "image_size": self._image_size, "finger": content_hash(self._all["finger"]),
                "henry": None if henry is None else content_hash(henry)}  # fmt: skip

    # -- verification ------------------------------------------------------------------------------------
    def split_labels(self, split: str) -> dict[str, np.ndarray]:
        """``finger`` and ``impression`` (rank) of every sample of a split, in the split's sample order."""
        self.setup("test" if split == "test" else "fit")
        dataset = {"train": self.train_set, "val": self.val_set, "test": self.test_set}[split]
        ids = self._split_samples(split)[dataset.ids]
        return {"finger": self._all["finger"][ids], "impression": self._all["impression"][ids]}

    def verification_pairs(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """FVC genuine and impostor index pairs over a split's samples (see :func:`fvc_pairs`)."""
        labels = self.split_labels(split)
        return fvc_pairs(labels["finger"], labels["impression"])


class _Subset:
    """A source restricted to positions ``ids`` (renumbered ``0..len(ids)-1``)."""

    def __init__(self, source: Any, ids: np.ndarray) -> None:
        self.source, self.ids = source, ids

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> Any:
        return self.source.load(int(self.ids[i]))
