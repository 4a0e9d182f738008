"""The still-image baselines Pillow codes: JPEG (libjpeg), JPEG 2000 (OpenJPEG), WebP (libwebp), AVIF (libavif).

Settings (each library's defaults unless said; extra ``Image.save`` keywords go to the constructor, e.g.
``JPEG(subsampling="4:4:4")``):

- JPEG: knob ``quality`` 0-100; standard (not optimised) Huffman tables, 4:2:0 chroma for RGB; the JFIF header
  and tables count.
- JPEG 2000: knob ``ratio``, the compression ratio against the raw 8-bit samples (``quality_mode="rates"``,
  one quality layer: about ``8 * C / ratio`` bpp); the irreversible 9/7 wavelet (the lossy mode; the default 5/3
  is the lossless one) with the colour transform on for RGB (Pillow's default leaves RGB untransformed); a bare
  J2K codestream (``no_jp2``), no JP2 boxes. Its ~180-byte main header floors the rate of small images (a 33 x 47
  grey image codes to the same 181 bytes at ratios 80 down to 10).
- WebP: knob ``quality`` 0-100, lossy, 4:2:0. WebP has no grey mode: a grey image is coded as RGB with neutral
  chroma and decodes to RGB, so :meth:`~Codec.decode` needs the original ``shape`` to return grey (its luma).
- AVIF: knob ``quality`` 0-100, speed 6; grey is coded as monochrome 4:0:0 (Pillow's AVIF writer picks it for
  mode ``L``), RGB as 4:2:0 full-range YCbCr; the HEIF container (~300 bytes: a flat 128-px image takes 306) counts.
"""

from __future__ import annotations

import io
from typing import Any, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from biobench.metrics.compression.base import Codec


def open_with_pillow(data: bytes, pil_format: str) -> np.ndarray:
    """The grey or RGB pixels of ``data`` read as ``pil_format`` (and no other format Pillow might recognise)."""
    try:
        decoded = Image.open(io.BytesIO(data), formats=[pil_format])
    except UnidentifiedImageError:
        raise ValueError(f"the data does not start like a {pil_format} file") from None
    with decoded:
        decoded.load()
        return np.array(decoded if decoded.mode in ("L", "RGB") else decoded.convert("RGB"))


class PillowCodec(Codec):
    """A codec behind ``PIL.Image.save`` / ``PIL.Image.open`` of one format (``pil_format``), available when Pillow
    was built with ``feature``."""

    pil_format: ClassVar[str]
    feature: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        if not features.check(self.feature):
            raise RuntimeError(f"{self.name}: this Pillow ({Image.__version__}) was built without {self.pil_format} "
                               f"support (PIL.features.check('{self.feature}') is False).")  # fmt: skip
        self.options = options

    def _save_options(self, image: np.ndarray, quality: float) -> dict[str, Any]:
        return {"quality": quality}

    def _encode(self, image: np.ndarray, quality: float) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, self.pil_format, **{**self._save_options(image, quality), **self.options})
        return buffer.getvalue()

    def _decode(self, data: bytes) -> np.ndarray:
        return open_with_pillow(data, self.pil_format)


class JPEG(PillowCodec):
    name, knob, pil_format, feature = "jpeg", "quality", "JPEG", "jpg"
    qualities = (10, 25, 50, 75, 90)
    quality_range, integer_quality = (0, 100), True


class JPEG2000(PillowCodec):
    name, knob, pil_format, feature = "jpeg2000", "ratio", "JPEG2000", "jpg_2000"
    qualities = (80, 40, 20, 10, 5)
    quality_range = (1, float("inf"))

    def _save_options(self, image: np.ndarray, quality: float) -> dict[str, Any]:
        return {"quality_mode": "rates", "quality_layers": [quality], "irreversible": True, "no_jp2": True,
                "mct": int(image.ndim == 3)}  # fmt: skip


class WebP(PillowCodec):
    name, knob, pil_format, feature = "webp", "quality", "WEBP", "webp"
    qualities = (10, 25, 50, 75, 90)
    quality_range, integer_quality = (0, 100), True

    def _fit(self, image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) == 2 and image.shape == (*shape, 3):  # a grey original, decoded as RGB
            image = np.array(Image.fromarray(image).convert("L"))
        return super()._fit(image, shape)


class AVIF(PillowCodec):
    name, knob, pil_format, feature = "avif", "quality", "AVIF", "avif"
    qualities = (10, 25, 50, 75, 90)
    quality_range, integer_quality = (0, 100), True
