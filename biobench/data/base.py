"""The image-datamodule base (DESIGN.md, DataModule contract): splits, stable indices, subsets, loaders, spec, hash.

A datamodule owns a *train pool* (the dataset's training split) from which a validation part is carved by
``val_fraction`` and ``split_seed``. The remaining training samples are numbered ``0..N-1``: that number is the
stable ``index`` every sample carries, the key of pruning scores and of saved subsets. A sample is the dict
``{"image", "index", **fields}``, where ``fields`` are the per-sample values a subclass serves with its images
(``label`` for classification; ``finger``, ``minutiae``, attributes for fingerprints; none for plain images).

Value range: sources hold ``uint8`` pixels and the model receives ``(pixel / 255 - mean) / std`` per channel, so
``mean=0, std=1`` serves [0, 1] (codecs), ``mean=std=0.5`` serves [-1, 1] (GANs) and a dataset's own statistics
serve roughly zero-mean, unit-variance inputs (classifiers). :attr:`ImageDataModule.spec` reports it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from biobench.contracts import DataSpec
from biobench.data.sampler import EpochShuffleSampler
from biobench.data.transforms import build_transform
from biobench.utils.hashing import content_hash

RESERVED_KEYS = ("image", "index")


class ImageSamples(Dataset):
    """Samples ``ids`` of a source, each returned as ``{"image", "index", **fields}``.

    ``fields`` maps a key to an array over the source's positions (``[len(source), ...]``); sample ``i`` carries
    row ``ids[i]`` of each as a tensor, so the default collate batches them.
    """

    def __init__(self, source: Any, fields: dict[str, np.ndarray], ids: np.ndarray, transform: Any) -> None:
        self.source = source
        self.fields = {k: torch.as_tensor(np.asarray(v)) for k, v in fields.items()}
        self.ids = np.asarray(ids, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ids)

    def values(self, key: str) -> np.ndarray:
        """Field ``key`` of every sample, in this dataset's order."""
        return self.fields[key][torch.from_numpy(self.ids)].numpy()

    def with_transform(self, transform: Any) -> ImageSamples:
        """The same samples under another transform."""
        return ImageSamples(self.source, self.fields, self.ids, transform)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.ids[i])
        return {"image": self.transform(self.source.load(j)), "index": i} | {k: v[j] for k, v in self.fields.items()}


class ImageDataModule(pl.LightningDataModule, ABC):
    """Base of the image datamodules: splits, subsets, loaders, the data spec and the content hash.

    Subclasses implement :meth:`load_split` (the ``"train"`` pool or the ``"test"`` split as a source of
    ``uint8 [C, H, W]`` images and its per-sample fields) and :meth:`describe_content` (what makes the data what it
    is, for :meth:`data_hash`). Where the served image shape is known without reading data, they override
    :attr:`image_shape` so :attr:`spec` needs no setup.
    """

    def __init__(
        self,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        seed: int = 0,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
        crop_padding: int = 0,
        hflip: bool = False,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}.")
        if len(mean) != len(std) or min(std) <= 0:
            raise ValueError(f"data.mean / data.std need one value per channel each and std > 0, got {mean} / {std}.")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.seed = seed
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.pin_memory = pin_memory
        self.train_set: ImageSamples | None = None
        self.val_set: ImageSamples | None = None
        self.test_set: ImageSamples | None = None
        self.subset: np.ndarray | None = None
        self._data_hash: str | None = None

    # -- what subclasses provide -------------------------------------------------------------------
    @abstractmethod
    def load_split(self, split: str) -> tuple[Any, dict[str, np.ndarray]]:
        """``(source, fields)`` of the ``"train"`` pool or the ``"test"`` split: a source with ``len`` and
        ``load(i) -> uint8 [C, H, W]``, and per-sample arrays ``[len(source), ...]`` served with each image."""

    @abstractmethod
    def describe_content(self) -> Any:
        """JSON-able or array description of the data's content (file list + labels, array hash, ...)."""

    @property
    def image_size(self) -> int | None:
        """Square input size when fixed by the data or config (needed by random crops)."""
        return None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of a served image. This default reads one training sample (a setup); subclasses that know
        the shape from their settings override it."""
        self.setup("fit")
        return tuple(self.train_set[0]["image"].shape)

    # -- the contract ------------------------------------------------------------------------------
    @property
    def in_chans(self) -> int:
        return self.image_shape[0]

    @property
    def num_classes(self) -> int | None:
        """Number of classes where the data has labels."""
        return None

    @property
    def num_identities(self) -> int | None:
        """Number of *training* identities (e.g. fingers) where the data has identities."""
        return None

    @cached_property
    def spec(self) -> DataSpec:
        """What the model receives (see :class:`biobench.contracts.DataSpec` and the module docstring). Memoised like
        the hash: every checkpoint save records it, and for a folder of mixed sizes it reads an image."""
        c, h, w = self.image_shape
        return DataSpec(c, (h, w), self.mean, self.std, self.num_classes, self.num_identities)

    def data_hash(self) -> str:
        """Short content hash of the data and of the split, used to key caches and check saved subsets.

        Memoised: it is asked for at every checkpoint save, and for a folder it lists and stats every file.
        """
        if self._data_hash is None:
            self._data_hash = content_hash(type(self).__name__, *self.hash_parts())
        return self._data_hash

    def hash_parts(self) -> list[Any]:
        """What :meth:`data_hash` covers, in order: the content, then the split."""
        return [self.describe_content(), self.val_fraction, self.split_seed]

    def transform_settings(self) -> dict[str, Any]:
        """Everything the served pixels depend on besides the data: normalisation and augmentation."""
        return {"mean": list(self.mean), "std": list(self.std), "crop_padding": self.crop_padding,
                "hflip": self.hflip, "image_size": self.image_size}  # fmt: skip

    def set_train_subset(self, indices: Sequence[int] | np.ndarray | None) -> None:
        """Train only on these training-sample indices (``None`` restores the full training set)."""
        if indices is None:
            self.subset = None
            return
        self.setup("fit")
        idx = np.asarray(indices, dtype=np.int64)
        n = len(self.train_set)
        if idx.ndim != 1 or len(idx) == 0:
            raise ValueError("set_train_subset: indices must be a non-empty 1-D list of sample indices.")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"set_train_subset: indices must lie in [0, {n}), got range [{idx.min()}, {idx.max()}].")
        if len(np.unique(idx)) != len(idx):
            raise ValueError("set_train_subset: indices contain duplicates.")
        self.subset = np.sort(idx)

    # -- Lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            source, fields = self._checked_split("train")
            val_ids, train_ids = self.carve_val(len(source))
            train_fields = self.training_fields(fields, train_ids)
            self.train_set = ImageSamples(source, train_fields, train_ids, self.transform(train=True))
            self.val_set = ImageSamples(source, fields, val_ids, self.transform(train=False))
        if stage in (None, "test", "validate", "predict"):
            self.setup_test()

    def setup_test(self) -> None:
        """The test split alone (evaluation-only data has no training split)."""
        if self.test_set is None:
            source, fields = self._checked_split("test")
            self.test_set = ImageSamples(source, fields, np.arange(len(source)), self.transform(train=False))

    def carve_val(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ``(val_ids, train_ids)`` of the train pool: a ``val_fraction`` of samples drawn by ``split_seed``."""
        order = np.random.default_rng(self.split_seed).permutation(n)
        n_val = round(self.val_fraction * n)
        return np.sort(order[:n_val]), np.sort(order[n_val:])

    def training_fields(self, fields: dict[str, np.ndarray], train_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The fields the training samples (positions ``train_ids`` of the pool) are served with: as loaded here;
        subclasses may alter them for training only (label noise)."""
        return fields

    def check_split(self, split: str, source: Any, fields: dict[str, np.ndarray]) -> None:
        """Refuse an empty split, fields of the wrong length and fields that would shadow ``image`` / ``index``."""
        name = type(self).__name__
        if len(source) == 0:
            raise ValueError(f"{name}: the {split} split is empty.")
        shadowing = sorted(set(fields) & set(RESERVED_KEYS))
        if shadowing:
            raise ValueError(f"{name}: per-sample fields may not be named {shadowing} (reserved for every sample).")
        wrong = {k: len(v) for k, v in fields.items() if len(v) != len(source)}
        if wrong:
            raise ValueError(f"{name}: {split} fields {wrong} do not have one row per image ({len(source)} images).")

    def _checked_split(self, split: str) -> tuple[Any, dict[str, np.ndarray]]:
        source, fields = self.load_split(split)
        self.check_split(split, source, fields)
        return source, fields

    def transform(self, train: bool) -> Any:
        return build_transform(
            self.mean,
            self.std,
            train=train,
            crop_padding=self.crop_padding,
            hflip=self.hflip,
            image_size=self.image_size if self.crop_padding else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self.shuffled_train_loader(self.subset, self.seed, self.batch_size)

    def shuffled_train_loader(
        self, indices: np.ndarray | None = None, seed: int = 0, batch_size: int | None = None
    ) -> DataLoader:
        """Augmented training samples ``indices`` (default: all) in an order fixed by (seed, epoch)."""
        self.setup("fit")
        indices = np.arange(len(self.train_set)) if indices is None else indices
        sampler = EpochShuffleSampler(indices, seed)
        return self._loader(self.train_set, batch_size or self.batch_size, sampler, sampler.loader_generator)

    def val_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self.val_set if len(self.val_set) else self.test_set_for_val(), self.eval_batch_size)

    def train_eval_dataloader(self) -> DataLoader:
        """All training samples in ``index`` order with eval transforms (features, scores, teacher logits)."""
        self.setup("fit")
        return self._loader(self.train_set.with_transform(self.transform(train=False)), self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return self._loader(self.test_set, self.eval_batch_size)

    def test_set_for_val(self) -> ImageSamples:
        """With ``val_fraction=0`` the test split doubles as validation set."""
        self.setup("test")
        return self.test_set

    def _loader(
        self,
        dataset: Dataset,
        batch_size: int,
        sampler: Sampler | None = None,
        generator: torch.Generator | None = None,
    ) -> DataLoader:
        """A loader that never draws from the global RNG (its own generator seeds the workers)."""
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=generator or torch.Generator().manual_seed(self.seed),
        )
