"""Shared machinery of the classification datamodules (DESIGN.md, DataModule contract).

A datamodule owns a *train pool* (the dataset's training split) from which a validation part is carved by
``val_fraction`` and ``split_seed``. The remaining training samples are numbered ``0..N-1``: that number is
the stable ``index`` every sample carries, the key of pruning scores and of saved subsets. ``label_noise`` flips a
seeded fraction of the training labels to another class (validation and test labels stay clean), to study
pruning and distillation under noise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from biobench.contracts import DataSpec
from biobench.data.transforms import build_transform
from biobench.utils.hashing import content_hash


class ImageSamples(Dataset):
    """Samples ``ids`` of a source, each returned as ``{"image", "label", "index"}``."""

    def __init__(self, source: Any, labels: np.ndarray, ids: np.ndarray, transform: Any) -> None:
        self.source = source
        self.labels = np.asarray(labels, dtype=np.int64)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def targets(self) -> np.ndarray:
        """Labels of the samples in this dataset's order."""
        return self.labels[self.ids]

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.ids[i])
        return {"image": self.transform(self.source.load(j)), "label": int(self.labels[j]), "index": i}


class EpochShuffleSampler(Sampler[int]):
    """Random order fixed by (seed, epoch), so a resumed run sees exactly the batches of an uninterrupted one.

    Lightning calls ``set_epoch`` before every training epoch. ``loader_generator`` (handed to the DataLoader
    for its worker seeds) is reseeded there too, so no loader ever draws from the global RNG.
    """

    def __init__(self, indices: Sequence[int], seed: int) -> None:
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        self.seed = seed
        self.loader_generator = torch.Generator()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loader_generator.manual_seed(self.seed * 1_000_003 + epoch + 1)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(self.indices[torch.randperm(len(self.indices), generator=g)].tolist())


class ClassificationDataModule(pl.LightningDataModule, ABC):
    """Base of image-classification datamodules: splits, subsets, loaders, the data spec and the content hash.

    Subclasses implement :meth:`load_split` returning ``(source, labels)`` for ``"train"`` and ``"test"``,
    :meth:`describe_content` (what makes the data what it is, for :meth:`data_hash`), and ``classes``.
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
        label_noise: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}.")
        if not 0.0 <= label_noise < 1.0:
            raise ValueError(f"data.label_noise must be in [0, 1), got {label_noise}.")
        self.label_noise = label_noise
        self.noisy_indices = np.empty(0, dtype=np.int64)
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
    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """Class names, in label order."""

    @abstractmethod
    def load_split(self, split: str) -> tuple[Any, np.ndarray]:
        """Return ``(source, labels)`` of the ``"train"`` or ``"test"`` split."""

    @abstractmethod
    def describe_content(self) -> Any:
        """JSON-able or array description of the data's content (file list + labels, array hash, ...)."""

    # -- the contract ------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one input image after transforms."""
        self.setup("fit")
        return tuple(self.train_set[0]["image"].shape)

    @property
    def in_chans(self) -> int:
        return self.image_shape[0]

    @property
    def num_identities(self) -> int | None:
        """Number of training identities (e.g. fingers) where the data has identities."""
        return None

    @property
    def spec(self) -> DataSpec:
        """What the model receives (see :class:`biobench.contracts.DataSpec`)."""
        c, h, w = self.image_shape
        return DataSpec(c, (h, w), self.mean, self.std, self.num_classes, self.num_identities)

    def data_hash(self) -> str:
        """Short content hash of the data and of the split, used to key caches and check saved subsets (memoised:
        for a folder it lists and stats every file)."""
        if self._data_hash is None:
            noise = [self.label_noise] if self.label_noise else []  # unchanged hash for clean data
            self._data_hash = content_hash(
                type(self).__name__, self.describe_content(), self.classes, self.val_fraction, self.split_seed, *noise
            )
        return self._data_hash

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

    @property
    def train_labels(self) -> np.ndarray:
        """Labels of all training samples, by ``index``."""
        self.setup("fit")
        return self.train_set.targets

    # -- Lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            source, labels = self.load_split("train")
            self._check_labels(labels, "train")
            val_ids, train_ids = self.carve_val(len(labels))
            train_labels = self._with_label_noise(labels, train_ids)
            self.train_set = ImageSamples(source, train_labels, train_ids, self.transform(train=True))
            self.val_set = ImageSamples(source, labels, val_ids, self.transform(train=False))
        if self.test_set is None and stage in (None, "test", "validate", "predict"):
            source, labels = self.load_split("test")
            self._check_labels(labels, "test")
            self.test_set = ImageSamples(source, labels, np.arange(len(labels)), self.transform(train=False))

    def carve_val(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ``(val_ids, train_ids)`` of the train pool: a ``val_fraction`` of samples drawn by ``split_seed``."""
        order = np.random.default_rng(self.split_seed).permutation(n)
        n_val = round(self.val_fraction * n)
        return np.sort(order[:n_val]), np.sort(order[n_val:])

    def _with_label_noise(self, labels: np.ndarray, train_ids: np.ndarray) -> np.ndarray:
        """A copy of ``labels`` where a ``label_noise`` fraction of the training samples carries another class.

        The flipped training indices are kept in ``self.noisy_indices`` (for analysing scores on noisy data).
        """
        labels = np.asarray(labels, dtype=np.int64).copy()
        rng = np.random.default_rng([self.split_seed, 104729])
        flip = np.sort(rng.choice(len(train_ids), round(self.label_noise * len(train_ids)), replace=False))
        shift = rng.integers(1, self.num_classes, len(flip))  # never the true class
        labels[train_ids[flip]] = (labels[train_ids[flip]] + shift) % self.num_classes
        self.noisy_indices = flip
        return labels

    def transform(self, train: bool) -> Any:
        return build_transform(
            self.mean,
            self.std,
            train=train,
            crop_padding=self.crop_padding,
            hflip=self.hflip,
            image_size=self.image_size if self.crop_padding else None,
        )

    @property
    def image_size(self) -> int | None:
        """Square input size when fixed by the data or config (needed by random crops)."""
        return None

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
        ordered = ImageSamples(self.train_set.source, self.train_set.labels, self.train_set.ids, self.transform(False))
        return self._loader(ordered, self.eval_batch_size)

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

    def _check_labels(self, labels: np.ndarray, split: str) -> None:
        labels = np.asarray(labels)
        if len(labels) == 0:
            raise ValueError(f"{type(self).__name__}: the {split} split is empty.")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"{type(self).__name__}: {split} labels must lie in [0, {self.num_classes}), "
                f"got [{labels.min()}, {labels.max()}]."
            )
