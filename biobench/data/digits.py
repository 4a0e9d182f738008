"""scikit-learn's handwritten digits (1,797 real 8x8 images shipped inside the package): the embedded default."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from biobench.data.classification import ClassificationDataModule
from biobench.data.sources import ArraySource
from biobench.utils.hashing import content_hash


class DigitsDataModule(ClassificationDataModule):
    """Digits split into train / test by ``test_fraction`` and ``split_seed``; validation is carved from train."""

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"data.test_fraction must be in (0, 1), got {test_fraction}.")
        self.test_fraction = test_fraction

    @property
    def classes(self) -> list[str]:
        return [str(d) for d in range(10)]

    @property
    def image_size(self) -> int:
        return 8

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 8, 8)

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
        return images, digits.target.astype(np.int64)

    def _split_ids(self) -> dict[str, np.ndarray]:
        n = len(self._arrays[1])
        order = np.random.default_rng(self.split_seed + 7919).permutation(n)
        n_test = round(self.test_fraction * n)
        return {"test": np.sort(order[:n_test]), "train": np.sort(order[n_test:])}

    def load_split(self, split: str) -> tuple[ArraySource, dict[str, np.ndarray]]:
        images, labels = self._arrays
        ids = self._split_ids()[split]
        return ArraySource(images[ids]), {"label": labels[ids]}

    def describe_content(self) -> Any:
        images, labels = self._arrays
        return {"digits": content_hash(images, labels), "test_fraction": self.test_fraction}
