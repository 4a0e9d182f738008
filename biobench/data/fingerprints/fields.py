"""Per-print ground truth as fixed-size numbers, so PyTorch's default collate batches it.

- minutiae: ``[max_minutiae, 4]`` float32 rows ``(x, y, angle, kind)`` (:meth:`Minutiae.to_array`), zero-padded,
  the first ``n_minutiae`` valid; a print with more than ``max_minutiae`` is an error, never silently cut;
- appearance attributes (:data:`ATTRIBUTES`): every :class:`ImpressionParams` field and the skin ``condition``;
  ``device`` and ``condition`` as int64 indices into :data:`DEVICES` / :data:`CONDITIONS`, the rest float32
  (lengths in pixels of the generator's canvas, angles in degrees).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from biobench.data.fingerprints.impression import CONDITIONS, DEVICES, ImpressionParams

CATEGORIES: dict[str, tuple[str, ...]] = {"device": DEVICES, "condition": CONDITIONS}
ATTRIBUTES: tuple[str, ...] = (*(f.name for f in fields(ImpressionParams)), "condition")


def encode_attributes(params: Sequence[ImpressionParams]) -> dict[str, np.ndarray]:
    """``{attribute: [N] array}`` of N impressions (see the module docstring)."""
    rows = [p.as_dict() for p in params]
    out = {}
    for name in ATTRIBUTES:
        values = [r[name] for r in rows]
        if name in CATEGORIES:
            out[name] = np.array([CATEGORIES[name].index(v) for v in values], dtype=np.int64)
        else:
            out[name] = np.array(values, dtype=np.float32)
    return out


def stack_minutiae(rows: Sequence[np.ndarray], width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(minutiae [N, width, 4] float32 zero-padded, n_minutiae [N] int64)`` of N prints' ``[n_i, 4]`` rows.

    ``width`` defaults to the largest ``n_i``.
    """
    counts = np.array([len(r) for r in rows], dtype=np.int64)
    most = int(counts.max(initial=0))
    width = most if width is None else width
    if most > width:
        raise ValueError(
            f"A print has {most} minutiae, more than max_minutiae={width}: raise max_minutiae "
            "(data.max_minutiae for data=fingerprints) so that none is dropped."
        )
    out = np.zeros((len(rows), width, 4), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, counts
