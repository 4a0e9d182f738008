"""Losses of the IPR codec: rate + lambda * distortion (CompressAI's conventions) and the identity-preserving term.

- rate: estimated bits per pixel, ``sum(-log2 likelihoods) / pixels`` over every entropy model's likelihoods;
- distortion: ``lambda * 255^2 * MSE`` (``mse``) or ``lambda * (1 - MS-SSIM)`` (``ms-ssim``), images in [0, 1];
- IPR: the distance between a frozen Recognizer's embeddings of the input and of the reconstruction (``cosine``:
  ``1 - cos``, ``l2``: squared Euclidean of the L2-normalised embeddings, i.e. ``2 - 2 cos``), gradients flowing
  through the Recognizer into the codec. The paper's exact formula is not public (docs/ipr.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from biobench.contracts import Recognizer
from biobench.metrics.compression.quality import ms_ssim, ms_ssim_window

DISTORTIONS = ("mse", "ms-ssim")
IPR_DISTANCES = ("cosine", "l2")
MS_SSIM_MIN_SIDE = 32  # five-scale MS-SSIM needs a smaller side above this even with its smallest (3-px) window


def bits_per_pixel_estimate(likelihoods: dict[str, torch.Tensor], num_pixels: int) -> torch.Tensor:
    """Estimated rate of a batch in bits per pixel: ``sum(-log2 p) / (N * H * W)``."""
    return sum(torch.log(p).sum() for p in likelihoods.values()) / (-math.log(2) * num_pixels)


def ms_ssim_fitted(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Five-scale MS-SSIM per image with the largest window the size allows (the standard 11 px from 161 px per side;
    smaller crops use a smaller window, so their values are not comparable with the standard MS-SSIM)."""
    return ms_ssim(x, y, win_size=ms_ssim_window(min(x.shape[-2:])))


class RateDistortionLoss(nn.Module):
    """``bpp + lmbda * D`` (CompressAI's ``RateDistortionLoss``); returns the parts as well."""

    def __init__(self, lmbda: float = 0.01, distortion: str = "mse") -> None:
        super().__init__()
        if distortion not in DISTORTIONS:
            raise ValueError(f"model.loss.distortion='{distortion}' is not one of {DISTORTIONS}.")
        if lmbda <= 0:
            raise ValueError(f"model.loss.lmbda must be > 0, got {lmbda}.")
        self.lmbda, self.distortion = float(lmbda), distortion

    def forward(self, output: dict, target: torch.Tensor) -> dict[str, torch.Tensor]:
        n, _, h, w = target.shape
        bpp = bits_per_pixel_estimate(output["likelihoods"], n * h * w)
        x_hat = output["x_hat"]
        mse = torch.mean((x_hat - target) ** 2)
        mse_term = self.distortion == "mse"
        distortion = 255.0**2 * mse if mse_term else 1.0 - ms_ssim_fitted(x_hat.clamp(0, 1), target).mean()
        return {"loss": bpp + self.lmbda * distortion, "bpp": bpp, "mse": mse, "distortion": distortion}


def identity_distance(
    recognizer: Recognizer, reconstruction: torch.Tensor, target: torch.Tensor, distance: str = "cosine"
) -> torch.Tensor:
    """Mean distance between a frozen Recognizer's embeddings of ``target`` and of ``reconstruction`` (served images).

    The target's embedding carries no gradient (it is the fixed identity to keep); the reconstruction's flows back
    through the Recognizer into whatever produced it.
    """
    if distance not in IPR_DISTANCES:
        raise ValueError(f"model.ipr.distance='{distance}' is not one of {IPR_DISTANCES}.")
    with torch.no_grad():
        reference = recognizer.embed(target)
    cos = (recognizer.embed(reconstruction) * reference).sum(dim=1)
    return (1.0 - cos).mean() if distance == "cosine" else (2.0 - 2.0 * cos).mean()
