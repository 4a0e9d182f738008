"""Speed of the learned codec against the classic baselines, and the cost of the IPR loss in a training step.

(a) Encode and decode images/s of the learned codecs (bmshj2018-factorized and -hyperprior at the CPU size N 64 /
M 96, untrained weights after ``update(force=True)``: speed does not depend on training; real bitstreams,
the whole set as one batch) vs Pillow JPEG (q 75) and WebP (q 75) and FFmpeg HEVC (CRF 23), one image at a
time, on the same synthetic 128 x 128 grey fingerprints. Printed as ratios to JPEG of the same round.

(b) One IPRCodec training step (``training_step`` under a Lightning trainer: forward, rate-distortion + IPR
loss, backward through the frozen recognizer, clipped main step, auxiliary step) with a recognizer shaped like
``experiment=ipr_fingerprint``'s (a frozen half-width timm ResNet-18 embedder at 128 px) vs the same step with IPR
weight 0 and no recognizer. Printed as the median ratio of the two step times, with PASS / FAIL against <= 1.5x.

Every measurement is a median over ``--rounds`` rounds after a warm-up round; within a round the modes alternate
(codecs in turn, the two training modes in turn, starting with a different one each round), so that a change of
machine load hits them alike. The CPU is shared: read the ratios, not the absolute rates.

    python scripts/bench_codec.py [--images 32] [--rounds 5] [--steps 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from biobench.contracts import DataSpec
from biobench.data.fingerprints import FingerprintGenerator
from biobench.metrics.compression import get_codec
from biobench.models.ipr_codec import IPRCodec
from biobench.models.nets.compression import build_codec, compress_images, decompress_images
from biobench.models.nets.embedding import build_embedding_net
from biobench.recognizers import FrozenRecognizer
from biobench.utils.benchmark import median_step_seconds, timed

SIZE = 128
CPU_CODEC = {"quality": None, "N": 64, "M": 96}
BASELINES = {"jpeg": 75, "webp": 75, "hevc": 23}
HALF_RESNET18 = {"model_name": "resnet18", "channels": [32, 64, 128, 256], "stem_width": 32, "map_index": 2}
GOAL = 1.5
SPEC = DataSpec(1, (SIZE, SIZE), (0.0,), (1.0,))  # the codec's [0, 1] pixels, as experiment=ipr_fingerprint serves


def fingerprints(n: int) -> np.ndarray:
    """``n`` synthetic 128-px grey impressions (one per finger), uint8 ``[n, 128, 128]``."""
    gen = FingerprintGenerator(seed=0, size=SIZE)
    return np.stack([gen.impression(f, 0).image for f in range(n)])


def baseline_runners(name: str, quality: float, images: np.ndarray) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(encode all, decode all)`` of a baseline codec, one image at a time."""
    codec = get_codec(name)
    streams = [codec.encode(image, quality) for image in images]
    return (lambda: [codec.encode(image, quality) for image in images],
            lambda: [codec.decode(data, image.shape) for data, image in zip(streams, images, strict=True)])  # fmt: skip


def learned_runners(name: str, images: np.ndarray) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(encode all, decode all)`` of an untrained CPU-size CompressAI codec, the whole set as one batch."""
    torch.manual_seed(0)
    codec = build_codec(name, in_chans=1, **CPU_CODEC).eval()
    codec.update(force=True)
    x = torch.from_numpy(images).float().div(255)[:, None]
    streams = compress_images(codec, x)
    return lambda: compress_images(codec, x), lambda: decompress_images(codec, streams)


def codec_rates(images: np.ndarray, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per codec and direction, the images/s of each round (after one warm-up round)."""
    runners = {f"learned {n.removeprefix('bmshj2018-')}": learned_runners(n, images)
               for n in ("bmshj2018-factorized", "bmshj2018-hyperprior")}  # fmt: skip
    runners.update({f"{n} @ {q}": baseline_runners(n, q, images) for n, q in BASELINES.items()})
    names = list(runners)
    rates: dict[str, dict[str, list[float]]] = {n: {"encode": [], "decode": []} for n in names}
    for r in range(rounds + 1):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for direction, fn in zip(("encode", "decode"), runners[name], strict=True):
                rate = len(images) / timed(fn)
                if r > 0:
                    rates[name][direction].append(rate)
    return rates


def ipr_codec(with_ipr: bool) -> IPRCodec:
    """``experiment=ipr_fingerprint``'s codec (hyperprior N 64 / M 96, MSE, lambda 0.01), with IPR weight 1 through
    a frozen half-width ResNet-18 embedder at 128 px, or IPR weight 0 and no recognizer."""
    torch.manual_seed(0)
    recognizer = None
    if with_ipr:
        net = build_embedding_net(HALF_RESNET18, in_chans=1, embedding_dim=384).eval()
        recognizer = FrozenRecognizer(net, SPEC, in_chans=1, mean=[0.55], std=[0.25], input_size=SIZE)
    return IPRCodec(
        spec=SPEC,
        codec={"name": "bmshj2018-hyperprior", **CPU_CODEC},
        loss={"lmbda": 0.01, "distortion": "mse"},
        ipr={"weight": 1.0 if with_ipr else 0.0, "distance": "cosine"},
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-4),
        aux_optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
        recognizer=recognizer,
        evaluation="verification" if with_ipr else "none",
    )


def step_seconds(model: IPRCodec, images: np.ndarray, steps: int, batch_size: int) -> float:
    """Median seconds of a training step over ``steps`` steps (after one warm-up step) of a fresh trainer."""
    x = torch.from_numpy(images).float().div(255)[:, None]
    data = [{"image": x[i % len(x)]} for i in range((steps + 1) * batch_size)]
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    return median_step_seconds(model, loader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per mode and round")
    parser.add_argument("--batch-size", type=int, default=16, help="experiment=ipr_fingerprint's")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    images = fingerprints(args.images)
    load = os.getloadavg()[0]
    print(f"{args.images} synthetic fingerprints {SIZE} x {SIZE} grey, {args.threads} thread(s), median of "
          f"{args.rounds} rounds after a warm-up; load average {load:.2f} on {os.cpu_count()} CPUs")  # fmt: skip

    rates = codec_rates(images, args.rounds)
    jpeg = rates["jpeg @ 75"]
    print(f"\n{'codec':24s} {'encode img/s':>12s} {'/ JPEG':>7s} {'decode img/s':>12s} {'/ JPEG':>7s}")
    for name, rate in rates.items():
        cells = []
        for direction in ("encode", "decode"):
            ratio = statistics.median(r / j for r, j in zip(rate[direction], jpeg[direction], strict=True))
            cells.append(f"{statistics.median(rate[direction]):12.1f} {ratio:7.3f}")
        print(f"{name:24s} {' '.join(cells)}")
    print("learned: the whole set as one batch (real bitstreams); baselines: one image at a time")

    models = {True: ipr_codec(True), False: ipr_codec(False)}
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for r in range(args.rounds):
        for with_ipr in (True, False) if r % 2 else (False, True):
            seconds[with_ipr].append(step_seconds(models[with_ipr], images, args.steps, args.batch_size))
    ratios = [a / b for a, b in zip(seconds[True], seconds[False], strict=True)]
    ratio = statistics.median(ratios)
    verdict = "PASS" if ratio <= GOAL else "FAIL"
    print(f"\nIPR training step (batch {args.batch_size}, {SIZE} px, hyperprior N 64 / M 96, half-width ResNet-18 "
          f"recognizer) / the step with IPR weight 0 and no recognizer: {ratio:.3f} (per round: "
          f"{', '.join(f'{x:.3f}' for x in ratios)}; goal <= {GOAL}: {verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
