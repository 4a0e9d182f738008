"""The contracts between the parts of biobench (DESIGN.md, "Contracts shared by the five systems"), as code.

- :class:`DataSpec`: what a datamodule serves (channels, image size, the value range the model receives, classes
  and training identities where they exist). The entrypoints build every system from it.
- :class:`DataModule`, :class:`SubsetDataModule`: what the entrypoints and the pruning stage need of a datamodule.
- Systems: :class:`biobench.models.base.System` (a LightningModule base class, not a protocol: its declarations
  are class attributes the entrypoints read before building it).
- :class:`Recognizer`: anything that maps images to L2-normalised embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader


@dataclass(frozen=True)
class DataSpec:
    """What a datamodule serves to the model.

    ``image_size`` is ``(H, W)`` of the served images (``None`` when sizes vary). Images reach the model as
    ``(pixel - mean) / std`` per channel with pixels in [0, 1]: ``mean=0, std=1`` serves [0, 1] (codecs),
    ``mean=std=0.5`` serves [-1, 1] (GANs). ``num_classes`` is set where labels exist, ``num_identities`` (the
    number of *training* identities, e.g. fingers) where identities exist.
    """

    in_chans: int
    image_size: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int | None = None
    num_identities: int | None = None

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or len(self.mean) not in (1, self.in_chans):
            raise ValueError(
                f"DataSpec: mean and std need the same number of values, 1 or {self.in_chans}, got {self.mean} / "
                f"{self.std}."
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"DataSpec: std must be positive, got {self.std}.")

    @property
    def value_range(self) -> tuple[float, float]:
        """The (lowest, highest) value any channel of a served image can take."""
        lo = [(0.0 - m) / s for m, s in zip(self.mean, self.std, strict=True)]
        hi = [(1.0 - m) / s for m, s in zip(self.mean, self.std, strict=True)]
        return min(lo), max(hi)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return mean, std

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Served images ``[N, C, ...]`` back to pixels in [0, 1] (differentiable)."""
        mean, std = self._stats(x)
        return x * std + mean

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] ``[N, C, ...]`` to the served value range (differentiable)."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@runtime_checkable
class DataModule(Protocol):
    """A LightningDataModule as the entrypoints see it."""

    @property
    def spec(self) -> DataSpec: ...

    def data_hash(self) -> str:
        """Short content hash of the data (files, labels, generator settings, split) that keys caches."""
        ...

    def setup(self, stage: str | None = None) -> None: ...


@runtime_checkable
class SubsetDataModule(DataModule, Protocol):
    """A datamodule the pruning stage can prune: labelled training samples with a stable ``index``."""

    @property
    def train_labels(self) -> np.ndarray: ...

    def set_train_subset(self, indices: Sequence[int] | np.ndarray | None) -> None: ...

    def transform_settings(self) -> dict[str, Any]:
        """The train / eval transform settings (augmentation, normalisation) that caches of trained models key on."""
        ...

    def shuffled_train_loader(
        self, indices: np.ndarray | None = None, seed: int = 0, batch_size: int | None = None
    ) -> DataLoader:
        """Augmented training samples (default: all) in an order fixed by (seed, epoch): proxy training."""
        ...

    def train_eval_dataloader(self) -> DataLoader:
        """Every training sample in ``index`` order with eval transforms: features, scores, teacher logits."""
        ...


@runtime_checkable
class Recognizer(Protocol):
    """``embed(images [N, C, H, W]) -> [N, D]``, L2-normalised rows."""

    def embed(self, images: torch.Tensor) -> torch.Tensor: ...
