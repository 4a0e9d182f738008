"""Identity-disjoint data on top of classification: images of identities (fingers, faces) split by identity.

Identities (not images) are assigned to test (``test_fraction`` of them; 1 = every identity, for evaluation only),
validation (``val_fraction`` of the rest) and train by ``split_seed``. Identities with fewer than
``min_eval_images`` images never go to validation or test (a verification pair needs two images of one identity):
the test and validation identities are the first such identities of the seeded order, and the others train.
Training labels are the dense training-identity ids ``0..num_identities-1``; validation and test identities are
never training classes (their label is a dense id within their own split), so evaluate them by verification
(:meth:`IdentityDataModule.verification_pairs`, the FVC protocol).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from functools import cached_property
from typing import Any

import numpy as np

from biobench.data.classification import ClassificationDataModule
from biobench.metrics.verification import fvc_pairs

log = logging.getLogger(__name__)


class IdentityDataModule(ClassificationDataModule):
    """A classification datamodule split identity-disjoint (module docstring).

    Subclasses implement :attr:`identities`, :meth:`load_all` and :meth:`identity_names`, serve the identity of
    every image under :attr:`identity_key` and its rank within its identity as ``impression``, and describe their
    content.
    """

    identity_key = "identity"
    min_eval_images = 1

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 < test_fraction <= 1.0:
            raise ValueError(
                f"data.test_fraction must be in (0, 1] (a fraction of the identities; 1 = all, for evaluation only), "
                f"got {test_fraction}."
            )
        self.test_fraction = test_fraction

    # -- what subclasses provide -------------------------------------------------------------------
    @property
    @abstractmethod
    def identities(self) -> np.ndarray:
        """Identity id of every image of the whole set, in :meth:`load_all`'s order."""

    @abstractmethod
    def load_all(self) -> tuple[Any, dict[str, np.ndarray]]:
        """Every image of the set: a source (``len``, ``load(i) -> uint8 [C, H, W]``) and its per-sample fields."""

    @abstractmethod
    def identity_names(self, ids: np.ndarray) -> list[str]:
        """Names of identity ids (folder names, ...)."""

    def labels(self, ids: np.ndarray) -> np.ndarray:
        """The ``label`` of images ``ids``: the identity's dense id within its split (subclasses may serve other
        classes)."""
        identities = self.identities[ids]
        labels = np.empty(len(ids), dtype=np.int64)
        for members in self.identity_split.values():
            inside = np.isin(identities, members)
            labels[inside] = np.searchsorted(members, identities[inside])
        return labels

    # -- the split ---------------------------------------------------------------------------------
    @cached_property
    def identity_split(self) -> dict[str, np.ndarray]:
        """Sorted identity ids of the ``test``, ``val`` and ``train`` splits."""
        ids, counts = np.unique(self.identities, return_counts=True)
        evaluable = ids[counts >= self.min_eval_images]
        if self.test_fraction == 1.0:  # evaluation only: every identity that can be evaluated is a test identity
            unplaced = np.setdiff1d(ids, evaluable)
            if len(unplaced):
                log.warning(
                    "%s: %d identities have fewer than %d images and are in no split (evaluation only): %s.",
                    type(self).__name__, len(unplaced), self.min_eval_images, self.identity_names(unplaced),
                )  # fmt: skip
            return {"test": evaluable, "val": ids[:0], "train": ids[:0]}
        n_test = max(1, round(self.test_fraction * len(ids)))
        if n_test >= len(ids):
            raise ValueError(f"{len(ids)} identities are too few to hold out test_fraction={self.test_fraction}.")
        self._check_evaluable("test", "test_fraction", n_test, len(evaluable))
        order = np.random.default_rng([self.split_seed, 31]).permutation(ids)
        test = order[np.isin(order, evaluable)][:n_test]
        pool = np.setdiff1d(ids, test)
        n_val = round(self.val_fraction * len(pool))
        if n_val >= len(pool):
            raise ValueError(
                f"data.val_fraction={self.val_fraction} leaves no training identity of the {len(pool)} outside the "
                "test split; lower it or add identities."
            )
        candidates = pool[np.isin(pool, evaluable)]
        self._check_evaluable("validation", "val_fraction", n_val, len(candidates))
        val = np.random.default_rng([self.split_seed, 37]).permutation(candidates)[:n_val]
        return {"test": np.sort(test), "val": np.sort(val), "train": np.setdiff1d(pool, val)}

    def _check_evaluable(self, split: str, setting: str, wanted: int, available: int) -> None:
        if wanted > available:
            raise ValueError(
                f"{type(self).__name__}: data.{setting}={getattr(self, setting)} asks for {wanted} {split} identities, "
                f"but only {available} identities left have the >= {self.min_eval_images} images an evaluation "
                f"identity needs; lower data.{setting} or add images."
            )

    def split_samples(self, split: str) -> np.ndarray:
        """Image positions of the ``test`` split or of the train pool (``train``: training + validation identities)."""
        return np.flatnonzero(np.isin(self.identities, self.identity_split["test"]) == (split == "test"))

    # -- ClassificationDataModule ----------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """The training identities, in label order."""
        return self.identity_names(self.identity_split["train"])

    @property
    def open_set_eval(self) -> bool:
        return True

    @property
    def num_identities(self) -> int:
        return len(self.identity_split["train"])

    def setup(self, stage: str | None = None) -> None:
        if self.test_fraction < 1.0:
            super().setup(stage)
        elif stage in ("test", "predict"):
            self.setup_test()
        else:
            raise ValueError(
                "data.test_fraction=1 makes every identity a test identity (evaluation only): there is nothing to "
                "train or validate on; lower it for training."
            )

    def load_split(self, split: str) -> tuple[Any, dict[str, np.ndarray]]:
        source, fields = self.load_all()  # read (and report unreadable files) before splitting
        ids = self.split_samples(split)
        fields = {k: v[ids] for k, v in fields.items()}
        return SubsetSource(source, ids), fields | {"label": self.labels(ids)}

    def carve_val(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation = all images of the validation identities (identity-disjoint from train)."""
        is_val = np.isin(self.identities[self.split_samples("train")], self.identity_split["val"])
        return np.flatnonzero(is_val), np.flatnonzero(~is_val)

    # -- verification ------------------------------------------------------------------------------------
    def split_labels(self, split: str) -> dict[str, np.ndarray]:
        """The identity (under :attr:`identity_key`) and ``impression`` of every sample of a split, in its order."""
        self.setup("test" if split == "test" else "fit")
        dataset = {"train": self.train_set, "val": self.val_set, "test": self.test_set}[split]
        return {self.identity_key: dataset.values(self.identity_key), "impression": dataset.values("impression")}

    def verification_pairs(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """FVC genuine and impostor index pairs over a split's samples (see :func:`fvc_pairs`)."""
        labels = self.split_labels(split)
        return fvc_pairs(labels[self.identity_key], labels["impression"])


class SubsetSource:
    """A source restricted to positions ``ids`` (renumbered ``0..len(ids)-1``)."""

    def __init__(self, source: Any, ids: np.ndarray) -> None:
        self.source, self.ids = source, ids

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> Any:
        return self.source.load(int(self.ids[i]))
