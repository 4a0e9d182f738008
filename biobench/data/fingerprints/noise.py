"""Smooth random fields: the low-frequency variation behind density maps, distortion, pressure and backgrounds."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float, channels: int = 1) -> np.ndarray:
    """Zero-mean, unit-variance-ish random field varying on a length scale of about ``cell`` pixels.

    A coarse Gaussian grid (one value per ``cell`` pixels) upsampled bicubically: cheap, and smooth at any size.
    Returns ``[channels, H, W]`` float32 (``[H, W]`` when ``channels == 1``).
    """
    h, w = shape
    gh, gw = max(2, int(np.ceil(h / cell)) + 2), max(2, int(np.ceil(w / cell)) + 2)
    coarse = torch.from_numpy(rng.standard_normal((1, channels, gh, gw)).astype(np.float32))
    up = F.interpolate(coarse, size=(round(gh * h / (gh - 2)), round(gw * w / (gw - 2))), mode="bicubic")
    top, left = (up.shape[2] - h) // 2, (up.shape[3] - w) // 2
    field = up[0, :, top : top + h, left : left + w].numpy()
    return field[0] if channels == 1 else field
