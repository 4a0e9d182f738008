"""Compression metrics and the classic baseline codecs of the IPR-codec system: bits per pixel of real
bitstreams, PSNR / MS-SSIM of decoded images, and JPEG, JPEG 2000, WebP, AVIF (Pillow), HEVC, VVC, JPEG XL (FFmpeg,
optional) and WSQ (optional) behind one :class:`Codec` interface."""

from biobench.metrics.compression.base import Codec
from biobench.metrics.compression.bpp import bits_per_pixel
from biobench.metrics.compression.quality import image_to_tensor, ms_ssim, ms_ssim_window, psnr
from biobench.metrics.compression.registry import available_codecs, get_codec

__all__ = [
    "Codec",
    "available_codecs",
    "bits_per_pixel",
    "get_codec",
    "image_to_tensor",
    "ms_ssim",
    "ms_ssim_window",
    "psnr",
]
