"""Classification on top of the image-datamodule base: classes, a ``label`` per sample, label checks, label noise.

``label_noise`` flips a seeded fraction of the training labels to another class (validation and test labels stay
clean), to study pruning and distillation under noise; the flipped training indices are kept in ``noisy_indices``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from biobench.data.base import ImageDataModule


class ClassificationDataModule(ImageDataModule):
    """An image datamodule whose samples carry a ``label`` in ``[0, num_classes)``.

    Subclasses implement ``classes`` besides the base's hooks, and serve ``label`` among the fields of
    :meth:`load_split`.
    """

    def __init__(self, label_noise: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= label_noise < 1.0:
            raise ValueError(f"data.label_noise must be in [0, 1), got {label_noise}.")
        self.label_noise = label_noise
        self.noisy_indices = np.empty(0, dtype=np.int64)

    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """Class names, in label order."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def open_set_eval(self) -> bool:
        """True when validation / test samples belong to classes training never sees (identities): their labels
        are then ids within their own split, not training classes, so labels are not checked against ``classes``
        (the train pool holds the validation samples too); the subclass makes training labels dense."""
        return False

    @property
    def train_labels(self) -> np.ndarray:
        """Labels of all training samples, by ``index``."""
        self.setup("fit")
        return self.train_set.values("label")

    def hash_parts(self) -> list[Any]:
        """The base's parts with the classes after the content and the label noise last (where clean data has
        always had it: hashes, and the caches keyed by them, stay valid)."""
        content, *split = super().hash_parts()
        noise = [self.label_noise] if self.label_noise else []
        return [content, self.classes, *split, *noise]

    def check_split(self, split: str, source: Any, fields: dict[str, np.ndarray]) -> None:
        super().check_split(split, source, fields)
        name = type(self).__name__
        if "label" not in fields:
            raise ValueError(f"{name}.load_split('{split}') serves no 'label' field (got {sorted(fields)}).")
        if self.open_set_eval:
            return
        labels = np.asarray(fields["label"])
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"{name}: {split} labels must lie in [0, {self.num_classes}), got [{labels.min()}, {labels.max()}]."
            )

    def training_fields(self, fields: dict[str, np.ndarray], train_ids: np.ndarray) -> dict[str, np.ndarray]:
        """``fields`` where a ``label_noise`` fraction of the training samples carries another class."""
        labels = np.asarray(fields["label"], dtype=np.int64).copy()
        rng = np.random.default_rng([self.split_seed, 104729])
        flip = np.sort(rng.choice(len(train_ids), round(self.label_noise * len(train_ids)), replace=False))
        shift = rng.integers(1, self.num_classes, len(flip))  # never the true class
        labels[train_ids[flip]] = (labels[train_ids[flip]] + shift) % self.num_classes
        self.noisy_indices = flip
        return fields | {"label": labels}
