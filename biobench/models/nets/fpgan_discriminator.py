"""FPGAN-Control's discriminator: StyleGAN2's residual discriminator for grayscale images.

``fromGray`` (1x1 conv) at ``resolution``, one residual block per halving down to ``base_size`` (3x3 conv, 3x3 conv
down with blur, 1x1 skip down with blur, sum scaled by ``1/sqrt(2)``), minibatch standard deviation, a 3x3 conv and
two equalized linear layers to one logit per image. Channels follow the generator's rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

import torch
from torch import nn

from biobench.models.nets.stylegan2_layers import (
    BLUR_KERNEL,
    CHANNEL_BASE,
    CHANNEL_MAX,
    ConvLayer,
    EqualLinear,
    MinibatchStdDev,
    channels_per_resolution,
    resolution_levels,
)


class ResidualBlock(nn.Module):
    """``(conv(conv_down(x)) + skip_down(x)) / sqrt(2)``: halves the side, ``in -> out`` channels."""

    def __init__(self, in_channels: int, out_channels: int, blur_taps: Sequence[float] = BLUR_KERNEL) -> None:
        super().__init__()
        self.conv0 = ConvLayer(in_channels, in_channels, 3)
        self.conv1 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_taps=blur_taps)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False, blur_taps=blur_taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv1(self.conv0(x)) + self.skip(x)) / math.sqrt(2.0)


class FPGANDiscriminator(nn.Module):
    """``forward(images [N, img_channels, resolution, resolution]) -> logits [N]``.

    Args:
        resolution / base_size / channels / channel_base / channel_max / img_channels / blur_taps: as the generator's.
        mbstd_group_size / mbstd_num_channels: the minibatch standard deviation layer.
    """

    def __init__(
        self,
        resolution: int = 64,
        base_size: int = 4,
        channels: Mapping[int, int] | None = None,
        channel_base: int = CHANNEL_BASE,
        channel_max: int = CHANNEL_MAX,
        img_channels: int = 1,
        blur_taps: Sequence[float] = BLUR_KERNEL,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
    ) -> None:
        super().__init__()
        levels = resolution_levels(resolution, base_size)
        ch = channels_per_resolution(levels, channels, channel_base, channel_max)
        self.resolution, self.img_channels = resolution, img_channels
        self.from_image = ConvLayer(img_channels, ch[resolution], 1)
        self.blocks = nn.Sequential(
            *(ResidualBlock(ch[hi], ch[lo], blur_taps) for hi, lo in pairwise(reversed(levels)))
        )
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels)
        c = ch[base_size]
        self.final_conv = ConvLayer(c + mbstd_num_channels, c, 3)
        self.final_linear = nn.Sequential(EqualLinear(c * base_size**2, c, activation=True), EqualLinear(c, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        expected = (self.img_channels, self.resolution, self.resolution)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"FPGANDiscriminator takes [N, {', '.join(map(str, expected))}] images, got "
                             f"{list(images.shape)}.")  # fmt: skip
        x = self.final_conv(self.mbstd(self.blocks(self.from_image(images))))
        return self.final_linear(x.flatten(1)).squeeze(1)
