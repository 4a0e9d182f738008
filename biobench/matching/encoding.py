"""Template precisions of the matmul: fp32 (exact), bf16 (half the memory, ~2x GEMM on CPUs with bf16 units) and
int8 (a quarter of the memory, VNNI / tensor-core integer GEMM).

int8 is symmetric quantisation ``x ~ scale * q``, ``q = round(x / scale)`` in [-127, 127]: one global scale
``max|x| / 127`` for the gallery (suits L2-normalised templates, whose entries share a range) and one per query
template. The top-k ranks the exact int32 dot products: neither scale changes a query's ranking (a positive
factor per query row, one factor for all columns), so both only multiply the returned scores. A scale per
gallery template was ~1 point of top-1 more accurate on unmated random templates but needs a pass over every
score block to rank (~10% of the int8 search on one CPU thread), or a loose filter bound that most groups pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

RAW_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.int32}  # of a score block
_VALUE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.int8}


@dataclass(frozen=True)
class Encoded:
    """Templates in one matmul precision: ``values [N, D]`` and, for int8, ``scale``: ``[N]`` (one per row) or a
    0-d tensor (one for all)."""

    values: Tensor
    scale: Tensor | None = None

    def __len__(self) -> int:
        return self.values.shape[0]

    def rows(self, start: int, stop: int) -> Encoded:
        return Encoded(self.values[start:stop], self._scale_rows(slice(start, stop)))

    def select(self, index: Tensor) -> Encoded:
        return Encoded(self.values[index], self._scale_rows(index))

    def _scale_rows(self, index: slice | Tensor) -> Tensor | None:
        return self.scale if self.scale is None or self.scale.ndim == 0 else self.scale[index]

    def padded(self, n: int) -> Encoded:
        """``n >= len(self)`` rows: zero templates appended (their scores are masked by the caller)."""
        extra = n - len(self)
        if extra <= 0:
            return self
        values = torch.cat([self.values, self.values.new_zeros(extra, self.values.shape[1])])
        if self.scale is None or self.scale.ndim == 0:
            return Encoded(values, self.scale)
        return Encoded(values, torch.cat([self.scale, self.scale.new_zeros(extra)]))

    def decode(self) -> Tensor:
        """float32 templates (the quantised values times their scale for int8)."""
        if self.scale is None:
            return self.values.float()
        return self.values.float() * (self.scale if self.scale.ndim == 0 else self.scale[:, None])


def encode(x: Tensor, dtype: str, scale: Tensor | None = None) -> Encoded:
    """``x [N, D]`` (floating, finite) in the precision ``dtype`` (``fp32``, ``bf16`` or ``int8``).

    int8: ``scale`` (0-d) quantises every row with one scale (see :func:`global_scale`); without it, each row
    gets its own.
    """
    if dtype != "int8":
        return Encoded(x.to(_VALUE_DTYPES[dtype]))
    x = x.float()
    if scale is None:
        scale = x.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
    values = torch.round(x / (scale if scale.ndim == 0 else scale[:, None])).clamp_(-127, 127).to(torch.int8)
    return Encoded(values, scale)


def global_scale(x: Tensor) -> Tensor:
    """The int8 scale ``max|x| / 127`` of a whole gallery (0-d float32; min / max passes, no temporary copy)."""
    low, high = torch.aminmax(x)
    return (torch.maximum(-low, high).float().clamp_min(torch.finfo(torch.float32).tiny) / 127.0).reshape(())


class BlockScorer:
    """Raw score blocks ``queries @ gallery_block.T`` written into a caller's buffer (no allocation per block):
    float32 / bfloat16 products, or the exact int32 dot products of int8 templates (scaled later, per column)."""

    def __init__(self) -> None:
        self._int_mm = True  # torch._int_mm where the device / shapes allow it, else exact float emulation

    def __call__(self, q: Encoded, g: Encoded, out: Tensor) -> Tensor:
        if q.values.dtype != torch.int8:
            return torch.mm(q.values, g.values.T, out=out)
        if self._int_mm:
            try:
                return torch._int_mm(q.values, g.values.T, out=out)
            except (RuntimeError, NotImplementedError):  # e.g. CUDA wants > 16 rows and multiples of 8
                self._int_mm = False
        # |dot| <= 127^2 D: exact in float32 up to D = 1040, in float64 beyond.
        wide = torch.float32 if 127 * 127 * q.values.shape[1] < 2**24 else torch.float64
        return out.copy_(torch.mm(q.values.to(wide), g.values.to(wide).T))
