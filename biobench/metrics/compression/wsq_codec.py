"""WSQ, the FBI's wavelet scalar quantisation standard for 500-ppi grey fingerprints, through the optional ``wsq``
package (NIST NBIS 5.0 behind a Pillow plugin: ``pip install 'biobench[codecs]'``).

WSQ has one knob, the NBIS target bitrate (``cwsq``'s ``r``: 0.75 is the FBI's ~15:1 setting, 2.25 ~5:1). wsq 0.9
offers no way to set it: its Pillow writer passes a fixed 12 to the C extension, and the extension
(``csrc/_wsq.c``) overwrites whatever it is passed with ``ratio = 0.75`` before calling NBIS ``wsq_encode_mem``.
So this codec has a single rate point, bitrate 0.75 (achieved rates: ~0.5 bpp on a 512-px synthetic fingerprint,
~1 bpp on a 128-px one, where the ~200-byte header weighs more), and asks for exactly that value. Images are
stamped 500 ppi.

Small images are refused below 65 px per side: there wsq 0.9's NBIS build decodes some images to garbage (mean
absolute errors of 30-150 grey levels, and not always the same garbage for the same bytes: uninitialised memory),
seen in about a third of synthetic-fingerprint crops with a 48-64 px side and in none of 4,500 crops with sides of
65-320 px. NBIS also fails on some images it cannot compress to below their raw size (e.g. uniform noise) and
prints its own error lines to stderr; those failures surface as a ValueError.
"""

from __future__ import annotations

import io
from types import ModuleType

import numpy as np
from PIL import Image

from biobench.metrics.compression.base import Codec
from biobench.metrics.compression.pillow_codecs import open_with_pillow

INSTALL_HINT = "pip install 'biobench[codecs]'"
NBIS_BITRATE = 0.75


def require_wsq() -> ModuleType:
    """The ``wsq`` module (importing it registers the WSQ Pillow plugin), or an ImportError that says how to
    install it."""
    try:
        import wsq
    except ImportError as err:
        raise ImportError(f"The WSQ baseline needs the optional wsq package: {INSTALL_HINT}.") from err
    return wsq


class WSQ(Codec):
    """WSQ at its one available bitrate (see the module docstring); grey images only."""

    name, knob = "wsq", "bitrate"
    qualities = (NBIS_BITRATE,)
    quality_range = (NBIS_BITRATE, NBIS_BITRATE)
    gray_only = True
    min_side = 65

    def __init__(self) -> None:
        require_wsq()

    def _check_quality(self, quality: float) -> float:
        if quality != NBIS_BITRATE:
            raise ValueError(f"wsq: the only bitrate wsq 0.9 can code is {NBIS_BITRATE} (its C extension overwrites "
                             f"the rate it is given), got {quality!r}.")  # fmt: skip
        return NBIS_BITRATE

    def _encode(self, image: np.ndarray, quality: float) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "WSQ")
        return buffer.getvalue()

    def _decode(self, data: bytes) -> np.ndarray:
        return open_with_pillow(data, "WSQ")
