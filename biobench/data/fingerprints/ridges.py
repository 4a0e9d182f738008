"""Ridge pattern by iterative space-variant Gabor filtering (SFinGe's growth), vectorised with a filter bank.

Each pixel should be filtered by a Gabor filter tuned to its own ridge direction and period. Instead of one
filter per pixel, the whole image is filtered in the Fourier domain by a bank of ``n_angles x n_periods`` filters
(one batched FFT), and every pixel takes the bilinear blend of the four bank responses nearest to its direction and
period. Starting from a few random seed spots, every iteration filters, normalises and saturates the image: the
ridge pattern grows outwards from the seeds along the orientation field, and where growth fronts meet with
different phase, endings and bifurcations appear, as in real prints.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from biobench.data.fingerprints.noise import smooth_noise


def density_map(rng: np.random.Generator, shape: tuple[int, int], period: float, variation: float = 0.08) -> np.ndarray:
    """Ridge period ``[H, W]`` in pixels: ``period`` varied smoothly by about +-``variation`` (relative)."""
    return (period * (1.0 + variation * np.clip(smooth_noise(rng, shape, cell=90), -2, 2))).astype(np.float32)


def gabor_bank_spectra(
    shape: tuple[int, int], angles: np.ndarray, periods: np.ndarray, sigma_ratio: float = 0.45
) -> torch.Tensor:
    """``rfft2`` spectra ``[A, P, H, W//2+1]`` of even Gabor filters centred at the origin.

    The filter for ridge direction ``t`` and period ``T`` is ``exp(-r^2 / 2 s^2) cos(2 pi n / T)``, with ``n`` the
    coordinate across the ridges and ``s = sigma_ratio * T``. It is real and even, so its spectrum is real.
    """
    h, w = shape
    y = torch.fft.fftfreq(h, d=1.0 / h)[:, None].double()  # signed pixel offsets, wrap-around
    x = torch.fft.fftfreq(w, d=1.0 / w)[None, :].double()
    t = torch.as_tensor(angles, dtype=torch.float64)[:, None, None, None]
    period = torch.as_tensor(periods, dtype=torch.float64)[None, :, None, None]
    across = -x * torch.sin(t) + y * torch.cos(t)
    sigma = sigma_ratio * period
    kernel = torch.exp(-(x**2 + y**2) / (2 * sigma**2)) * torch.cos(2 * np.pi * across / period)
    kernel = kernel - kernel.mean(dim=(-2, -1), keepdim=True)  # zero DC: a flat image gives no response
    kernel = kernel / kernel.abs().sum(dim=(-2, -1), keepdim=True)
    return torch.fft.rfft2(kernel).real.float()


class SpaceVariantGabor:
    """Filters an image with, at every pixel, the Gabor filter of that pixel's ridge direction and period.

    The bank is applied with one batched FFT; each pixel blends the four responses nearest to its (direction,
    period), linearly in both.
    """

    def __init__(self, theta: np.ndarray, period: np.ndarray, n_angles: int = 16, n_periods: int = 3) -> None:
        self.shape = theta.shape
        angles = np.arange(n_angles) * np.pi / n_angles
        periods = np.linspace(period.min(), period.max() + 1e-3, n_periods)
        self.spectra = gabor_bank_spectra(self.shape, angles, periods)
        a_pos = np.mod(theta, np.pi) / (np.pi / n_angles)
        a_low = np.floor(a_pos)
        a_w = a_pos - a_low
        p_pos = np.clip((period - periods[0]) / (periods[1] - periods[0]), 0, n_periods - 1 - 1e-6)
        p_low = np.floor(p_pos)
        p_w = p_pos - p_low
        a0, a1 = a_low.astype(np.int64) % n_angles, (a_low.astype(np.int64) + 1) % n_angles
        p0, p1 = p_low.astype(np.int64), np.minimum(p_low.astype(np.int64) + 1, n_periods - 1)
        pixels = np.arange(theta.size).reshape(self.shape)
        corners = [
            (a0, p0, (1 - a_w) * (1 - p_w)),
            (a1, p0, a_w * (1 - p_w)),
            (a0, p1, (1 - a_w) * p_w),
            (a1, p1, a_w * p_w),
        ]
        # flat positions into the [filters * pixels] response array, and the blend weights
        self.index = torch.from_numpy(
            np.stack([((a * n_periods + p) * theta.size + pixels).ravel() for a, p, _ in corners])
        )
        self.weight = torch.from_numpy(np.stack([w.ravel() for _, _, w in corners]).astype(np.float32))

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        responses = torch.fft.irfft2(torch.fft.rfft2(image)[None, None] * self.spectra, s=self.shape)
        return (responses.reshape(-1)[self.index] * self.weight).sum(0).reshape(self.shape)


def _saturate(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Normalise by a robust amplitude and clip to ``[-1, 1]``: the nonlinearity that turns filtering into growth."""
    scale = image[region].abs().mean().clamp_min(1e-12)
    return (image / (0.6 * scale)).clamp(-1, 1) * region


def _resize(array: np.ndarray | torch.Tensor, shape: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    x = torch.as_tensor(np.asarray(array, dtype=np.float32))[None, None]
    return F.interpolate(x, size=shape, mode=mode, align_corners=False)[0, 0]


def grow_ridges(
    theta: np.ndarray,
    period: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    n_seeds: int = 24,
    max_iters: int = 40,
    tolerance: float = 2e-3,
    downscale: int = 2,
    refine_iters: int = 2,
) -> np.ndarray:
    """Ridge map ``[H, W]`` in ``[-1, 1]`` (``> 0`` = ridge) grown inside ``mask`` from ``n_seeds`` random spots.

    Growth runs at ``1/downscale`` resolution (ridges stay >= 4 px apart there) until the saturated share of the
    area (``|value| > 0.5``) grows by less than ``tolerance`` per iteration, or ``max_iters``; ``refine_iters``
    full-resolution passes then redraw
    the upsampled pattern with sharp, full-resolution ridges.
    """
    shape = theta.shape
    small = (shape[0] // downscale, shape[1] // downscale)
    doubled = _resize(np.cos(2 * theta), small), _resize(np.sin(2 * theta), small)
    theta_small = (0.5 * torch.atan2(doubled[1], doubled[0])).numpy()
    region = _resize(mask, small) > 0.5
    grow = torch.zeros(small)
    ys, xs = np.nonzero(region.numpy())
    pick = rng.choice(len(ys), size=min(n_seeds, len(ys)), replace=False)
    grow[ys[pick], xs[pick]] = torch.from_numpy(rng.choice([-1.0, 1.0], size=len(pick)).astype(np.float32))
    gabor = SpaceVariantGabor(theta_small, _resize(period, small).numpy() / downscale)
    area, filled = region.sum(), 0.0
    for _ in range(max_iters):
        grow = _saturate(gabor(grow), region)
        now = float((grow.abs() > 0.5).sum() / area)
        if now - filled < tolerance and now > 0.5:
            break
        filled = now
    full_region = torch.from_numpy(mask)
    ridges = _resize(grow, shape) * full_region
    gabor = SpaceVariantGabor(theta, period)
    for _ in range(refine_iters):
        ridges = _saturate(gabor(ridges), full_region)
    return ridges.numpy()
