"""Fingerprint generator throughput on this machine: masters/s and impressions/s (320 x 320, 500 dpi).

Both rates are measured with ``--workers`` processes (one torch thread each), as ``make_fingerprints.py`` runs;
each worker times its own share, the impressions after its masters exist,
and printed as ratios to the goals (>= 2 masters/s, >= 20 impressions/s once masters exist) and as the time a
10,000-image set (1,250 fingers x 8 impressions) takes.

    python scripts/bench_fingerprints.py [--fingers 24] [--impressions 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from biobench.data.fingerprints import FingerprintGenerator

SIZE = 320


def _masters(fingers: list[int]) -> float:
    torch.set_num_threads(1)
    gen = FingerprintGenerator(size=SIZE, cache_size=len(fingers))
    start = time.perf_counter()
    for f in fingers:
        gen.master(f)
    return time.perf_counter() - start


def _impressions(fingers: list[int], impressions: int) -> float:
    torch.set_num_threads(1)
    gen = FingerprintGenerator(size=SIZE, cache_size=len(fingers))
    for f in fingers:
        gen.master(f)
    start = time.perf_counter()
    for f in fingers:
        for i in range(impressions):
            gen.impression(f, i)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fingers", type=int, default=24)
    parser.add_argument("--impressions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.workers < 1 or args.fingers < args.workers:
        parser.error("need --workers >= 1 and at least one finger per worker")
    shards = [list(range(k, args.fingers, args.workers)) for k in range(args.workers)]
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        # each worker times its own share (after start-up); shares run side by side, so the slowest sets the rate
        masters_per_s = args.fingers / max(pool.map(_masters, shards))
        impressions_per_s = (
            args.fingers * args.impressions / max(pool.map(_impressions, shards, [args.impressions] * len(shards)))
        )
    print(f"masters:     {masters_per_s:6.2f}/s  = {masters_per_s / 2:.2f} x goal (2/s)")
    print(f"impressions: {impressions_per_s:6.2f}/s  = {impressions_per_s / 20:.2f} x goal (20/s)")
    set_time = 1250 / masters_per_s + 10_000 / impressions_per_s
    print(f"10,000-image set (1,250 fingers x 8): {set_time / 60:.1f} min with {args.workers} workers")


if __name__ == "__main__":
    main()
