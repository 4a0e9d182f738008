"""Fast 1:1 and 1:N matching of fixed-length templates (L2-normalised embeddings, similarity = dot product).

- :func:`topk_search` / :func:`pair_scores`: the functional core in torch (chunked, exact, any device; fp32,
  bf16 or int8 templates);
- :class:`TorchMatcher`, :class:`~biobench.matching.faiss_backend.FaissMatcher` (``pip install faiss-cpu``)
  and :func:`build_matcher`: an enrolled gallery with ``search(queries, k)``;
- :func:`recall_at_1`, :func:`recall_at_k`, :func:`topk_agreement`: approximate search against exact search.

See ``docs/matching.md`` for the design and measured throughput.
"""

from biobench.matching.checks import DTYPES
from biobench.matching.faiss_backend import FaissMatcher  # faiss itself is imported when one is built
from biobench.matching.matchers import BACKENDS, Matcher, Matches, TorchMatcher, build_matcher
from biobench.matching.metrics import recall_at_1, recall_at_k, topk_agreement
from biobench.matching.search import STRATEGIES, pair_scores, topk_search

__all__ = [
    "BACKENDS",
    "DTYPES",
    "STRATEGIES",
    "FaissMatcher",
    "Matcher",
    "Matches",
    "TorchMatcher",
    "build_matcher",
    "pair_scores",
    "recall_at_1",
    "recall_at_k",
    "topk_agreement",
    "topk_search",
]
