"""Stateful matchers over an enrolled gallery: :class:`TorchMatcher` (exact, any device) and the factory
:func:`build_matcher` that also builds the faiss backends (:mod:`biobench.matching.faiss_backend`).

Every matcher has ``search(queries, k) -> Matches`` (1:N identification: the ``k`` best gallery templates of
every query, best first), ``len(matcher)`` (gallery size) and ``dim`` (template dimension).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor

from biobench.matching.checks import (
    as_ids,
    as_templates,
    check_dtype,
    check_exact,
    check_pair_dims,
    check_positive,
)
from biobench.matching.encoding import encode, global_scale
from biobench.matching.search import (
    GALLERY_CHUNK,
    QUERY_CHUNK,
    STRATEGIES,
    ExactSource,
    pair_scores,
    search_encoded,
)

BACKENDS = ("torch", "faiss_flat", "faiss_ivfpq")


class Matches(NamedTuple):
    """``scores [Q, k]`` float32 similarities, best first, and the ``ids [Q, k]`` int64 of the gallery templates
    (their row indices when the gallery was built without ids; -1 where an approximate index found fewer than k)."""

    scores: Tensor
    ids: Tensor


class Matcher(Protocol):
    dim: int

    def __len__(self) -> int: ...

    def search(self, queries: Any, k: int = 1) -> Matches: ...


class TorchMatcher:
    """Top-k search of an enrolled gallery with :func:`~biobench.matching.search.topk_search` (exact in fp32).

    The gallery is checked once and stored in the matmul precision ``dtype`` (``bf16`` halves and ``int8``
    quarters its memory; fp32 templates are kept by reference, not copied), on ``device`` (default: where
    ``templates`` are); queries go to that device.
    ``exact=True`` with ``bf16`` also keeps the fp32 templates (1.5x the fp32 memory) and returns the exact
    fp32 top-k at close to bf16 speed (see :func:`~biobench.matching.search.topk_search`).
    """

    def __init__(
        self,
        templates: Any,
        ids: Any = None,
        *,
        dtype: str = "fp32",
        exact: bool = False,
        query_chunk: int = QUERY_CHUNK,
        gallery_chunk: int = GALLERY_CHUNK,
        strategy: str = "auto",
        device: str | torch.device | None = None,
    ) -> None:
        templates = as_templates(templates, "gallery templates", allow_empty=False)
        if device is not None:
            templates = templates.to(device)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}.")
        self.dtype = check_dtype(dtype)
        self.query_chunk = check_positive(query_chunk, "query_chunk")
        self.gallery_chunk = check_positive(gallery_chunk, "gallery_chunk")
        self.strategy = strategy
        self.dim = templates.shape[1]
        self.device = templates.device
        self.exact = check_exact(self.dtype, exact)
        self.templates32 = templates.float() if self.exact else None
        self.gallery = encode(templates, self.dtype, global_scale(templates) if self.dtype == "int8" else None)
        self.ids = as_ids(ids, templates.shape[0], self.device)

    def __len__(self) -> int:
        return len(self.gallery)

    def search(self, queries: Any, k: int = 1) -> Matches:
        queries = self._queries(queries)
        scores, index = search_encoded(
            encode(queries, self.dtype),
            self.gallery.rows,
            len(self),
            k,
            dtype=self.dtype,
            query_chunk=self.query_chunk,
            gallery_chunk=self.gallery_chunk,
            strategy=self.strategy,
            exact=None if self.templates32 is None else ExactSource(queries.float(), self._templates32_rows),
        )
        return Matches(scores, index if self.ids is None else self.ids[index])

    def _templates32_rows(self, start: int, stop: int) -> Tensor:
        assert self.templates32 is not None
        return self.templates32[start:stop]

    def verify(self, queries: Any, rows: Any) -> Tensor:
        """1:1 scores ``[P]`` of query ``i`` against gallery row ``rows[i]`` (e.g. the claimed identity's)."""
        queries = self._queries(queries)
        rows = torch.as_tensor(rows, device=self.device).long().flatten()
        if rows.numel() != queries.shape[0]:
            raise ValueError(f"verify needs one gallery row per query: got {rows.numel()} rows for "
                             f"{queries.shape[0]} queries.")  # fmt: skip
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(self)):
            raise ValueError(f"verify: gallery rows must be in [0, {len(self)}), got [{int(rows.min())}, "
                             f"{int(rows.max())}].")  # fmt: skip
        return pair_scores(encode(queries, self.dtype).decode(), self.gallery.select(rows).decode())

    def _queries(self, queries: Any) -> Tensor:
        queries = as_templates(queries, "queries").to(self.device)
        check_pair_dims(queries, self.gallery.values)
        return queries


def build_matcher(backend: str, templates: Any, ids: Any = None, **kwargs: Any) -> Matcher:
    """A matcher of ``backend``: ``torch`` (:class:`TorchMatcher`), ``faiss_flat`` (exact ``IndexFlatIP``) or
    ``faiss_ivfpq`` (compressed ``IndexIVFPQ``); ``kwargs`` go to its constructor."""
    if backend == "torch":
        return TorchMatcher(templates, ids, **kwargs)
    if backend in ("faiss_flat", "faiss_ivfpq"):
        from biobench.matching.faiss_backend import FaissMatcher

        return FaissMatcher(templates, ids, index=backend.removeprefix("faiss_"), **kwargs)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
