"""CIFAR-10 / CIFAR-100 read from torchvision's on-disk format under ``data_dir``.

CIFAR-10: ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``; CIFAR-100:
``cifar-100-python/{train, test, meta}`` (pickled dicts with ``data`` as ``uint8 [N, 3072]``).
Nothing is downloaded unless ``download=true``.
"""

from __future__ import annotations

import pickle
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from biobench.data.classification import ClassificationDataModule
from biobench.data.sources import ArraySource
from biobench.utils.hashing import content_hash

LAYOUT = {
    10: {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": "labels",
        "names": "label_names",
    },
    100: {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": "fine_labels",
        "names": "fine_label_names",
    },
}


class CIFARDataModule(ClassificationDataModule):
    """CIFAR-10 (``variant=10``) or CIFAR-100 (``variant=100``) in torchvision's folder layout."""

    def __init__(self, data_dir: str, variant: int = 10, download: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if variant not in LAYOUT:
            raise ValueError(f"data.variant must be 10 or 100, got {variant}.")
        self.data_dir = Path(data_dir)
        self.variant = variant
        self.download = download

    @property
    def image_size(self) -> int:
        return 32

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, 32, 32)

    def prepare_data(self) -> None:
        if self.download:
            from torchvision.datasets import CIFAR10, CIFAR100

            (CIFAR10 if self.variant == 10 else CIFAR100)(str(self.data_dir), download=True)

    def _unpickle(self, name: str) -> dict[str, Any]:
        path = self.data_dir / LAYOUT[self.variant]["folder"] / name
        if not path.is_file():
            raise FileNotFoundError(
                f"CIFAR-{self.variant} not found under data.data_dir='{self.data_dir}': expected torchvision's folder "
                f"'{LAYOUT[self.variant]['folder']}' with '{name}'. Point data.data_dir at it, or set "
                "data.download=true on a machine with internet."
            )
        try:
            with open(path, "rb") as f:
                return pickle.load(f, encoding="latin1")
        except Exception as err:
            raise ValueError(f"CIFAR file '{path}' cannot be read: {err}") from err

    @cached_property
    def _data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{split: (images uint8 [N, 3, 32, 32], labels)}``."""
        layout = LAYOUT[self.variant]
        splits = {}
        for split in ("train", "test"):
            batches = [self._unpickle(name) for name in layout[split]]
            try:
                images = np.concatenate([np.asarray(b["data"], np.uint8).reshape(-1, 3, 32, 32) for b in batches])
                labels = np.concatenate([np.asarray(b[layout["labels"]], np.int64) for b in batches])
            except (KeyError, ValueError) as err:
                raise ValueError(
                    f"CIFAR-{self.variant} {split} files under '{self.data_dir}' are malformed: {err}"
                ) from err
            splits[split] = (images, labels)
        return splits

    @cached_property
    def classes(self) -> list[str]:
        """Class names from the small meta file alone (no image batch is read)."""
        layout = LAYOUT[self.variant]
        return list(self._unpickle(layout["meta"])[layout["names"]])

    def load_split(self, split: str) -> tuple[ArraySource, dict[str, np.ndarray]]:
        images, labels = self._data[split]
        return ArraySource(images), {"label": labels}

    def describe_content(self) -> Any:
        return {split: content_hash(*arrays) for split, arrays in self._data.items()}
