"""CIFAR-10 / CIFAR-100 read from torchvision's on-disk format (``cifar-10-batches-py`` under ``data_dir``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100

from biobench.data.base import ClassificationDataModule
from biobench.data.sources import ArraySource
from biobench.utils.hashing import content_hash


class CIFARDataModule(ClassificationDataModule):
    """CIFAR-10 (``variant=10``) or CIFAR-100 (``variant=100``); nothing is downloaded unless ``download=true``."""

    def __init__(self, data_dir: str, variant: int = 10, download: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if variant not in (10, 100):
            raise ValueError(f"data.variant must be 10 or 100, got {variant}.")
        self.data_dir = Path(data_dir)
        self.variant = variant
        self.download = download

    @property
    def image_size(self) -> int:
        return 32

    def _dataset(self, train: bool) -> CIFAR10:
        cls = CIFAR10 if self.variant == 10 else CIFAR100
        try:
            return cls(str(self.data_dir), train=train, download=self.download)
        except RuntimeError as err:
            raise FileNotFoundError(
                f"CIFAR-{self.variant} not found under data.data_dir='{self.data_dir}': expected torchvision's "
                f"folder '{cls.base_folder}' with its batch files. Point data.data_dir at it, or set "
                "data.download=true on a machine with internet."
            ) from err

    @cached_property
    def _data(self) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
        """``({split: (images [N, 3, 32, 32], labels)}, class names)``."""
        splits = {}
        for split in ("train", "test"):
            ds = self._dataset(train=split == "train")
            splits[split] = (np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, np.int64))
        return splits, list(ds.classes)

    @property
    def classes(self) -> list[str]:
        return self._data[1]

    def load_split(self, split: str) -> tuple[ArraySource, np.ndarray]:
        images, labels = self._data[0][split]
        return ArraySource(images), labels

    def identity(self) -> Any:
        return {split: content_hash(*arrays) for split, arrays in self._data[0].items()}
