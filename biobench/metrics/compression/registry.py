"""The baseline codecs by name: :func:`get_codec` builds one, :func:`available_codecs` lists the names."""

from __future__ import annotations

from typing import Any

from biobench.metrics.compression.base import Codec
from biobench.metrics.compression.ffmpeg_codecs import HEVC, JPEGXL, VVC
from biobench.metrics.compression.pillow_codecs import AVIF, JPEG, JPEG2000, WebP
from biobench.metrics.compression.wsq_codec import WSQ

CODECS: dict[str, type[Codec]] = {c.name: c for c in (JPEG, JPEG2000, WebP, AVIF, HEVC, VVC, JPEGXL, WSQ)}


def available_codecs() -> tuple[str, ...]:
    """The names :func:`get_codec` takes (whether a codec's optional package is installed is checked when it is
    built)."""
    return tuple(CODECS)


def get_codec(name: str, **options: Any) -> Codec:
    """The codec called ``name``, built with ``options`` (e.g. ``preset="slow"`` for HEVC / VVC, ``effort=9`` for
    JPEG XL, extra ``Image.save`` keywords for the Pillow codecs). Raises an ImportError naming the optional extra
    when the codec's package is missing."""
    if name not in CODECS:
        raise KeyError(f"Unknown codec '{name}'; known: {', '.join(CODECS)}.")
    return CODECS[name](**options)
