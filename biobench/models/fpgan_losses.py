"""FPGAN-Control's disentanglement losses: GAN-Control's contrastive hinge on pair batches of generated images.

**Pair batch** (GAN-Control's layout, :func:`pair_batch`): ``B`` images (a multiple of 4) are ``B/2`` consecutive
pairs ``(2i, 2i+1)``. The first ``B/4`` pairs share ``z_id`` and the identity's per-layer noise and nothing else
(fresh ``z_app``); the last ``B/4`` share ``z_app`` and nothing else (fresh ``z_id`` and noise). Batch 16 = 8
pairs: 4 identity pairs, 4 appearance pairs. **Different** pairs are every other pair ``i < j`` of the batch, as
GAN-Control's ``loss_model`` takes them (all lower-triangle entries outside the same-pair mask): for identity every
pair except the identity pairs (the appearance pairs and all cross-pair combinations have different ``z_id``), for
appearance every pair except the appearance pairs. Batch 16: 4 same and 116 different pairs per group.

**Losses** (in the G step only, on the un-augmented generated batch clamped to [-1, 1] straight-through
(:func:`clamp_straight_through`); weights ``w_id`` / ``w_app``):

- :func:`contrastive_hinge`: ``mean relu(d_same - tau_low) + mean relu(tau_high - d_diff)``;
- identity: ``d`` = squared L2 distance of the frozen Recognizer's L2-normalised embeddings (``2 - 2 cos``, in
  [0, 4]; :func:`identity_distances`);
- appearance: ``d`` = MSE between :func:`appearance_thumbnails` (Gaussian blur, then area downsampling: ridge detail
  gone, contact area, position, brightness and contrast kept; :func:`appearance_distances`).

**Thresholds** (:func:`hinge_thresholds`, our reading of GAN-Control's "chosen from same / not-same histograms"):
identity ``tau_low`` = the median of real same-finger distances, ``tau_high`` = the 10 % quantile of real
different-finger distances (on a CPU embedder here: 0.57 / 1.65; GAN-Control's ArcFace: 0.5 / 1.8). Real data has
no same-appearance pairs (every real impression has its own appearance), so for appearance both come from the
distances of all real pairs: ``tau_low`` a low quantile (1 %), ``tau_high`` the 10 % quantile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from biobench.contracts import Recognizer
from biobench.models.nets.fpgan_generator import FPGANGenerator


@dataclass(frozen=True)
class PairBatch:
    """Latents of a pair batch (module docstring) and its pairs.

    ``pairs [P, 2]``: every ``i < j`` of the batch; ``same_id`` / ``same_app [P]``: the pairs sharing ``z_id``
    (+ noise) / ``z_app``; the rest are the different pairs of each group.
    """

    z_id: torch.Tensor
    z_app: torch.Tensor
    noise: list[torch.Tensor]
    pairs: torch.Tensor
    same_id: torch.Tensor
    same_app: torch.Tensor


def _randn(shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """``N(0, 1)`` of ``shape`` drawn on the generator's device, returned on ``device``."""
    draw_on = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=draw_on).to(device)


def pair_batch(g: FPGANGenerator, batch: int, generator: torch.Generator | None = None) -> PairBatch:
    """Latents and noise of ``batch`` images (a multiple of 4) in GAN-Control's pair layout (module docstring)."""
    if batch < 4 or batch % 4:
        raise ValueError(f"A pair batch needs a multiple of 4 images (identity and appearance pairs), got {batch}.")
    device = g.const.device
    z_id = _randn((batch, g.identity_dim), device, generator)
    z_app = _randn((batch, g.appearance_dim), device, generator)
    noise = g.make_noise(batch, generator)
    id_first = torch.arange(0, batch // 2, 2, device=device)  # first image of each identity pair
    app_first = torch.arange(batch // 2, batch, 2, device=device)
    z_id[id_first + 1] = z_id[id_first]
    z_app[app_first + 1] = z_app[app_first]
    for n in noise:
        n[id_first + 1] = n[id_first]
    pairs = torch.triu_indices(batch, batch, offset=1, device=device).T
    adjacent = (pairs[:, 1] == pairs[:, 0] + 1) & (pairs[:, 0] % 2 == 0)
    return PairBatch(z_id, z_app, noise, pairs, adjacent & (pairs[:, 0] < batch // 2),
                     adjacent & (pairs[:, 0] >= batch // 2))  # fmt: skip


def contrastive_hinge(
    distances_same: torch.Tensor,
    distances_diff: torch.Tensor,
    tau_low: float | torch.Tensor,
    tau_high: float | torch.Tensor,
) -> torch.Tensor:
    """``mean relu(d_same - tau_low) + mean relu(tau_high - d_diff)``: 0 when every same pair is below ``tau_low``
    and every different pair above ``tau_high``."""
    return F.relu(distances_same - tau_low).mean() + F.relu(tau_high - distances_diff).mean()


def clamp_straight_through(images: torch.Tensor, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """``images`` clamped to ``[low, high]`` in the forward pass, unchanged in the backward pass: the losses see what
    an exported sample shows, and pixels the linear generator overshoots (about half at initialisation) still get a
    gradient, which a plain clamp would zero."""
    return images + (images.clamp(low, high) - images).detach()


def identity_distances(recognizer: Recognizer, images: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """``|e_i - e_j|^2`` of the Recognizer's normalised embeddings for every pair ``(i, j)`` of ``pairs [P, 2]``;
    each image is embedded once. Differentiable w.r.t. ``images``."""
    e = recognizer.embed(images)
    return (e[pairs[:, 0]] - e[pairs[:, 1]]).square().sum(dim=1)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps over ``+-ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def appearance_thumbnails(images: torch.Tensor, sigma: float, size: int) -> torch.Tensor:
    """``[N, C, size, size]``: a separable Gaussian blur of ``sigma`` pixels (edges replicated) followed by area
    downsampling. Both keep constants and are differentiable; together they remove ridges whose period is well
    below ``sigma`` (attenuation ``exp(-2 pi^2 sigma^2 / period^2)``)."""
    if sigma <= 0 or size < 1:
        raise ValueError(f"appearance_thumbnails needs sigma > 0 and size >= 1, got {sigma} and {size}.")
    n, c, h, w = images.shape
    k = gaussian_kernel(sigma).to(images)
    r = len(k) // 2
    x = images.reshape(n * c, 1, h, w)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return F.interpolate(x, size=(size, size), mode="area").reshape(n, c, size, size)


def appearance_distances(thumbnails: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the thumbnails of every pair ``(i, j)`` of ``pairs [P, 2]``."""
    return (thumbnails[pairs[:, 0]] - thumbnails[pairs[:, 1]]).square().flatten(1).mean(dim=1)


def hinge_thresholds(
    same: np.ndarray | torch.Tensor, different: np.ndarray | torch.Tensor, same_quantile: float, diff_quantile: float
) -> tuple[float, float]:
    """``(tau_low, tau_high)`` = the ``same_quantile`` of the same-pair distances and the ``diff_quantile`` of the
    different-pair distances of real data (module docstring)."""
    same, different = (np.asarray(torch.as_tensor(d).double().cpu()).ravel() for d in (same, different))
    if not len(same) or not len(different):
        raise ValueError(
            f"Threshold calibration needs same and different pairs of real images, got {len(same)} and "
            f"{len(different)} (identity: >= 2 impressions of some training fingers); or set the thresholds "
            "(model.losses.tau_id / tau_app)."
        )
    return float(np.quantile(same, same_quantile)), float(np.quantile(different, diff_quantile))
