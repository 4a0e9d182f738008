"""Image transforms built from plain config values (uint8 tensor in, normalised float tensor out)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2


def build_transform(
    mean: Sequence[float],
    std: Sequence[float],
    train: bool = False,
    crop_padding: int = 0,
    hflip: bool = False,
    image_size: int | None = None,
) -> v2.Compose:
    """Eval transform = scale + normalise; the train transform adds the configured augmentations.

    ``crop_padding > 0`` adds a random crop of the original size from a reflect-padded image (CIFAR-style; zero
    padding trained the CIFAR-10 subset's short runs up to 3 points worse, docs/pruning.md, Training recipe);
    ``hflip`` adds random horizontal flips.
    """
    ops: list[v2.Transform] = []
    if train and crop_padding > 0:
        if image_size is None:
            raise ValueError("build_transform: crop_padding needs image_size.")
        ops.append(v2.RandomCrop(image_size, padding=crop_padding, padding_mode="reflect"))
    if train and hflip:
        ops.append(v2.RandomHorizontalFlip())
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)
