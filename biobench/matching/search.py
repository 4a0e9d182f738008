"""Functional core of 1:N and 1:1 matching of fixed-length templates (similarity = dot product).

``topk_search`` visits the gallery in blocks of ``gallery_chunk`` templates (the outer loop: each block is read
from memory once and stays in cache while every query chunk is scored against it) and the queries in chunks of
``query_chunk``; a score block ``[query_chunk, gallery_chunk]`` is written into one reused buffer and folded into
an exact running top-k (:mod:`biobench.matching.topk`). Memory beyond the inputs and outputs is a few score
blocks, whatever the gallery size. Everything runs on the gallery's device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor

from biobench.matching.checks import (
    as_templates,
    check_dtype,
    check_exact,
    check_k,
    check_pair_dims,
    check_positive,
)
from biobench.matching.encoding import RAW_DTYPES, BlockScorer, Encoded, encode, global_scale
from biobench.matching.topk import MAX_GALLERY, TILE, Rescore, RunningTopK, ScoreBlock

STRATEGIES = ("auto", "threshold", "dense")
QUERY_CHUNK = 2048
GALLERY_CHUNK = 4096


def topk_search(
    queries: Any,
    gallery: Any,
    k: int,
    *,
    query_chunk: int = QUERY_CHUNK,
    gallery_chunk: int = GALLERY_CHUNK,
    dtype: str = "fp32",
    exact: bool = False,
    strategy: str = "auto",
) -> tuple[Tensor, Tensor]:
    """The ``k`` best gallery rows of every query by dot product: ``(scores [Q, k] float32, indices [Q, k] int64)``.

    Rows are best first; equal scores list the lower gallery index first (as a stable ``np.argsort(-scores)``).
    ``k`` larger than the gallery returns all ``N`` rows (``min(k, N)`` columns). ``dtype`` is the precision
    both sides are cast to for the matmul (``fp32`` exact; ``bf16`` / ``int8`` faster and smaller, see
    :mod:`biobench.matching.encoding`); the gallery is cast block by block, so no full copy is made.
    ``exact=True`` with ``bf16`` uses the bf16 GEMM only to rule out gallery rows: every row its error bound
    (:func:`bf16_error_bound`) cannot rule out is re-scored in fp32, so the result is the exact fp32 top-k (scores
    equal to fp32's up to summation order) at close to bf16 speed. ``strategy`` picks how blocks are folded
    into the top-k (``auto``: ``threshold`` on CPU, ``dense`` elsewhere; same results). Queries on another device
    than the gallery are moved to the gallery's.
    """
    gallery = as_templates(gallery, "gallery templates", allow_empty=False)
    queries = as_templates(queries, "queries").to(gallery.device)
    check_pair_dims(queries, gallery)
    dtype = check_dtype(dtype)
    scale = global_scale(gallery) if dtype == "int8" else None
    return search_encoded(
        encode(queries, dtype),
        lambda start, stop: encode(gallery[start:stop], dtype, scale),
        gallery.shape[0],
        k,
        dtype=dtype,
        query_chunk=query_chunk,
        gallery_chunk=gallery_chunk,
        strategy=strategy,
        exact=exact_source(queries, lambda start, stop: gallery[start:stop], dtype, exact),
    )


@dataclass(frozen=True)
class ExactSource:
    """The fp32 templates that bf16 candidates are re-scored with: ``queries [Q, D]`` and ``gallery_rows``."""

    queries: Tensor
    gallery_rows: Callable[[int, int], Tensor]


def exact_source(
    queries: Tensor, gallery_rows: Callable[[int, int], Tensor], dtype: str, exact: bool
) -> ExactSource | None:
    """The re-scoring source of ``exact=True`` (``None`` where the matmul is already exact, fp32, or not asked)."""
    return ExactSource(queries.float(), gallery_rows) if check_exact(dtype, exact) else None


def bf16_error_bound(d: int) -> tuple[float, float]:
    """``(c, r)`` with ``|bf16 score s - fp32 score| < c |q| |g| + r |s|`` for D-dimensional templates.

    Rounding both templates to bf16 (unit roundoff u = 2^-8, round to nearest even, as torch's casts) moves each
    product by at most ``(2u + u^2) |q_i g_i|``, so the dot product by ``(2u + u^2) |q| |g|`` (Cauchy-Schwarz);
    float32 accumulation, in the GEMM and in the fp32 re-scoring, adds ``~D 2^-24 |q| |g|`` each; rounding the
    GEMM's output to bf16 adds ``u / (1 - u) |s|``. Both terms get a 50% margin (it also covers an output rounded by
    truncation, 2u).
    """
    u, gamma = 2.0**-8, 1.01 * d * 2.0**-24
    return 1.5 * (2 * u + u * u + gamma * (1 + u) ** 2 + gamma), 1.5 * u / (1 - u)


def search_encoded(
    queries: Encoded,
    gallery_rows: Callable[[int, int], Encoded],
    n: int,
    k: int,
    *,
    dtype: str,
    query_chunk: int = QUERY_CHUNK,
    gallery_chunk: int = GALLERY_CHUNK,
    strategy: str = "auto",
    exact: ExactSource | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`topk_search` on checked, encoded inputs; ``gallery_rows(start, stop)`` gives gallery rows encoded
    (int8: with one global scale); ``exact`` re-scores bf16 candidates (the threshold filter, on any device)."""
    k = min(check_k(k), n)
    query_chunk = check_positive(query_chunk, "query_chunk")
    gallery_chunk = check_positive(gallery_chunk, "gallery_chunk")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}.")
    if n >= MAX_GALLERY:
        raise ValueError(f"galleries hold fewer than 2^32 templates, got {n}: split the gallery and merge results.")
    device = queries.values.device
    if strategy == "auto":
        strategy = "threshold" if device.type == "cpu" else "dense"
    n_queries = len(queries)
    state = RunningTopK(n_queries, k, device)
    if n_queries == 0:
        return state.result()

    width = _round_up(max(gallery_chunk, k), TILE)  # >= k: the first block fills every query's top-k
    rows = min(query_chunk, n_queries)
    buffer = torch.empty(rows * width, dtype=RAW_DTYPES[dtype], device=device)
    score = BlockScorer()
    if exact is not None:
        absolute, relative = bf16_error_bound(exact.queries.shape[1])
        bound = absolute * torch.linalg.vector_norm(exact.queries, dim=1)
    for start in range(0, n, width):
        stop = min(n, start + width)
        gallery = gallery_rows(start, stop).padded(_round_up(stop - start, TILE))
        w = len(gallery)
        if exact is not None:
            gallery32 = exact.gallery_rows(start, stop).float()
            norm = torch.linalg.vector_norm(gallery32, dim=1).amax()
        for q0 in range(0, n_queries, rows):
            q1 = min(n_queries, q0 + rows)
            raw = score(queries.rows(q0, q1), gallery, buffer[: (q1 - q0) * w].view(q1 - q0, w))
            block = ScoreBlock(raw, start, stop - start)
            if exact is not None:
                rescore = Rescore(bound[q0:q1] * norm, relative, partial(_dot_pairs, exact.queries[q0:q1], gallery32))
                state.add_rescored(slice(q0, q1), block, start == 0, rescore)
            elif strategy == "dense":
                state.add_dense(slice(q0, q1), block)
            else:
                state.add_threshold(slice(q0, q1), block, start == 0)
    scores, indices = state.result()
    if queries.scale is not None:  # int8: the top-k ranked the integer dot products
        scores = scores * (queries.scale[:, None] * gallery.scale)
    return scores, indices


def pair_scores(a: Any, b: Any, *, chunk: int = 65536) -> Tensor:
    """1:1 scores: the row-wise dot products ``[P]`` float32 of ``a [P, D]`` and ``b [P, D]`` (``chunk`` rows at
    a time, bounding the temporary product)."""
    a = as_templates(a, "first templates (a)")
    b = as_templates(b, "second templates (b)").to(a.device)
    if a.shape != b.shape:
        raise ValueError(f"pair_scores compares row i of a with row i of b: shapes must match, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}.")  # fmt: skip
    chunk = check_positive(chunk, "chunk")
    out = torch.empty(a.shape[0], dtype=torch.float32, device=a.device)
    for start in range(0, a.shape[0], chunk):
        stop = start + chunk
        out[start:stop] = (a[start:stop].float() * b[start:stop].float()).sum(dim=1)
    return out


def _dot_pairs(a: Tensor, b: Tensor, rows: Tensor, cols: Tensor, chunk: int = 8192) -> Tensor:
    """``a[rows[i]] . b[cols[i]]`` in float32, ``chunk`` pairs at a time (the same reduction for every pair)."""
    out = torch.empty(rows.numel(), dtype=torch.float32, device=a.device)
    for start in range(0, rows.numel(), chunk):
        stop = start + chunk
        out[start:stop] = (a.index_select(0, rows[start:stop]) * b.index_select(0, cols[start:stop])).sum(dim=1)
    return out


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple
