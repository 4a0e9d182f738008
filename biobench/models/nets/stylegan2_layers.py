"""StyleGAN2 building blocks (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020) in
pure PyTorch: no custom CUDA ops, so the same code runs on CPU and GPU.

- equalized learning rate: weights are stored at unit variance and scaled by ``lr_mul / sqrt(fan_in)`` at run time;
- modulated convolution, non-fused: the input is scaled by the style, one plain convolution (``groups=1``) serves
  the whole batch, and the output is demodulated by the per-sample weight norm. Equal to the per-sample modulated
  weight (the paper's formulation) up to float rounding; one dense convolution instead of a grouped one (measured
  1.2x faster on one CPU thread at 16 x 128 x 32 x 32);
- resampling with the ``[1, 3, 3, 1]`` FIR filter (:func:`upfirdn2d` by ``F.conv2d``): a stride-2 transposed
  convolution followed by a blur to go up, a blur followed by a stride-2 convolution to go down;
- noise injection with a learned per-channel strength, the noise passable from outside;
- bias + leaky ReLU (0.2) times ``sqrt(2)`` (keeps unit variance), PixelNorm, minibatch standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

BLUR_KERNEL = (1, 3, 3, 1)
# Narrow, CPU-affordable channel rule (docs/fpgan.md): 128 channels up to 32 px, 64 at 64 px, 32 at 128 px.
CHANNEL_BASE, CHANNEL_MAX = 4096, 128
LRELU_GAIN = math.sqrt(2.0)


def scaled_leaky_relu(x: torch.Tensor, negative_slope: float = 0.2, gain: float = LRELU_GAIN) -> torch.Tensor:
    """``leaky_relu(x) * gain``: ``sqrt(2)`` keeps the second moment of a unit-variance input."""
    return F.leaky_relu(x, negative_slope) * gain


def blur_kernel_2d(taps: Sequence[float] = BLUR_KERNEL) -> torch.Tensor:
    """Separable 2-D FIR kernel ``outer(taps, taps)`` normalised to sum 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with ``kernel`` (depthwise). Downsampling is left to the strided
    convolution that follows the blur.

    ``pad = (before, after)`` is applied to both spatial axes. ``kernel`` is a true convolution kernel (flipped here,
    a no-op for the symmetric blur); scale it by ``up**2`` when upsampling to keep the mean.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), (0, up - 1, 0, 0, 0, up - 1)).reshape(n, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c)


class Blur(nn.Module):
    """FIR low-pass filter with fixed padding; ``up`` > 1 scales the kernel by ``up**2`` (zero-inserted input)."""

    def __init__(self, pad: tuple[int, int], taps: Sequence[float] = BLUR_KERNEL, up: int = 1) -> None:
        super().__init__()
        self.pad = pad
        self.register_buffer("kernel", blur_kernel_2d(taps) * up**2, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x upsampling by zero insertion + FIR filter (the skip path of the generator's image outputs)."""

    def __init__(self, taps: Sequence[float] = BLUR_KERNEL) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel_2d(taps) * 4, persistent=False)
        p = len(taps) - 2
        self.pad = ((p + 1) // 2 + 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=2, pad=self.pad)


class PixelNorm(nn.Module):
    """Normalise each vector to unit root mean square over dim 1 (the latent before the mapping MLP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; ``activation`` adds the scaled leaky ReLU after the bias.

    ``lr_mul`` < 1 (0.01 in the mapping network) slows the layer down: the stored weight is ``randn / lr_mul`` and
    both weight and bias are multiplied by ``lr_mul`` at run time, so Adam's step on them shrinks by ``lr_mul``.
    ``bias_init`` is the effective initial bias (1 for the styles of a modulated conv).
    """

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init) / lr_mul))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return scaled_leaky_relu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate (weight ``randn`` scaled by ``1 / sqrt(in * k * k)`` at run time)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class BiasLeakyReLU(nn.Module):
    """Learned per-channel bias followed by the scaled leaky ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_leaky_relu(x + self.bias.view(1, -1, 1, 1))


class ConvLayer(nn.Sequential):
    """Discriminator convolution: [blur +] equalized conv (stride 2 when ``downsample``) [+ bias + leaky ReLU].

    ``activate=False`` is the linear 1x1 skip path (no bias, as in StyleGAN2's residual discriminator).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        activate: bool = True,
        blur_taps: Sequence[float] = BLUR_KERNEL,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = len(blur_taps) - 2 + kernel_size - 1
            layers.append(Blur(((p + 1) // 2, p // 2), blur_taps))
        padding = 0 if downsample else kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, 2 if downsample else 1, padding, bias=False))
        if activate:
            layers.append(BiasLeakyReLU(out_channels))
        super().__init__(*layers)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional weight demodulation and 2x upsampling.

    ``forward(x [N, in, H, W], w [N, style_dim])``: the affine ``modulation`` maps ``w`` to per-input-channel styles
    ``s`` (bias 1, so styles start at 1). Computed non-fused: ``conv(x * s, weight) * d`` with
    ``d[n, o] = 1 / sqrt(sum_{i,k} (weight[o, i, k] * s[n, i])^2 + eps)``, which equals convolving each sample with
    its own modulated, demodulated weight. ``upsample`` uses a stride-2 transposed convolution, then the blur.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_taps: Sequence[float] = BLUR_KERNEL,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.demodulate, self.upsample, self.eps = demodulate, upsample, eps
        self.padding = kernel_size // 2
        if upsample:
            p = len(blur_taps) - 2 - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), blur_taps, up=2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.modulation(w)
        weight = self.weight * self.scale
        x = x * styles[:, :, None, None]
        if self.upsample:
            x = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            norms = styles.square() @ weight.square().sum(dim=(2, 3)).T  # [N, out]
            x = x * torch.rsqrt(norms + self.eps)[:, :, None, None]
        return x


class NoiseInjection(nn.Module):
    """``x + strength * noise``, a learned strength per channel (zero at init).

    ``noise [N or 1, 1, H, W]`` may be given (all impressions of one identity share it); drawn fresh when ``None``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.weight * noise


class MinibatchStdDev(nn.Module):
    """Appends ``num_channels`` feature maps holding the standard deviation across groups of ``group_size`` samples.

    Samples ``i, i + N/G, i + 2N/G, ...`` form a group (StyleGAN2's layout). A batch that ``group_size`` does not
    divide uses the largest group size below it that does (1 for a prime batch: the statistic is then 0).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        if group_size < 1 or num_channels < 1:
            raise ValueError(f"Minibatch stddev needs group_size >= 1 and num_channels >= 1, got {group_size}, "
                             f"{num_channels}.")  # fmt: skip
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if c % self.num_channels:
            raise ValueError(f"Minibatch stddev: {c} channels do not split into {self.num_channels} groups.")
        g = next(size for size in range(min(self.group_size, n), 0, -1) if n % size == 0)
        y = x.reshape(g, -1, self.num_channels, c // self.num_channels, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(2, 3, 4))  # [N/G, num_channels]
        y = y.reshape(-1, self.num_channels, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


def resolution_levels(resolution: int, base_size: int) -> list[int]:
    """``[base, 2 base, ..., resolution]``; ``resolution`` must be ``base_size * 2**k``."""
    k = math.log2(resolution / base_size) if resolution > 0 and base_size > 0 else -1.0
    if k < 0 or k != int(k):
        raise ValueError(f"resolution={resolution} must be base_size={base_size} times a power of two (e.g. 64 = "
                         f"4 * 2^4, 384 = 3 * 2^7).")  # fmt: skip
    return [base_size * 2**i for i in range(int(k) + 1)]


def channels_per_resolution(
    levels: Sequence[int],
    channels: Mapping[int, int] | None = None,
    channel_base: int = CHANNEL_BASE,
    channel_max: int = CHANNEL_MAX,
) -> dict[int, int]:
    """Feature channels at each resolution: ``channels[res]`` when given, else ``min(channel_base // res,
    channel_max)`` (StyleGAN2's rule; its 1024-px config is ``channel_base=32768, channel_max=512``)."""
    if channels is not None:
        chosen = {int(k): int(v) for k, v in channels.items()}
        missing = [r for r in levels if r not in chosen]
        if missing:
            raise ValueError(
                f"The channels dict {chosen} has no entry for resolutions {missing} (needs {list(levels)})."
            )
        return {r: chosen[r] for r in levels}
    out = {r: min(channel_base // r, channel_max) for r in levels}
    if min(out.values()) < 1:
        raise ValueError(f"channel_base={channel_base} gives no channels at {max(levels)} px; raise it.")
    return out
