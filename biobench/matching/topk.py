"""Exact running top-k over score blocks, with deterministic ties (equal scores: lower gallery index first).

Each (score, gallery index) pair is packed into one int64 key whose order is "higher score, then lower index":
the high 32 bits are the float32 score's bits mapped to an order-preserving signed integer, the low 32 bits are
``2^32 - 1 - index``. Keys are unique, so ``topk`` on keys is exact and tie-free on every device, and a stable
``np.argsort(-scores)`` gives the same list. Galleries hold fewer than 2^32 templates.

Two ways to fold a score block into the running top-k of its queries (same results):

- ``dense``: pack the whole block and ``topk`` it with the running keys. One sort-like pass per block: cheap
  on GPUs, ~3x slower than the ``threshold`` path on a CPU (measured: docs/matching.md).
- ``threshold``: the usual trick of exhaustive search (faiss keeps a heap and tests each score against its
  top). A score can only enter a query's top-k if it beats the query's current k-th score; blocks are visited in
  gallery order, so a later score that merely ties it has a higher index and loses. The filter is vectorised in
  two steps: the maximum of every group of ``TILE`` consecutive scores (one read of the block, reduced as
  integers), then only the groups above their query's threshold are gathered, their scores above it packed and
  merged. After the first blocks almost no group passes, so the top-k costs about one extra read of each block
  (all of it ~6-9% of the fp32 GEMM's time on one CPU thread) instead of a partial sort (~25%). The first
  block of each query sets the threshold to its own k-th score (``>=``, so ties there are kept). Few, large
  tensor ops per block also matter on a shared CPU, where every OpenMP region can wait milliseconds for a
  descheduled thread.
- ``add_rescored``: the same filter on a bf16 block, widened by the bf16 error bound, with the candidates'
  exact fp32 scores packed (``exact=True`` of :func:`~biobench.matching.search.topk_search`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

TILE = 256  # scores per group of the threshold filter: gallery blocks are padded to a multiple of it
MAX_GALLERY = 2**32
EMPTY = torch.iinfo(torch.int64).min  # key of an unfilled slot: below every real key
_LOW = 0xFFFFFFFF
_MAGNITUDE = 0x7FFFFFFF


def pack(scores: Tensor, index: Tensor) -> Tensor:
    """int64 keys ordered like ``(score descending, index ascending)``; ``index`` broadcasts against ``scores``."""
    bits = (scores.float() + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into +0.0: equal floats, equal keys
    ordered = bits ^ ((bits >> 31) & _MAGNITUDE)  # negative floats: flip the magnitude so the order holds
    return (ordered.to(torch.int64) << 32) | (_LOW - index)


def unpack_scores(keys: Tensor) -> Tensor:
    ordered = (keys >> 32).to(torch.int32)
    return (ordered ^ ((ordered >> 31) & _MAGNITUDE)).view(torch.float32)


def unpack_index(keys: Tensor) -> Tensor:
    return _LOW - (keys & _LOW)


@dataclass(frozen=True)
class ScoreBlock:
    """The matmul output ``raw [q, w]`` (float32, bfloat16, or the int32 dot products of int8 templates) of some
    queries against gallery columns ``offset ... offset + w``; columns from ``valid`` on are padding (zero
    templates), scored -inf. ``w`` is a multiple of ``TILE``."""

    raw: Tensor
    offset: int
    valid: int

    def dense(self) -> Tensor:
        """The float32 scores ``[q, w]`` (padding -inf)."""
        scores = self.raw.float()
        if self.valid < scores.shape[1]:
            scores = scores.clone() if scores is self.raw else scores
            scores[:, self.valid :] = float("-inf")
        return scores

    def passing_groups(self, groups: Tensor, lower: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows, groups)`` of the groups of ``groups [q, w / TILE, TILE]`` that may hold a score ``> lower[row]``.

        One max over the block and one comparison, both in integers: float scores as their sign-magnitude bits
        (bfloat16's integer max is ~6x faster than its float max), compared with each row's threshold turned into
        the same integers on the ``[q]`` side (rounded so that no passing score is lost; a negative threshold
        lets every group through).
        """
        top = groups.view(_BITS.get(self.raw.dtype, self.raw.dtype)).amax(dim=2)
        return (top >= _integer_threshold(lower, self.raw.dtype)[:, None]).nonzero(as_tuple=True)


_BITS = {torch.float32: torch.int32, torch.bfloat16: torch.int16}


def _integer_threshold(lower: Tensor, dtype: torch.dtype) -> Tensor:
    """Per-row ``t`` in the integers a block of ``dtype`` is reduced in: a score ``> lower`` has a value ``>= t``."""
    lower = lower.float() + 0.0  # -0.0 -> +0.0
    if not dtype.is_floating_point:  # int32 dot products, compared as float32 later: allow for that rounding
        t = torch.floor(lower - lower.abs() * 2.0**-22) + 1  # float32 arithmetic: no float64 needed (MPS)
        return t.clamp(-(2.0**31), 2.0**31 - 128).to(torch.int32)
    bits = lower.view(torch.int32)
    if dtype == torch.bfloat16:
        bits = bits >> 16  # the largest bfloat16 <= lower (non-negative: truncation rounds down)
    low = torch.iinfo(_BITS[dtype]).min
    return torch.where(lower >= 0, bits + 1, low).to(_BITS[dtype])


@dataclass(frozen=True)
class Rescore:
    """Exact re-scoring of a low-precision block's candidates.

    A block score ``s`` and the exact score differ by less than ``margin + relative |s|`` (``margin [q]`` per
    query row); ``score(rows, cols)`` gives the exact float32 scores of (query row, block column) pairs.
    """

    margin: Tensor
    relative: float
    score: Callable[[Tensor, Tensor], Tensor]

    def lower(self, floor: Tensor) -> Tensor:
        """Per row, a block score at or below which the exact score cannot beat ``floor`` (rounded down)."""
        bound = floor - self.margin
        lower = torch.where(bound >= 0, bound / (1 + self.relative), bound / (1 - self.relative))
        return lower - lower.abs() * 2.0**-20


class RunningTopK:
    """The best ``k`` (score, index) keys of ``n`` queries, updated block by block in gallery order."""

    def __init__(self, n: int, k: int, device: torch.device) -> None:
        self.k = k
        self.keys = torch.full((n, k), EMPTY, dtype=torch.int64, device=device)
        self.floor = torch.full((n,), float("-inf"), dtype=torch.float32, device=device)  # current k-th score

    def result(self) -> tuple[Tensor, Tensor]:
        """``(scores [n, k] float32, indices [n, k] int64)``, best first."""
        return unpack_scores(self.keys), unpack_index(self.keys)

    def add_dense(self, rows: slice, block: ScoreBlock) -> None:
        """Fold ``block`` into the top-k of queries ``rows``: every score packed, then one ``topk``."""
        index = torch.arange(block.offset, block.offset + block.raw.shape[1], device=block.raw.device)
        merged = torch.cat([self.keys[rows], pack(block.dense(), index)], dim=1)
        self.keys[rows] = merged.topk(self.k, dim=1).values

    def add_threshold(self, rows: slice, block: ScoreBlock, first: bool) -> None:
        """As :meth:`add_dense`, packing only the scores above the running k-th score (``first``: the block's)."""
        floor = self.floor[rows]
        if first:  # nextafter: ">" keeps the ties of the block's k-th score
            kth = block.dense().topk(self.k, dim=1).values[:, -1]
            floor = torch.nextafter(kth, kth.new_tensor(float("-inf")))
        found = self._above(block, floor)
        if found is not None:
            row, cols, scores = found
            self._merge(rows, row, pack(scores, cols + block.offset))

    def add_rescored(self, rows: slice, block: ScoreBlock, first: bool, rescore: Rescore) -> None:
        """As :meth:`add_threshold` for a low-precision block: the filter keeps every column whose exact score may
        beat the running k-th score (by ``rescore``'s error bound), and packs their exact scores."""
        floor = keep = self.floor[rows]
        if first:  # the exact scores of each row's k best block scores: their minimum bounds its exact k-th below
            q = block.raw.shape[0]
            top = block.dense().topk(self.k, dim=1).indices
            row = torch.arange(q, device=top.device).repeat_interleave(self.k)
            floor = rescore.score(row, top.flatten()).view(q, self.k).amin(dim=1)
            keep = torch.full_like(floor, float("-inf"))  # every candidate competes: ties of the k-th included
        found = self._above(block, rescore.lower(floor))
        if found is not None:
            row, cols, _ = found
            scores = rescore.score(row, cols)
            hit = scores > keep[row]
            self._merge(rows, row[hit], pack(scores[hit], cols[hit] + block.offset))

    def _above(self, block: ScoreBlock, lower: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(rows, cols, scores)`` of the block entries scoring ``> lower[row]``, sorted by row, or None.

        Two steps: a bound per group of ``TILE`` columns (one read of the block), then the entries of the groups
        that pass."""
        q, w = block.raw.shape
        width = w // TILE
        groups = block.raw.view(q, width, TILE)  # group j: columns j TILE ... (j + 1) TILE - 1
        row, group = block.passing_groups(groups, lower)
        if row.numel() == 0:
            return None
        picked = groups[row, group]  # [H, TILE], sorted by row
        hit, member = (picked > lower[row, None]).nonzero(as_tuple=True)  # promoted to float32, as packed
        row, cols = row[hit], group[hit] * TILE + member
        scores = picked[hit, member].float()
        if block.valid < w:  # the last block: drop its padding
            real = cols < block.valid
            row, cols, scores = row[real], cols[real], scores[real]
        return row, cols, scores

    def _merge(self, rows: slice, cand_row: Tensor, cand_keys: Tensor) -> None:
        """Merge candidates (sorted by their local query row) into the running keys of those queries."""
        if cand_row.numel() == 0:
            return
        urow, seg, counts = torch.unique_consecutive(cand_row, return_inverse=True, return_counts=True)
        start = torch.cumsum(counts, 0) - counts
        pos = torch.arange(cand_row.numel(), device=cand_row.device) - start[seg]
        padded = torch.full((urow.numel(), int(counts.max())), EMPTY, dtype=torch.int64, device=cand_keys.device)
        padded[seg, pos] = cand_keys
        keys, floor = self.keys[rows], self.floor[rows]  # views: writing them updates the state
        merged = torch.cat([keys[urow], padded], dim=1).topk(self.k, dim=1).values
        keys[urow] = merged
        floor[urow] = unpack_scores(merged[:, -1])
