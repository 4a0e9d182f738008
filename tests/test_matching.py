"""biobench.matching: exact top-k against a numpy brute force (ties included), the faiss backends, the precision
modes' agreement with fp32, and the bad-input errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from biobench.matching import (
    TorchMatcher,
    build_matcher,
    pair_scores,
    recall_at_1,
    recall_at_k,
    topk_agreement,
    topk_search,
)
from biobench.matching.topk import pack, unpack_index, unpack_scores


def brute_force(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 scores and a stable argsort: equal scores keep the lower gallery index first."""
    scores = queries.astype(np.float64) @ gallery.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def grid_templates(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    """Entries in {-0.5, -0.25, 0, 0.25, 0.5}: every dot product is exact in float32, whatever the summation
    order of the BLAS, and equal scores are frequent."""
    return rng.integers(-2, 3, size=(n, d)).astype(np.float32) / 4


def clustered(n: int, d: int, clusters: int, gen: torch.Generator) -> torch.Tensor:
    centres = F.normalize(torch.randn(clusters, d, generator=gen), dim=1)
    labels = torch.randint(0, clusters, (n,), generator=gen)
    return F.normalize(centres[labels] + torch.randn(n, d, generator=gen) / d**0.5, dim=1)


def probes_of(gallery: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Noisy second impressions of ``n`` gallery templates (genuine probes)."""
    rows = torch.randint(0, gallery.shape[0], (n,), generator=gen)
    noise = 0.5 * torch.randn(n, gallery.shape[1], generator=gen) / gallery.shape[1] ** 0.5
    return F.normalize(gallery[rows] + noise, dim=1)


pytestmark = pytest.mark.usefixtures("one_thread")  # single images / tiny GEMMs: faster on one thread


@pytest.fixture(scope="module")
def tied() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gallery = grid_templates(rng, 1000)
    gallery[500:620] = gallery[:120]  # duplicate rows: exact ties at distant indices
    gallery[700:705] = gallery[3]
    return grid_templates(rng, 150), gallery


@pytest.mark.parametrize("mode", ["threshold", "dense", "bf16 exact"])
@pytest.mark.parametrize(
    ("query_chunk", "gallery_chunk", "k"),
    [(1024, 4096, 10), (7, 100, 10), (64, 64, 1), (150, 1, 3), (13, 129, 37), (40, 256, 1000)],
)
def test_topk_equals_stable_brute_force(tied, mode, query_chunk, gallery_chunk, k):
    queries, gallery = tied
    kw = dict(dtype="bf16", exact=True) if mode == "bf16 exact" else dict(strategy=mode)
    scores, index = topk_search(queries, gallery, k, query_chunk=query_chunk, gallery_chunk=gallery_chunk, **kw)
    ref_scores, ref_index = brute_force(queries, gallery, k)
    assert scores.dtype == torch.float32 and index.dtype == torch.int64
    assert scores.shape == index.shape == (150, min(k, 1000))  # k > N returns the whole gallery, sorted
    np.testing.assert_array_equal(index.numpy(), ref_index)
    np.testing.assert_array_equal(scores.numpy(), ref_scores.astype(np.float32))


@pytest.mark.parametrize("d", [32, 1100])  # int8 dot products beyond D = 1040 round in float32
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_threshold_filter_equals_dense_topk_in_every_precision(dtype, d):
    """The filter only skips what cannot matter: same lists as packing every score, with ties (bf16 / int8 round
    many scores to equal values), a padded last block, and all scores negative (floats' bits order reversed)."""
    gen = torch.Generator().manual_seed(5)
    gallery = F.normalize(torch.randn(2111, d, generator=gen), dim=1)
    queries = F.normalize(torch.randn(40, d, generator=gen), dim=1)
    for q, g in ((queries, gallery), (-queries.abs(), gallery.abs())):
        kw = dict(gallery_chunk=256, query_chunk=16, dtype=dtype)
        dense, threshold = topk_search(q, g, 7, strategy="dense", **kw), topk_search(q, g, 7, **kw)
        assert torch.equal(dense[1], threshold[1]) and torch.equal(dense[0], threshold[0])


def test_every_block_improving_the_topk(tied):
    """A gallery sorted by ascending score: every block beats the running top-k (the worst case of the filter)."""
    queries, gallery = tied
    query = queries[:1]
    gallery = gallery[np.argsort(gallery @ query[0], kind="stable")]
    for strategy in ("threshold", "dense"):
        _, index = topk_search(query, gallery, 50, gallery_chunk=64, strategy=strategy)
        np.testing.assert_array_equal(index.numpy(), brute_force(query, gallery, 50)[1])


def test_normalised_random_templates_and_negative_scores():
    gen = torch.Generator().manual_seed(1)
    gallery = F.normalize(torch.randn(3001, 48, generator=gen), dim=1)
    queries = F.normalize(torch.randn(70, 48, generator=gen), dim=1)
    scores, index = topk_search(queries, gallery, 5, query_chunk=32, gallery_chunk=500)
    ref_scores, ref_index = brute_force(queries.numpy(), gallery.numpy(), 5)
    np.testing.assert_allclose(scores.numpy(), ref_scores, atol=1e-5)
    np.testing.assert_array_equal(index[:, 0].numpy(), ref_index[:, 0])
    assert topk_agreement(index, ref_index) > 0.99
    # every score negative: positive gallery entries, negative query entries
    scores, index = topk_search(-queries.abs(), gallery.abs(), 3, gallery_chunk=500)
    np.testing.assert_array_equal(index.numpy(), brute_force(-queries.abs().numpy(), gallery.abs().numpy(), 3)[1])
    assert (scores < 0).all()


def test_bf16_exact_mode_returns_the_fp32_topk():
    """bf16 rounds these templates (unlike the grid ones): only the error bound keeps the fp32 answer."""
    gen = torch.Generator().manual_seed(6)
    gallery = F.normalize(torch.randn(20000, 96, generator=gen), dim=1)
    queries = torch.cat([F.normalize(torch.randn(100, 96, generator=gen), dim=1), probes_of(gallery, 100, gen)])
    fp32 = topk_search(queries, gallery, 10, gallery_chunk=2048)
    exact = TorchMatcher(gallery, dtype="bf16", exact=True, gallery_chunk=2048).search(queries, 10)
    assert torch.equal(exact.ids, fp32[1])
    np.testing.assert_allclose(exact.scores.numpy(), fp32[0].numpy(), atol=1e-6)  # re-scored: fp32 up to sum order
    assert recall_at_1(topk_search(queries, gallery, 10, dtype="bf16")[1], fp32[1]) < 1  # rounding does matter


def test_keys_order_like_score_then_index():
    scores = torch.tensor([0.5, -0.0, 0.0, -1.5, 3.0, -1.5, float("-inf"), 1e-30, -1e-30])
    index = torch.arange(scores.numel())
    keys = pack(scores, index)
    assert torch.equal(unpack_index(keys), index)
    assert torch.equal(unpack_scores(keys), scores + 0.0)
    order = torch.argsort(keys, descending=True)
    expected = np.lexsort((index.numpy(), -(scores.numpy() + 0.0)))
    np.testing.assert_array_equal(order.numpy(), expected)  # -0.0 and 0.0 tie: lower index first


def test_empty_queries_and_pair_scores():
    gallery = torch.randn(10, 8)
    scores, index = topk_search(torch.zeros(0, 8), gallery, 3)
    assert scores.shape == index.shape == (0, 3)
    a, b = torch.randn(100, 8), torch.randn(100, 8)
    np.testing.assert_allclose(pair_scores(a, b, chunk=7).numpy(), (a * b).sum(1).numpy(), atol=1e-6)


def test_torch_matcher_ids_verify_and_precisions():
    gen = torch.Generator().manual_seed(2)
    gallery = clustered(4000, 64, 50, gen)
    queries = probes_of(gallery, 300, gen)
    exact = topk_search(queries, gallery, 10)[1]
    matcher = TorchMatcher(gallery, ids=np.arange(4000) + 1000, gallery_chunk=512)
    found = matcher.search(queries, 10)
    assert torch.equal(found.ids, exact + 1000) and len(matcher) == 4000 and matcher.dim == 64
    np.testing.assert_allclose(matcher.verify(queries, exact[:, 0]).numpy(), found.scores[:, 0].numpy(), atol=1e-5)
    for dtype, bound in (("bf16", 0.97), ("int8", 0.97)):
        approx = TorchMatcher(gallery, dtype=dtype).search(queries, 10)
        assert recall_at_1(approx.ids, exact) >= bound, dtype
        assert topk_agreement(approx.ids, exact) >= 0.9, dtype
        np.testing.assert_allclose(approx.scores[:, 0].numpy(), found.scores[:, 0].numpy(), atol=0.03)
        assert torch.equal(topk_search(queries, gallery, 10, dtype=dtype)[1], approx.ids)  # per block = whole


def test_recall_metrics():
    exact = torch.tensor([[0, 1], [2, 3], [4, 5]])
    approx = torch.tensor([[0, 9], [3, 2], [7, 8]])
    assert recall_at_1(approx, exact) == pytest.approx(1 / 3)
    assert recall_at_k(approx, exact, 2) == pytest.approx(2 / 3)
    assert topk_agreement(approx, exact) == pytest.approx(3 / 6)


def test_faiss_flat_equals_torch():
    pytest.importorskip("faiss")
    gen = torch.Generator().manual_seed(3)
    gallery = F.normalize(torch.randn(5000, 64, generator=gen), dim=1)
    queries = F.normalize(torch.randn(200, 64, generator=gen), dim=1)
    ours = build_matcher("torch", gallery).search(queries, 10)
    theirs = build_matcher("faiss_flat", gallery, threads=1).search(queries, 10)
    np.testing.assert_allclose(theirs.scores.numpy(), ours.scores.numpy(), atol=1e-5)
    assert torch.equal(theirs.ids, ours.ids)


def test_faiss_ivfpq_recall_on_clustered_templates():
    pytest.importorskip("faiss")
    gen = torch.Generator().manual_seed(4)
    gallery = clustered(10000, 64, 100, gen)
    queries = probes_of(gallery, 500, gen)
    exact = topk_search(queries, gallery, 10)[1]
    ivfpq = build_matcher("faiss_ivfpq", gallery, nlist=16, m=16, nbits=6, nprobe=8, train_size=2000, threads=1)
    found = ivfpq.search(queries, 10)
    assert len(ivfpq) == 10000 and ivfpq.nprobe == 8
    assert recall_at_1(found.ids, exact) >= 0.95  # observed 0.988
    assert recall_at_k(found.ids, exact, 10) >= 0.97  # observed 0.998


def test_faiss_bad_parameters():
    pytest.importorskip("faiss")
    gallery = torch.randn(300, 64)
    with pytest.raises(ValueError, match="must divide"):
        build_matcher("faiss_ivfpq", gallery, nlist=4, m=7)
    with pytest.raises(ValueError, match="training templates"):
        build_matcher("faiss_ivfpq", gallery, nlist=4, m=8, nbits=10)
    with pytest.raises(ValueError, match="dimension"):
        build_matcher("faiss_flat", gallery).search(torch.randn(2, 32), 1)


def test_missing_faiss_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # what `import faiss` meets where it is not installed
    with pytest.raises(ImportError, match=r"pip install faiss-cpu \(or pip install 'biobench\[matching\]'\)"):
        build_matcher("faiss_flat", torch.randn(10, 8))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: topk_search(torch.randn(3, 16), g, 2), "queries have dimension D=16 but the gallery has D=8"),
        (lambda g: topk_search(torch.full((2, 8), float("nan")), g, 2), "queries hold non-finite"),
        (
            lambda g: topk_search(torch.randn(2, 8), g.index_fill(0, torch.tensor([5]), float("inf")), 2),
            r"gallery templates hold non-finite values \(NaN or inf\) in 1 of 10 rows \(first: row 5\)",
        ),
        (lambda g: topk_search(torch.randn(2, 8), g[:0], 2), "gallery templates are empty"),
        (lambda g: topk_search(torch.randn(2, 8), g, 0), r"k \(the number of matches per query\) must be"),
        (lambda g: topk_search(torch.randn(8), g, 1), r"queries must be 2-D \[N, D\].*got shape \(8,\)"),
        (lambda g: topk_search(torch.randn(2, 8), g[None], 1), "gallery templates must be 2-D"),
        (lambda g: topk_search(torch.randn(2, 8), g, 1, dtype="fp16"), "dtype must be one of"),
        (lambda g: TorchMatcher(g, dtype="int8", exact=True), "dtype='int8' has no exact mode"),
        (lambda g: topk_search(torch.randn(2, 8), g.long(), 1), "floating-point"),
        (lambda g: TorchMatcher(g, ids=[1, 2]), "one entry per gallery template"),
        (lambda g: TorchMatcher(g).search(torch.randn(2, 4), 1), "dimension D=4"),
        (lambda g: TorchMatcher(g).verify(torch.randn(2, 8), [0, 10]), r"rows must be in \[0, 10\)"),
        (lambda g: build_matcher("annoy", g), "backend must be one of"),
        (lambda g: pair_scores(g, g[:3]), "shapes must match"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.randn(10, 8))
