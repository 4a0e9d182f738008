"""faiss backends of 1:N search (CPU): exact ``IndexFlatIP`` and compressed ``IndexIVFPQ``.

IVF-PQ keeps ``m`` bytes per template (``nbits = 8``) instead of ``4 D``: a coarse k-means quantiser of
``nlist`` cells, each template stored as the product-quantised residual to its cell's centroid; a query visits
the ``nprobe`` nearest cells. It is approximate: measure it against exact search with
:func:`biobench.matching.metrics.recall_at_1`. faiss runs its own OpenMP/BLAS thread pool; the matcher sets it to
the torch thread count (``threads``) so the two libraries do not oversubscribe the cores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from biobench.matching.checks import as_ids, as_templates, check_k, check_pair_dims, check_positive
from biobench.matching.matchers import Matches

INDEXES = ("flat", "ivfpq")


def import_faiss() -> Any:
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            "The faiss matchers need the faiss package: pip install faiss-cpu (or pip install 'biobench[matching]')."
        ) from err
    return faiss


class FaissMatcher:
    """1:N search of an enrolled gallery with a faiss index (``flat`` exact, ``ivfpq`` approximate).

    ``nlist`` (default ``sqrt(N)``, at most ``N / 39``), ``m`` (default ``D / 8`` sub-vectors, or the nearest
    smaller divisor of ``D``), ``nbits`` (bits per sub-vector code) and ``nprobe`` (cells visited per query; also
    settable later) configure IVF-PQ, trained on ``train_size`` gallery templates drawn with ``seed`` (default:
    ``max(64 nlist, 10,000)``, at most the gallery). Scores are inner products; results come back on the
    queries' device, ids -1 and score -inf where IVF-PQ found fewer than k templates in its cells.
    """

    def __init__(
        self,
        templates: Any,
        ids: Any = None,
        *,
        index: str = "flat",
        nlist: int | None = None,
        m: int | None = None,
        nbits: int = 8,
        nprobe: int = 16,
        train_size: int | None = None,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        faiss = import_faiss()
        if index not in INDEXES:
            raise ValueError(f"index must be one of {INDEXES}, got {index!r}.")
        templates = as_templates(templates, "gallery templates", allow_empty=False)
        gallery = np.ascontiguousarray(templates.detach().cpu().float().numpy())
        n, self.dim = gallery.shape
        self.kind = index
        self.threads = check_positive(threads if threads is not None else torch.get_num_threads(), "threads")
        self.ids = as_ids(ids, n, torch.device("cpu"))
        faiss.omp_set_num_threads(self.threads)
        if index == "flat":
            self.index = faiss.IndexFlatIP(self.dim)
        else:
            self.index = self._ivfpq(faiss, gallery, nlist, m, nbits, train_size, seed)
            self.nprobe = nprobe
        self.index.add(gallery)

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe) if self.kind == "ivfpq" else 0

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.index.nprobe = min(check_positive(value, "nprobe"), self.index.nlist)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: Any, k: int = 1) -> Matches:
        faiss = import_faiss()
        queries = as_templates(queries, "queries")
        check_pair_dims(queries, torch.empty(0, self.dim))
        k = min(check_k(k), len(self))
        faiss.omp_set_num_threads(self.threads)
        scores, index = self.index.search(np.ascontiguousarray(queries.detach().cpu().float().numpy()), k)
        scores, index = torch.from_numpy(scores), torch.from_numpy(index)
        missing = index < 0
        scores[missing] = float("-inf")
        ids = index if self.ids is None else torch.where(missing, -1, self.ids[index.clamp_min(0)])
        return Matches(scores.to(queries.device), ids.to(queries.device))

    def _ivfpq(self, faiss: Any, gallery: np.ndarray, nlist: int | None, m: int | None, nbits: int,
               train_size: int | None, seed: int) -> Any:  # fmt: skip
        n, d = gallery.shape
        nlist = check_positive(nlist if nlist is not None else max(1, min(math.isqrt(n), n // 39)), "nlist")
        m = check_positive(m if m is not None else max(x for x in range(1, max(1, d // 8) + 1) if d % x == 0), "m")
        if d % m:
            raise ValueError(f"IVF-PQ: m={m} sub-vectors must divide the template dimension D={d}.")
        if not 1 <= nbits <= 16:
            raise ValueError(f"IVF-PQ: nbits (bits per sub-vector code) must be in [1, 16], got {nbits}.")
        size = min(n, check_positive(train_size if train_size is not None else max(64 * nlist, 10_000), "train_size"))
        if size < max(nlist, 2**nbits):
            raise ValueError(
                f"IVF-PQ needs at least max(nlist, 2^nbits) = {max(nlist, 2**nbits)} training templates, got {size} "
                f"(gallery of {n}): lower nlist / nbits or use index='flat'."
            )
        sample = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.pq.cp.seed = seed
        index.train(gallery[sample])
        self._quantizer = quantizer  # the IVF index does not own it from Python
        return index
