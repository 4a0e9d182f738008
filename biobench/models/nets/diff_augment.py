"""Differentiable augmentation (DiffAugment, Zhao et al., NeurIPS 2020) for grayscale GAN training.

Applied to real and generated images alike before the discriminator, so D never sees un-augmented data and G's
gradient flows through the augmentation. Every op draws its randomness per sample from an optional
``torch.Generator`` (reproducible) and is differentiable w.r.t. the images:

- ``brightness``: add ``U(-0.5, 0.5)`` (DiffAugment's range on [-1, 1] images);
- ``contrast``: scale the deviation from the image's mean by ``U(0.5, 1.5)``;
- ``translation``: shift by up to ``ratio`` (1/8) of the side per axis, zero-filled (no wrap-around);
- ``cutout``: zero a square of ``ratio`` (1/2) of the side at a random centre (clipped at the borders).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("brightness", "contrast", "translation", "cutout")


def _rand(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``U(0, 1)`` of ``shape``, drawn on the generator's device, returned on ``like``'s."""
    draw_on = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=draw_on, dtype=like.dtype).to(like.device)


def _randint(low: int, high: int, n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` integers in ``[low, high]``, drawn on the generator's device, returned on ``like``'s."""
    draw_on = generator.device if generator is not None else like.device
    return torch.randint(low, high + 1, (n,), generator=generator, device=draw_on).to(like.device)


def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add ``U(-0.5, 0.5)`` per sample."""
    return x + (_rand((x.shape[0], 1, 1, 1), x, generator) - 0.5)


def contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each sample's deviation from its mean by ``U(0.5, 1.5)``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((x.shape[0], 1, 1, 1), x, generator) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample integer shift in ``[-ratio * side, ratio * side]`` on each axis, zero-filled."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy, dx = _randint(-sy, sy, n, x, generator), _randint(-sx, sx, n, x, generator)
    padded = F.pad(x, (sx, sx, sy, sy)).permute(0, 2, 3, 1)  # [N, H + 2 sy, W + 2 sx, C]
    rows = torch.arange(h, device=x.device)[None, :] + sy - dy[:, None]  # source row of each output row
    cols = torch.arange(w, device=x.device)[None, :] + sx - dx[:, None]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a ``(ratio h) x (ratio w)`` square centred anywhere in the image (per sample)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = _randint(0, h - 1, n, x, generator) - ch // 2
    left = _randint(0, w - 1, n, x, generator) - cw // 2
    rows = torch.arange(h, device=x.device)[None, :] - top[:, None]  # [N, H], inside where 0 <= . < ch
    cols = torch.arange(w, device=x.device)[None, :] - left[:, None]
    inside = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


def diff_augment(
    x: torch.Tensor,
    policy: Sequence[str] | str = AUGMENTATIONS,
    generator: torch.Generator | None = None,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
) -> torch.Tensor:
    """Apply the ops named in ``policy`` in order: any of :data:`AUGMENTATIONS`, as a list or a comma-separated
    string (``"translation,cutout"``); empty: identity."""
    if isinstance(policy, str):
        policy = [p.strip() for p in policy.split(",") if p.strip()]
    ops = {
        "brightness": partial(brightness, generator=generator),
        "contrast": partial(contrast, generator=generator),
        "translation": partial(translation, ratio=translation_ratio, generator=generator),
        "cutout": partial(cutout, ratio=cutout_ratio, generator=generator),
    }
    unknown = [p for p in policy if p not in ops]
    if unknown:
        raise ValueError(f"DiffAugment policy {unknown} not among {AUGMENTATIONS}.")
    for op in policy:
        x = ops[op](x)
    return x
