"""FPGAN-Control's generator: StyleGAN2 synthesis with GAN-Control's split latent (identity + appearance).

Each latent group has its own mapping MLP (PixelNorm + ``n_mlp`` equalized linear layers, lr multiplier 0.01,
leaky ReLU); their outputs are concatenated into ``w = [w_id, w_app]``, which styles every synthesis layer (no style
mixing, as in GAN-Control). Synthesis starts from a learned ``base_size``-square constant (4, or 3 for 384 = 3 * 2^7)
and doubles the resolution per block (modulated 3x3 conv up + 3x3 conv, per-layer noise); grayscale images come
from skip "toGray" layers (1x1 modulated conv, no demodulation) summed across resolutions.

The output is linear, with no tanh (StyleGAN2's choice): it is trained towards reals in [-1, 1] and lands there
approximately; clamp for display. Truncation pulls each group's part of ``w`` towards its tracked mean, with its own
psi. ``w_avg`` is updated only by an explicit :meth:`FPGANGenerator.update_w_avg` call (the training step's), never
as a side effect of ``forward``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import torch
from torch import nn

from biobench.models.nets.stylegan2_layers import (
    BLUR_KERNEL,
    CHANNEL_BASE,
    CHANNEL_MAX,
    BiasLeakyReLU,
    EqualLinear,
    ModulatedConv2d,
    NoiseInjection,
    PixelNorm,
    Upsample,
    channels_per_resolution,
    resolution_levels,
)


class MappingNetwork(nn.Sequential):
    """``z [N, z_dim] -> w [N, w_dim]``: PixelNorm, then ``n_mlp`` equalized linear layers with leaky ReLU."""

    def __init__(self, z_dim: int, w_dim: int, n_mlp: int = 8, lr_mul: float = 0.01) -> None:
        if n_mlp < 1:
            raise ValueError(f"The mapping network needs n_mlp >= 1 layers, got {n_mlp}.")
        dims = [z_dim] + [w_dim] * n_mlp
        super().__init__(PixelNorm(), *(EqualLinear(a, b, lr_mul=lr_mul, activation=True) for a, b in pairwise(dims)))


class StyledConv(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + noise injection + bias + leaky ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, style_dim: int, upsample: bool, blur_taps: Sequence[float]
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample, blur_taps=blur_taps)
        self.noise = NoiseInjection(out_channels)
        self.activate = BiasLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToImage(nn.Module):
    """Image output ("toGray"): 1x1 modulated conv without demodulation + bias."""

    def __init__(self, in_channels: int, img_channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, img_channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias


class SynthesisBlock(nn.Module):
    """One resolution doubling: styled conv up, styled conv; its image output is added to the upsampled skip image."""

    def __init__(
        self, in_channels: int, out_channels: int, style_dim: int, img_channels: int, blur_taps: Sequence[float]
    ) -> None:
        super().__init__()
        self.conv0 = StyledConv(in_channels, out_channels, style_dim, upsample=True, blur_taps=blur_taps)
        self.conv1 = StyledConv(out_channels, out_channels, style_dim, upsample=False, blur_taps=blur_taps)
        self.to_image = ToImage(out_channels, img_channels, style_dim)
        self.upsample_skip = Upsample(blur_taps)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor, w: torch.Tensor, noise: Sequence[torch.Tensor | None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(self.conv0(x, w, noise[0]), w, noise[1])
        return x, self.to_image(x, w) + self.upsample_skip(skip)


class FPGANGenerator(nn.Module):
    """StyleGAN2 generator with identity and appearance latents.

    Args:
        resolution: output side, ``base_size * 2**k`` (64 = 4 * 2^4, 384 = 3 * 2^7).
        identity_dim / appearance_dim: sizes of ``z_id`` / ``z_app`` (paper: 256 + 256).
        identity_w_dim / appearance_w_dim: sizes of ``w_id`` / ``w_app``; ``w`` has their sum.
        n_mlp / lr_mul: layers and lr multiplier of each mapping MLP.
        base_size: side of the learned constant input.
        channels: ``{resolution: channels}`` for every level; else ``min(channel_base // res, channel_max)``.
        img_channels: 1 (grayscale fingerprints).
        blur_taps: the FIR resampling filter.
        w_avg_beta: decay of the tracked mean of ``w`` (:meth:`update_w_avg`).
    """

    def __init__(
        self,
        resolution: int = 64,
        identity_dim: int = 256,
        appearance_dim: int = 256,
        identity_w_dim: int = 256,
        appearance_w_dim: int = 256,
        n_mlp: int = 8,
        lr_mul: float = 0.01,
        base_size: int = 4,
        channels: Mapping[int, int] | None = None,
        channel_base: int = CHANNEL_BASE,
        channel_max: int = CHANNEL_MAX,
        img_channels: int = 1,
        blur_taps: Sequence[float] = BLUR_KERNEL,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        levels = resolution_levels(resolution, base_size)
        ch = channels_per_resolution(levels, channels, channel_base, channel_max)
        self.resolution, self.img_channels, self.w_avg_beta = resolution, img_channels, w_avg_beta
        self.identity_dim, self.appearance_dim = identity_dim, appearance_dim
        self.identity_w_dim, self.w_dim = identity_w_dim, identity_w_dim + appearance_w_dim
        self.mapping_id = MappingNetwork(identity_dim, identity_w_dim, n_mlp, lr_mul)
        self.mapping_app = MappingNetwork(appearance_dim, appearance_w_dim, n_mlp, lr_mul)
        self.register_buffer("w_avg", torch.zeros(self.w_dim))

        self.const = nn.Parameter(torch.randn(1, ch[base_size], base_size, base_size))
        self.conv_base = StyledConv(ch[base_size], ch[base_size], self.w_dim, upsample=False, blur_taps=blur_taps)
        self.to_image_base = ToImage(ch[base_size], img_channels, self.w_dim)
        self.blocks = nn.ModuleList(
            SynthesisBlock(ch[lo], ch[hi], self.w_dim, img_channels, blur_taps) for lo, hi in pairwise(levels)
        )
        # One noise map per styled conv: the base conv, then two per block.
        self.noise_sizes = [base_size] + [r for r in levels[1:] for _ in range(2)]

    def mapping(self, z_id: torch.Tensor, z_app: torch.Tensor) -> torch.Tensor:
        """``w = [mapping_id(z_id), mapping_app(z_app)]``, ``[N, w_dim]``."""
        for name, z, dim in (("z_id", z_id, self.identity_dim), ("z_app", z_app, self.appearance_dim)):
            if z.ndim != 2 or z.shape[1] != dim:
                raise ValueError(f"FPGANGenerator: {name} must be [N, {dim}], got {list(z.shape)}.")
        if z_id.shape[0] != z_app.shape[0]:
            raise ValueError(
                f"FPGANGenerator: z_id and z_app batch sizes differ ({z_id.shape[0]} vs {z_app.shape[0]})."
            )
        return torch.cat([self.mapping_id(z_id), self.mapping_app(z_app)], dim=1)

    def split_w(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w_id, w_app)`` views of ``w [N, w_dim]``."""
        return w[:, : self.identity_w_dim], w[:, self.identity_w_dim :]

    def truncate(self, w: torch.Tensor, psi_id: float = 1.0, psi_app: float = 1.0) -> torch.Tensor:
        """``w_avg + psi * (w - w_avg)`` with each group's own psi (1: unchanged, 0: the group's mean)."""
        if psi_id == 1 and psi_app == 1:
            return w
        psi = torch.full_like(self.w_avg, psi_app)
        psi[: self.identity_w_dim] = psi_id
        return torch.lerp(self.w_avg, w, psi)

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """Moving average of the batch mean of un-truncated ``w``: ``w_avg <- beta w_avg + (1 - beta) mean(w)``."""
        self.w_avg.lerp_(w.detach().mean(dim=0).to(self.w_avg.dtype), 1.0 - self.w_avg_beta)

    def make_noise(self, batch: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Per-layer noise maps ``[batch, 1, r, r]`` (drawn on the generator's device, returned on the model's).

        Give all impressions of one identity the same maps: draw with ``batch=1`` (they broadcast) or index a row.
        """
        device = self.const.device
        draw_on = generator.device if generator is not None else device
        return [
            torch.randn(batch, 1, r, r, generator=generator, device=draw_on, dtype=self.const.dtype).to(device)
            for r in self.noise_sizes
        ]

    def synthesis(self, w: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Image ``[N, img_channels, resolution, resolution]`` from ``w [N, w_dim]``; ``noise`` from
        :meth:`make_noise` (``None``: fresh noise in every layer)."""
        if w.ndim != 2 or w.shape[1] != self.w_dim:
            raise ValueError(f"FPGANGenerator.synthesis: w must be [N, {self.w_dim}], got {list(w.shape)}.")
        if noise is None:
            noise = [None] * len(self.noise_sizes)
        elif len(noise) != len(self.noise_sizes):
            raise ValueError(f"FPGANGenerator.synthesis: expected {len(self.noise_sizes)} noise maps (make_noise), "
                             f"got {len(noise)}.")  # fmt: skip
        x = self.conv_base(self.const.expand(w.shape[0], -1, -1, -1), w, noise[0])
        image = self.to_image_base(x, w)
        for i, block in enumerate(self.blocks):
            x, image = block(x, image, w, noise[1 + 2 * i : 3 + 2 * i])
        return image

    def forward(
        self,
        z_id: torch.Tensor,
        z_app: torch.Tensor,
        noise: Sequence[torch.Tensor | None] | None = None,
        truncation_psi_id: float = 1.0,
        truncation_psi_app: float = 1.0,
        return_w: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Images from the two latents; ``return_w`` also returns the (truncated) ``w`` that styled them."""
        w = self.truncate(self.mapping(z_id, z_app), truncation_psi_id, truncation_psi_app)
        image = self.synthesis(w, noise)
        return (image, w) if return_w else image


def ema_beta(
    batch_size: int, half_life_images: float, images_seen: int | None = None, rampup: float | None = None
) -> float:
    """Per-step EMA decay for a half-life counted in images (GAN-Control / StyleGAN2: 10k images).

    With ``rampup`` (StyleGAN2-ADA's ``ema_rampup``, 0.05 in its small-data configs) the half-life is at most
    ``rampup * images_seen``, so the EMA of a short run does not keep its random initialisation: after 800
    iterations of 16 images a fixed 10k-image half-life still gives the initial weights 41 % of the average.
    """
    if rampup is not None:
        if images_seen is None or rampup <= 0:
            raise ValueError(f"ema_beta: a rampup needs images_seen and rampup > 0, got {images_seen} / {rampup}.")
        half_life_images = min(half_life_images, rampup * max(images_seen, batch_size))
    return 0.5 ** (batch_size / half_life_images)


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, beta: float) -> None:
    """``target <- beta target + (1 - beta) source`` on parameters; buffers (``w_avg``) are copied, as StyleGAN2 does.

    ``beta=0`` copies the source, ``beta=1`` keeps the target. Both modules must have the same structure.
    """
    for (name, p_ema), (other, p) in zip(target.named_parameters(), source.named_parameters(), strict=True):
        if name != other:
            raise ValueError(f"ema_update: parameter '{name}' of the EMA copy meets '{other}' of the source.")
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(target.buffers(), source.buffers(), strict=True):
        b_ema.copy_(b)
