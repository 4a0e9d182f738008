"""Sample numbers instead of images, for systems that draw their own data from a seeded generator (FPGAN-Control's
controller labels generated prints): each split serves ``{"index": i}`` for ``i`` in ``0..n-1``, shuffled for
training, and a :class:`DataSpec` of the images the system will generate (their size, channels and [-1, 1] range).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from biobench.contracts import DataSpec
from biobench.utils.hashing import content_hash


class SampleNumbers(Dataset):
    """``{"index": i}`` for ``i`` in ``0..n-1``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(i)}


class LatentDataModule(pl.LightningDataModule):
    """``train`` / ``val`` / ``test`` sample numbers for a system that generates its own samples.

    Args:
        resolution / channels: of the generated images (the spec the system checks its generator against).
        train / val / test: samples per split.
        batch_size / num_workers: of every loader.
    """

    def __init__(self, resolution: int, channels: int = 1, train: int = 10_000, val: int = 512, test: int = 512,
                 batch_size: int = 256, num_workers: int = 0) -> None:  # fmt: skip
        super().__init__()
        if min(train, val, test) < 1 or batch_size < 1:
            raise ValueError(f"data: every split needs >= 1 sample and batch_size >= 1, got train={train}, "
                             f"val={val}, test={test}, batch_size={batch_size}.")  # fmt: skip
        self.resolution, self.channels = int(resolution), int(channels)
        self.sizes = {"train": int(train), "val": int(val), "test": int(test)}
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.channels, (self.resolution, self.resolution), (0.5,), (0.5,))

    def data_hash(self) -> str:
        return content_hash(type(self).__name__, self.resolution, self.channels, self.sizes)

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(SampleNumbers(self.sizes[split]), batch_size=self.batch_size, shuffle=split == "train",
                          num_workers=self.num_workers)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
