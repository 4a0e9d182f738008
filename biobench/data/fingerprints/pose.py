"""Joint pose augmentation of fingerprint batches: the image and its minutiae move by the same map, on device.

Why: a minutiae-map target drawn from unmoved minutiae under a rotated / shifted image teaches the guidance head
the wrong positions (the pitfall of the flx DeepPrint re-implementation). Here the minutiae are transformed with
the image, so a map drawn afterwards (:func:`~biobench.data.fingerprints.minutiae_map.minutiae_maps`) lands on them.

Geometry (the convention of :class:`~biobench.data.fingerprints.impression.ImpressionWarp`): in pixel coordinates
(pixel centres at integers, x right / y down, image centre ``c = ((W - 1) / 2, (H - 1) / 2)``) a point moves to
``p' = R(a) (p - c) + c + t`` with ``R(a) = [[cos a, -sin a], [sin a, cos a]]``. With y pointing down a positive
``a`` turns the print *clockwise on screen*, and a minutia direction ``angle = atan2(dy, dx)`` (same frame) becomes
``angle + a`` (mod 2 pi). (torchvision's ``rotate(img, a)`` turns counter-clockwise: it would need ``angle - a``.)
The image is resampled by the inverse map with ``grid_sample`` (bilinear, ``align_corners=False``, so pixel
centres map exactly), and what comes from outside the frame is the background ``fill`` -- a *normalised* value:
white paper is ``(1 - mean) / std`` (:func:`background_fill`), 1.0 for ``mean = std = 0.5``.

Partial prints: with probability ``crop_prob`` only an axis-aligned rectangle of the posed image is kept (each side
a uniform fraction in ``[crop_min_keep, 1]`` of the frame, placed uniformly), the rest is set to ``fill``. Minutiae
that leave the frame or fall in the removed part (or closer than ``margin`` px to its edge) are dropped and the
rows compacted: kept ones first in their original order, zero rows after, ``n_minutiae`` updated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def background_fill(mean: Sequence[float], std: Sequence[float], white: float = 1.0) -> tuple[float, ...]:
    """Normalised value of a ``white`` pixel (in [0, 1]) per channel: the fill for ``(pixel - mean) / std`` data."""
    return tuple((white - m) / s for m, s in zip(mean, std, strict=True))


@dataclass(frozen=True)
class Pose:
    """Per-sample pose parameters: ``rotation [B]`` degrees, ``shift [B, 2]`` px ``(dx, dy)``, ``box [B, 4]`` the
    kept rectangle ``(x0, y0, x1, y1)`` in whole pixels (``x0 <= x < x1``), the full frame where not cropped."""

    rotation: Tensor
    shift: Tensor
    box: Tensor


def sample_pose(
    batch_size: int,
    image_size: tuple[int, int],
    *,
    max_rotation: float = 15.0,
    max_translation: float = 25.0,
    crop_prob: float = 0.0,
    crop_min_keep: float = 0.6,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Pose:
    """Draw a :class:`Pose` per sample: rotation uniform in ``+-max_rotation`` deg, ``dx``, ``dy`` each uniform in
    ``+-max_translation`` px, a crop box with probability ``crop_prob`` (module docstring).

    The random numbers come from ``generator`` on its own device (the global RNG when ``None``), always in the same
    order and amount, so a seeded generator gives the same poses whatever the magnitudes.
    """
    if not 0.0 <= crop_prob <= 1.0 or not 0.0 < crop_min_keep <= 1.0:
        raise ValueError(
            f"sample_pose: need crop_prob in [0, 1] and crop_min_keep in (0, 1], got {crop_prob}, {crop_min_keep}."
        )
    h, w = image_size
    gen_device = generator.device if generator is not None else device
    u = torch.rand(batch_size, 8, generator=generator, device=gen_device).to(device)
    rotation = (2 * u[:, 0] - 1) * max_rotation
    shift = (2 * u[:, 1:3] - 1) * max_translation
    crop = u[:, 3] < crop_prob
    size = torch.tensor([w, h], device=u.device, dtype=torch.float32)
    kept = torch.where(crop[:, None], (crop_min_keep + (1 - crop_min_keep) * u[:, 4:6]) * size, size).round()
    start = ((size - kept) * u[:, 6:8]).floor()
    box = torch.cat([start, start + kept], dim=1).long()
    return Pose(rotation, shift, box)


def _warp_theta(rotation: Tensor, shift: Tensor, h: int, w: int) -> Tensor:
    """``affine_grid`` matrices ``[B, 2, 3]`` of the inverse map ``p = R^T (p' - c - t) + c`` in normalised coords.

    With ``align_corners=False`` a pixel coordinate is ``p = c + D n``, ``D = diag(W / 2, H / 2)``, so the inverse
    map is ``n = D^-1 R^T D n' - D^-1 R^T t``.
    """
    a = torch.deg2rad(rotation.float())
    cos, sin = torch.cos(a), torch.sin(a)
    rt = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # R^T, [B, 2, 2]
    d = torch.tensor([w / 2, h / 2], device=rotation.device)
    lin = rt * d[None, None, :] / d[None, :, None]
    off = -(rt @ shift.float()[..., None])[..., 0] / d
    return torch.cat([lin, off[..., None]], dim=-1)


def apply_pose(
    images: Tensor,
    minutiae: Tensor,
    n_minutiae: Tensor,
    rotation: Tensor | None = None,
    shift: Tensor | None = None,
    box: Tensor | None = None,
    *,
    fill: float | Sequence[float] = 1.0,
    margin: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Move ``images [B, C, H, W]`` and ``minutiae [B, M, 4]`` by ``rotation [B]`` deg and ``shift [B, 2]`` px,
    then keep ``box [B, 4]`` (module docstring); ``None`` skips that step. Returns new ``(images, minutiae,
    n_minutiae)``; the inputs are not modified."""
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"apply_pose: images must be a float [B, C, H, W] tensor, got {images.dtype} {tuple(images.shape)}."
        )
    if minutiae.ndim != 3 or minutiae.shape[-1] != 4 or minutiae.shape[0] != images.shape[0]:
        raise ValueError(
            f"apply_pose: minutiae must be [B, M, 4] with B={images.shape[0]}, got {tuple(minutiae.shape)}."
        )
    b, c, h, w = images.shape
    device = images.device
    fill_t = torch.as_tensor(fill, dtype=images.dtype, device=device).reshape(1, -1, 1, 1)
    if fill_t.shape[1] not in (1, c):
        raise ValueError(f"apply_pose: fill needs 1 or {c} values (one per channel), got {fill}.")
    xy, angle = minutiae[..., :2].float(), minutiae[..., 2].float()

    if rotation is not None or shift is not None:
        rotation = torch.zeros(b, device=device) if rotation is None else rotation.to(device)
        shift = torch.zeros(b, 2, device=device) if shift is None else shift.to(device)
        theta = _warp_theta(rotation, shift, h, w)
        grid = F.affine_grid(theta, [b, c, h, w], align_corners=False).to(images.dtype)
        images = F.grid_sample(images - fill_t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        images = images + fill_t  # outside the frame (and blended towards it at the edge): background
        a = torch.deg2rad(rotation.float())
        rot = torch.stack([torch.stack([a.cos(), -a.sin()], -1), torch.stack([a.sin(), a.cos()], -1)], -2)
        centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=device)
        xy = (xy - centre) @ rot.transpose(1, 2) + centre + shift.float()[:, None]
        angle = torch.remainder(angle + a[:, None], 2 * math.pi)

    if box is None:
        box = torch.tensor([0, 0, w, h], device=device).expand(b, 4)
    else:
        box = box.to(device)
        cols, rows = torch.arange(w, device=device), torch.arange(h, device=device)
        in_x = (cols >= box[:, 0:1]) & (cols < box[:, 2:3])  # [B, W]
        in_y = (rows >= box[:, 1:2]) & (rows < box[:, 3:4])  # [B, H]
        images = torch.where((in_y[:, :, None] & in_x[:, None, :])[:, None], images, fill_t)

    lo, hi = box[:, None, :2].float() - 0.5 + margin, box[:, None, 2:].float() - 0.5 - margin
    valid = torch.arange(minutiae.shape[1], device=device) < n_minutiae.to(device)[:, None]
    keep = valid & ((xy >= lo) & (xy < hi)).all(-1)
    rows_new = torch.cat([xy, angle[..., None], minutiae[..., 3:].float()], dim=-1).to(minutiae.dtype)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    rows_new = torch.gather(rows_new, 1, order[..., None].expand(-1, -1, 4))
    n_new = keep.sum(1)
    rows_new = rows_new * (torch.arange(minutiae.shape[1], device=device) < n_new[:, None])[..., None]
    return images, rows_new, n_new.to(n_minutiae.dtype)


def random_pose(
    images: Tensor,
    minutiae: Tensor,
    n_minutiae: Tensor,
    *,
    max_rotation: float = 15.0,
    max_translation: float = 25.0,
    crop_prob: float = 0.0,
    crop_min_keep: float = 0.6,
    generator: torch.Generator | None = None,
    fill: float | Sequence[float] = 1.0,
    margin: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`sample_pose` then :func:`apply_pose`; returns the inputs themselves when every magnitude is 0."""
    warp = max_rotation != 0 or max_translation != 0
    if not warp and crop_prob == 0:
        return images, minutiae, n_minutiae
    pose = sample_pose(
        images.shape[0], tuple(images.shape[-2:]), max_rotation=max_rotation, max_translation=max_translation,
        crop_prob=crop_prob, crop_min_keep=crop_min_keep, generator=generator, device=images.device,
    )  # fmt: skip
    return apply_pose(
        images, minutiae, n_minutiae, pose.rotation if warp else None, pose.shift if warp else None,
        pose.box if crop_prob > 0 else None, fill=fill, margin=margin,
    )  # fmt: skip


class PoseAugment(nn.Module):
    """Batch-dict pose augmentation for a LightningModule's ``on_after_batch_transfer`` / ``training_step``.

    Replaces ``image``, ``minutiae`` and ``n_minutiae`` (key names configurable) by their posed versions via
    :func:`random_pose`. Like dropout it acts only in training mode (``on_after_batch_transfer`` also runs for
    validation batches), and it is a no-op (the batch itself is returned) when every magnitude is 0. A batch
    without minutiae has only its images moved. ``fill`` is the normalised background (:func:`background_fill`).
    """

    def __init__(
        self,
        max_rotation: float = 15.0,
        max_translation: float = 25.0,
        crop_prob: float = 0.0,
        crop_min_keep: float = 0.6,
        fill: float | Sequence[float] = 1.0,
        margin: float = 0.0,
        image_key: str = "image",
        minutiae_key: str = "minutiae",
        count_key: str = "n_minutiae",
    ) -> None:
        super().__init__()
        self.options = {"max_rotation": max_rotation, "max_translation": max_translation, "crop_prob": crop_prob,
                        "crop_min_keep": crop_min_keep, "fill": fill, "margin": margin}  # fmt: skip
        self.keys = (image_key, minutiae_key, count_key)

    @property
    def active(self) -> bool:
        o = self.options
        return o["max_rotation"] != 0 or o["max_translation"] != 0 or o["crop_prob"] != 0

    def forward(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Any]:
        if not (self.training and self.active):
            return batch
        ik, mk, ck = self.keys
        images = batch[ik]
        has_minutiae = mk in batch
        if has_minutiae:
            minutiae, count = batch[mk], batch[ck]
        else:
            minutiae = images.new_zeros(images.shape[0], 0, 4)
            count = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        images, minutiae, count = random_pose(images, minutiae, count, generator=generator, **self.options)
        return batch | {ik: images} | ({mk: minutiae, ck: count} if has_minutiae else {})

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items())
