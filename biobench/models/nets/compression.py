"""CompressAI codecs by zoo name, in RGB or grayscale, with the padding their strides need.

CompressAI's zoo architectures are 3-channel. A grayscale codec is built as the RGB one, then its first analysis
layer and its last synthesis layer are swapped for 1-channel ones; ``from_state_dict`` cannot rebuild such a model,
so checkpoints are loaded into a model built the same way (:func:`build_codec`). Nothing is downloaded:
``pretrained_path`` loads a local CompressAI state dict (an RGB one cannot go into a grayscale codec).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from compressai.models import CompressionModel, FactorizedPrior
from compressai.zoo.image import cfgs, model_architectures
from torch import nn

from biobench.models.nets.bitstream import pack, unpack
from biobench.models.nets.loading import read_state_dict

# Total stride of every zoo architecture's analysis + hyper-analysis transforms: inputs are padded to a multiple.
CODEC_STRIDE = 64


def _conv_reading(conv: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    """A fresh ``Conv2d`` shaped like ``conv`` but reading ``in_chans`` channels."""
    return nn.Conv2d(
        in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None
    )


def _swap_first_layer(g_a: nn.Sequential, in_chans: int) -> None:
    """Make the analysis transform read ``in_chans`` channels: its first conv, or every conv of its first block
    that reads the image (cheng2020's residual block: main and skip paths)."""
    first = g_a[0]
    if isinstance(first, nn.Conv2d):
        g_a[0] = _conv_reading(first, in_chans)
        return
    for name, conv in first.named_children():
        if isinstance(conv, nn.Conv2d) and conv.in_channels == 3:
            setattr(first, name, _conv_reading(conv, in_chans))


def _swap_last_layer(g_s: nn.Sequential, out_chans: int) -> None:
    last = g_s[-1]
    if isinstance(last, nn.ConvTranspose2d):
        g_s[-1] = nn.ConvTranspose2d(
            last.in_channels, out_chans, last.kernel_size, last.stride, last.padding, last.output_padding
        )
    elif isinstance(last, nn.Sequential) and isinstance(last[-1], nn.PixelShuffle):  # cheng2020's sub-pixel conv
        conv, factor = last[0], last[-1].upscale_factor
        last[0] = nn.Conv2d(conv.in_channels, out_chans * factor**2, conv.kernel_size, conv.stride, conv.padding)
    else:
        raise TypeError(f"Cannot change the output channels of a synthesis transform ending in {type(last).__name__}.")


def build_codec(
    name: str,
    in_chans: int = 3,
    quality: int | None = 3,
    N: int | None = None,
    M: int | None = None,
    pretrained_path: str | Path | None = None,
) -> CompressionModel:
    """A CompressAI zoo architecture (``bmshj2018-factorized``, ``bmshj2018-hyperprior``, ``mbt2018-mean``, ``mbt2018``,
    ``cheng2020-anchor``, ``cheng2020-attn``) with the zoo's ``(N, M)`` of ``quality``, or explicit ``N`` / ``M``.

    ``in_chans`` 1 gives a grayscale codec (first and last layers swapped); ``pretrained_path`` a local state dict.
    """
    if name not in model_architectures:
        raise ValueError(
            f"Unknown CompressAI architecture model.codec.name='{name}'; one of {list(model_architectures)}."
        )
    if in_chans not in (1, 3):
        raise ValueError(f"A codec takes 1 (grayscale) or 3 (RGB) channels, the data has {in_chans}.")
    if N is None:
        if quality not in cfgs[name]:
            raise ValueError(f"model.codec.quality={quality} is not one of {sorted(cfgs[name])} for '{name}'.")
        N, M = (cfgs[name][quality] + (None,))[:2]
    args = (N,) if name.startswith("cheng2020") else (N, M)
    if any(a is None or a < 1 for a in args):
        raise ValueError(f"'{name}' needs positive N{'' if len(args) == 1 else ' and M'}, got N={N}, M={M}.")
    model = model_architectures[name](*args)
    if in_chans != 3:
        _swap_first_layer(model.g_a, in_chans)
        _swap_last_layer(model.g_s, in_chans)
    if pretrained_path is not None:
        state = read_state_dict(pretrained_path)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"Codec weights '{pretrained_path}' do not fit '{name}' (N={N}, M={M}, {in_chans} channels): {err}"
            ) from err
    return model


def stride_padding(h: int, w: int, stride: int = CODEC_STRIDE) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` padding (centred) that brings an ``h x w`` image to multiples of ``stride``."""
    ph, pw = -h % stride, -w % stride
    return (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)


def pad_to_stride(x: torch.Tensor, stride: int = CODEC_STRIDE) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad ``x [N, C, H, W]`` (replicate) to multiples of ``stride``; returns it and the padding
    (:func:`stride_padding`) that :func:`crop_padding` removes."""
    pad = stride_padding(*x.shape[-2:], stride)
    return (F.pad(x, pad, mode="replicate") if any(pad) else x), pad


def crop_padding(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_stride`."""
    left, right, top, bottom = pad
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


def latent_stride(codec: CompressionModel) -> int:
    """Stride of the latent whose shape ``decompress`` takes: ``y`` (16) for a factorized prior, ``z`` (64) else."""
    return 16 if isinstance(codec, FactorizedPrior) else CODEC_STRIDE


@torch.no_grad()
def compress_images(codec: CompressionModel, x: torch.Tensor) -> list[bytes]:
    """Real bitstreams (:func:`biobench.models.nets.bitstream.pack`) of ``x [N, C, H, W]`` in [0, 1], one per image.
    The codec's entropy models must be updated (``codec.update(force=True)``)."""
    h, w = x.shape[-2:]
    padded, _ = pad_to_stride(x)
    out = codec.compress(padded)
    per_image = zip(*out["strings"], strict=True)  # [latent][image] -> [image][latent]
    return [pack(list(strings), h, w) for strings in per_image]


@torch.no_grad()
def decompress_images(
    codec: CompressionModel, bitstreams: list[bytes], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Reconstructions ``[N, C, H, W]`` (clamped to [0, 1]) of bitstreams of one image size each."""
    unpacked = [unpack(b) for b in bitstreams]
    sizes = {(h, w) for _, h, w in unpacked}
    if len(sizes) != 1:
        raise ValueError(
            f"decompress_images decodes bitstreams of one image size at a time, got sizes {sorted(sizes)}."
        )
    (h, w), stride = sizes.pop(), latent_stride(codec)
    pad = stride_padding(h, w)
    shape = ((h + pad[2] + pad[3]) // stride, (w + pad[0] + pad[1]) // stride)
    strings = [list(s) for s in zip(*(s for s, _, _ in unpacked), strict=True)]  # [image][latent] -> [latent][image]
    try:
        x_hat = codec.decompress(strings, shape)["x_hat"]
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"Corrupt codec bitstream: the entropy decoder failed ({err}).") from err
    return crop_padding(x_hat, pad).clamp(0, 1).to(device)
