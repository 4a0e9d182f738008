"""The training-order sampler: a random order fixed by (seed, epoch), so resumed runs repeat their batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """Random order fixed by (seed, epoch), so a resumed run sees exactly the batches of an uninterrupted one.

    Lightning calls ``set_epoch`` before every training epoch. ``loader_generator`` (handed to the DataLoader
    for its worker seeds) is reseeded there too, so no loader ever draws from the global RNG.
    """

    def __init__(self, indices: Sequence[int] | np.ndarray, seed: int) -> None:
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
