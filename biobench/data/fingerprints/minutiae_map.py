"""DeepPrint-style minutiae maps: the target of an embedder's auxiliary minutiae-guidance head.

A map is ``[channels, h, w]``: channel ``k`` stands for the minutia direction ``2 pi k / channels`` and every
minutia adds a Gaussian blob (``sigma`` map pixels, cut to zero beyond ``truncate * sigma``) to the channels near
its direction; overlapping blobs are summed and the map clipped to ``[0, 1]`` (DeepPrint as the open flx
re-implementation draws it: 128 x 128 x 6, sigma 1.5, radius 2 sigma).

Conventions. Positions and angles are those of :mod:`biobench.data.fingerprints.minutiae`: pixels of the served
image, pixel centres at integers, x right / y down, ``angle = atan2(dy, dx)`` in that frame (so on screen the angle
turns clockwise). Positions go to map pixels with the pixel-centre rule of :meth:`Minutiae.scaled`
(``(x + 0.5) * w / W - 0.5``), x and y scaled separately so the map covers the whole image like the patch-token
grid does; the angle goes through the same scaling (unchanged when ``W / w == H / h``). Blob centres stay
sub-pixel (flx rounds them to integers), so a pixel-exact image transform maps to the same map transform.
A minutia whose nearest pixel lies outside the image, and every padded row (index ``>= n_minutiae``), adds nothing.

Orientation weighting (``weighting``):

- ``"linear"`` (default, our choice): linear interpolation between the two channel angles either side of the
  direction over the full circle, ``weight_k = max(0, 1 - |d_k| / (2 pi / channels))`` with ``d_k`` the wrapped
  angle difference. The weights sum to 1, a minutia exactly on a channel angle lights only that channel with a
  peak of 1, and the direction is recoverable from the ratio of the two lit channels.
- ``"softmax"`` (flx's reading of DeepPrint): ``softmax_k(-|d_k|)`` with ``d_k`` in radians: every channel gets
  some weight (0.50 on the nearest one for 6 channels), so no blob reaches 1.

The blobs are drawn on a ``(2r + 1)^2`` window around each minutia (``r = ceil(truncate * sigma + 0.5)``) and
scattered into the map, so memory is ``O(B * M * channels * (2r + 1)^2)`` whatever the map size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

WEIGHTINGS = ("linear", "softmax")


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def orientation_weights(angle: Tensor, channels: int = 6, weighting: str = "linear") -> Tensor:
    """``[..., channels]`` weights of directions ``angle [...]`` (radians) over the channel angles ``2 pi k / C``."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"minutiae map weighting must be one of {WEIGHTINGS}, got '{weighting}'.")
    step = 2 * math.pi / channels
    centres = torch.arange(channels, device=angle.device, dtype=angle.dtype) * step
    diff = torch.remainder(angle[..., None] - centres + math.pi, 2 * math.pi) - math.pi  # wrapped to [-pi, pi)
    if weighting == "linear":
        return (1 - diff.abs() / step).clamp_min(0)
    return torch.softmax(-diff.abs(), dim=-1)


def minutiae_maps(
    minutiae: Tensor,
    n_minutiae: Tensor,
    image_size: tuple[int, int],
    map_size: int | tuple[int, int] = 128,
    channels: int = 6,
    sigma: float = 1.5,
    truncate: float = 2.0,
    weighting: str = "linear",
) -> Tensor:
    """Minutiae maps ``[B, channels, h, w]`` float32 of ``minutiae [B, M, 4]`` rows ``(x, y, angle, kind)``.

    ``n_minutiae [B]`` counts the valid leading rows, ``image_size`` is the ``(H, W)`` the coordinates refer to,
    ``map_size`` the map's ``(h, w)`` (an int for a square map); ``sigma`` and the cut-off radius
    ``truncate * sigma`` are in map pixels. See the module docstring for the conventions and ``weighting``.
    """
    if minutiae.ndim != 3 or minutiae.shape[-1] != 4:
        raise ValueError(
            f"minutiae_maps: minutiae must be [B, M, 4] rows (x, y, angle, kind), got {tuple(minutiae.shape)}."
        )
    if sigma <= 0 or truncate <= 0 or channels < 1:
        raise ValueError(
            f"minutiae_maps: need sigma > 0, truncate > 0, channels >= 1; got {sigma}, {truncate}, {channels}."
        )
    (H, W), (h, w) = _pair(image_size), _pair(map_size)
    b, m = minutiae.shape[:2]
    device = minutiae.device
    out = torch.zeros(b, channels, h * w, device=device, dtype=torch.float32)
    if m == 0 or b == 0:
        return out.view(b, channels, h, w)

    rows = minutiae.float()
    x, y = rows[..., 0], rows[..., 1]
    valid = torch.arange(m, device=device) < n_minutiae.to(device)[:, None]
    valid &= (x >= -0.5) & (x < W - 0.5) & (y >= -0.5) & (y < H - 0.5)  # nearest pixel inside the image
    x, y, angle = (torch.where(valid, v, 0.0) for v in rows[..., :3].unbind(-1))  # padding may hold anything
    sx, sy = w / W, h / H
    cx, cy = (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5
    if sx != sy:
        angle = torch.atan2(sy * torch.sin(angle), sx * torch.cos(angle))
    weight = orientation_weights(angle, channels, weighting) * valid[..., None]  # [B, M, C]

    r = math.ceil(truncate * sigma + 0.5)
    offs = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    px = (cx.round()[..., None] + offs)[..., None, :]  # [B, M, 1, K]
    py = (cy.round()[..., None] + offs)[..., :, None]  # [B, M, K, 1]
    d2 = (px - cx[..., None, None]) ** 2 + (py - cy[..., None, None]) ** 2  # [B, M, K, K]
    blob = torch.exp(-d2 / (2 * sigma**2)) * (d2 <= (truncate * sigma) ** 2)
    blob = blob * ((px >= 0) & (px < w) & (py >= 0) & (py < h))
    index = (py.clamp(0, h - 1) * w + px.clamp(0, w - 1)).long().reshape(b, 1, -1)  # [B, 1, M*K*K]
    values = (weight.permute(0, 2, 1)[..., None, None] * blob[:, None]).reshape(b, channels, -1)  # [B, C, M*K*K]
    out.scatter_add_(2, index.expand(b, channels, -1), values)
    return out.clamp_(0, 1).view(b, channels, h, w)
