"""Distortion measures of decoded images: PSNR and MS-SSIM per image of a batch ``[N, C, H, W]`` of float images
in ``[0, data_range]`` (grey: ``C = 1``; RGB: ``C = 3``, MS-SSIM averaged over channels). Both are differentiable,
so MS-SSIM also serves as a training distortion.

MS-SSIM is ``pytorch_msssim``'s (Wang et al. 2003: five scales, weights ``(0.0448, 0.2856, 0.3001, 0.2363,
0.1333)``, an 11-px Gaussian window of sigma 1.5, "valid" filtering). Its four 2x downsamplings need the smaller
image side to exceed ``(win_size - 1) * 16`` (160 px for the standard window). Smaller images raise a ValueError
that names :func:`ms_ssim_window`, the largest odd window that fits; a smaller window keeps the five scales and
their weights but gives values that are not comparable with the standard 11-px MS-SSIM, so it is never chosen
silently.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _ms_ssim

MS_SSIM_WINDOW = 11
_DOWNSAMPLINGS = 4


def _check_pair(name: str, x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` as float32, still differentiable, after checking shapes and that the values fit ``data_range``
    (within 1 % of it, so float noise around 0 and 1 passes but 0-255 images with ``data_range=1`` do not)."""
    if x.shape != y.shape or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{name}: needs two batches [N, C, H, W] of the same shape with C = 1 or 3, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}.")  # fmt: skip
    if not data_range > 0:
        raise ValueError(f"{name}: data_range must be positive, got {data_range}.")
    x, y = x.float(), y.float()
    with torch.no_grad():
        low, high = float(torch.minimum(x.min(), y.min())), float(torch.maximum(x.max(), y.max()))
    if low < -0.01 * data_range or high > 1.01 * data_range:
        raise ValueError(f"{name}: values must lie in [0, {data_range}] (data_range), got [{low:.4g}, {high:.4g}]; "
                         "pass float images scaled to [0, 1], or the right data_range.")  # fmt: skip
    return x, y


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB of each image pair, ``[N]``: ``10 log10(data_range^2 / MSE)`` with the MSE over C, H and W
    (``inf`` for identical images)."""
    x, y = _check_pair("psnr", x, y, data_range)
    mse = (x - y).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def ms_ssim_window(side: int) -> int:
    """The largest odd Gaussian window (at most the standard 11, at least 3) with which five-scale MS-SSIM fits an
    image whose smaller side is ``side`` px: ``(win_size - 1) * 16 < side``."""
    window = min(MS_SSIM_WINDOW, (side - 1) // 2**_DOWNSAMPLINGS + 1)
    window -= 1 - window % 2
    if window < 3:
        raise ValueError(f"MS-SSIM: images with a {side}-px side are too small for five scales (more than 32 px "
                         "per side needed even with a 3-px window); use PSNR.")  # fmt: skip
    return window


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = MS_SSIM_WINDOW) -> torch.Tensor:
    """Five-scale MS-SSIM of each image pair, ``[N]`` (see the module docstring for the size limit and
    ``win_size``)."""
    x, y = _check_pair("ms_ssim", x, y, data_range)
    side = min(x.shape[-2:])
    if win_size % 2 != 1 or win_size < 3:
        raise ValueError(f"ms_ssim: win_size must be an odd integer >= 3, got {win_size}.")
    if side <= (win_size - 1) * 2**_DOWNSAMPLINGS:
        raise ValueError(
            f"ms_ssim: five scales with a {win_size}-px window need the smaller image side to exceed "
            f"{(win_size - 1) * 2**_DOWNSAMPLINGS} px, got {tuple(x.shape[-2:])}; pass win_size="
            f"{ms_ssim_window(side)} (ms_ssim_window({side})), whose values are not comparable with the standard "
            f"{MS_SSIM_WINDOW}-px MS-SSIM, or use PSNR."
        )
    return _ms_ssim(x, y, data_range=data_range, size_average=False, win_size=win_size)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """A uint8 image ``H x W`` (grey) or ``H x W x 3`` (RGB) as a float batch ``[1, C, H, W]`` in ``[0, 1]``."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image_to_tensor: needs a uint8 image H x W or H x W x 3, got {image.dtype} {image.shape}.")
    pixels = torch.from_numpy(image.copy()).float().div(255)
    return (pixels[None] if image.ndim == 2 else pixels.permute(2, 0, 1))[None]
