"""The interface of the classic baseline codecs that learned compression is measured against.

A :class:`Codec` encodes a uint8 image, ``H x W`` (grey) or ``H x W x 3`` (RGB), at one setting of its quality
knob into the bytes a file of that format would hold, and decodes those bytes back to an image of the same shape
and dtype. ``len(encode(...))`` is the real byte count of the bitstream (headers and container included where the
format has them, nothing added); :meth:`Codec.roundtrip` turns it into bits per pixel of the original.

Each codec's :attr:`~Codec.qualities` is its default sweep, ordered from the lowest to the highest rate: for
knobs where lower is better (CRF, QP, JPEG XL distance, JPEG 2000 compression ratio) the values fall along it.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from biobench.metrics.compression.bpp import bits_per_pixel


class Codec(ABC):
    """A baseline image codec. Subclasses set the class attributes and implement :meth:`_encode` / :meth:`_decode`;
    the public methods check their inputs and turn every failure of the underlying library into a ValueError that
    names the codec."""

    name: ClassVar[str]
    knob: ClassVar[str]  # what ``quality`` sets: "quality", "crf", "qp", ...
    qualities: ClassVar[tuple[float, ...]]  # the default sweep, lowest rate first
    quality_range: ClassVar[tuple[float, float]]  # inclusive bounds of ``quality``
    integer_quality: ClassVar[bool] = False
    gray_only: ClassVar[bool] = False
    min_side: ClassVar[int] = 1  # the smallest height and width the encoder takes

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """The bitstream of ``image`` (uint8 ``H x W`` or ``H x W x 3``) at ``quality`` on this codec's knob."""
        image = self._check_image(image)
        quality = self._check_quality(quality)
        try:
            return self._encode(image, quality)
        except Exception as err:  # each library fails its own way (OSError, PIL errors, ffmpeg exit codes)
            shape = "x".join(map(str, image.shape))
            raise ValueError(f"{self.name}: cannot encode a {shape} image at {self.knob}={quality}: {err}") from err

    def decode(self, data: bytes, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The uint8 image coded in ``data``. ``shape``, the original image's shape, is checked against the decoded
        one; formats that cannot carry it (WebP has no grey mode, 4:2:0 VVC no odd size) need it to give the
        original's shape back (see the codec's docstring)."""
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
            raise ValueError(f"{self.name}: decode needs a non-empty byte string, got {type(data).__name__}.")
        try:
            image = self._decode(bytes(data))
        except Exception as err:  # corrupt data fails differently in every library
            raise ValueError(f"{self.name}: cannot decode these {len(data)} bytes as {self.name}: {err}") from err
        return image if shape is None else self._fit(image, tuple(shape))

    def roundtrip(self, image: np.ndarray, quality: float) -> tuple[np.ndarray, float]:
        """``(decoded image, bits per pixel)`` of ``image`` at ``quality``."""
        image = self._check_image(image)
        data = self.encode(image, quality)
        return self.decode(data, image.shape), bits_per_pixel(len(data), *image.shape[:2])

    def _check_image(self, image: np.ndarray) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{self.name}: needs a non-empty uint8 numpy image, got {got}.")
        if image.ndim == 3 and image.shape[2] == 3:
            if self.gray_only:
                raise ValueError(f"{self.name} codes grey images only, got an RGB image {image.shape}; convert it "
                                 "to grey (H x W) first.")  # fmt: skip
        elif image.ndim != 2:
            raise ValueError(f"{self.name}: needs an image H x W (grey) or H x W x 3 (RGB), got shape {image.shape}.")
        if min(image.shape[:2]) < self.min_side:
            raise ValueError(f"{self.name}: the encoder needs images of at least {self.min_side} px per side, got "
                             f"{image.shape[0]}x{image.shape[1]}.")  # fmt: skip
        return np.ascontiguousarray(image)

    def _check_quality(self, quality: float) -> float:
        low, high = self.quality_range
        if isinstance(quality, bool) or not isinstance(quality, numbers.Real) or not low <= quality <= high:
            raise ValueError(f"{self.name}: {self.knob} must be a number in [{low}, {high}], got {quality!r}.")
        if self.integer_quality:
            if quality != int(quality):
                raise ValueError(f"{self.name}: {self.knob} must be an integer, got {quality!r}.")
            return int(quality)
        return float(quality)

    def _fit(self, image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``image`` as the original of ``shape`` (codecs that pad or lose the grey mode override this)."""
        if image.shape != shape:
            raise ValueError(f"{self.name}: the data decodes to an image of shape {image.shape}, expected {shape}.")
        return image

    @abstractmethod
    def _encode(self, image: np.ndarray, quality: float) -> bytes: ...

    @abstractmethod
    def _decode(self, data: bytes) -> np.ndarray: ...
