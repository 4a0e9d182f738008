"""Bits per pixel, the rate axis of every rate-distortion curve: the real byte count of a bitstream over the pixels
of the unpadded original (padding a codec adds to reach its block or chroma alignment costs bits, never pixels)."""

from __future__ import annotations

import numbers


def bits_per_pixel(num_bytes: int, height: int, width: int) -> float:
    """``8 * num_bytes / (height * width)`` for a bitstream of ``num_bytes`` bytes coding an ``height x width``
    image (every channel together: an RGB image's bpp counts all three channels' bits)."""
    for key, value, least in (("num_bytes", num_bytes, 0), ("height", height, 1), ("width", width, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ValueError(f"bits_per_pixel: {key} must be an integer >= {least}, got {value!r}.")
    return 8.0 * int(num_bytes) / (int(height) * int(width))
