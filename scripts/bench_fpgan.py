"""Speed of FPGAN-Control: generation, the trainer's overhead, and the export of a synthetic set.

(a) Generated images/s of the EMA-style generator (no grad, batch ``--batch-size``) at 64, 128 and 256 px with the
CPU-default channels (``conf/model/fpgan_control.yaml``: channel_base 4096, channel_max 128), untrained weights:
speed does not depend on training.

(b) One training iteration of ``FPGANControl`` under a Lightning trainer at the CPU default (128 px, batch 16,
identity and appearance hinges through a frozen half-width ResNet-18 embedder, DiffAugment, EMA; R1 and path-length
steps off, so every iteration does the same work) vs the same networks' work alone in a plain loop: a D step on
augmented reals and fakes and a G step on a pair batch with both hinges, each forward + backward + Adam step.
Printed as ``alone / trainer`` (1 = no overhead; goal >= 0.8).

(c) ``export_generated`` of ``--export-images`` prints at 128 px (latents, generation, PNG files, metadata, grid),
as images/s, a ratio to (a)'s generation alone at 128 px, and the minutes a 10,000-image export takes at that rate.

Medians over ``--rounds`` rounds after a warm-up; within a round the two training modes alternate (starting with a
different one each round), so a change of machine load hits both alike. The CPU is shared: read the ratios; the
absolute rates are this machine's only.

    python scripts/bench_fpgan.py [--rounds 3] [--iterations 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from biobench.contracts import DataSpec
from biobench.models.fpgan_control import FPGANControl
from biobench.models.fpgan_export import ExportSettings, export_generated
from biobench.models.fpgan_losses import (
    appearance_distances,
    appearance_thumbnails,
    clamp_straight_through,
    contrastive_hinge,
    identity_distances,
    pair_batch,
)
from biobench.models.gan_losses import d_logistic_loss, g_nonsaturating_loss
from biobench.models.nets.diff_augment import diff_augment
from biobench.models.nets.embedding import build_embedding_net
from biobench.models.nets.fpgan_generator import FPGANGenerator
from biobench.recognizers import FrozenRecognizer
from biobench.utils.benchmark import median_step_seconds, timed

CPU_G = {"identity_dim": 256, "appearance_dim": 256, "identity_w_dim": 256, "appearance_w_dim": 256, "n_mlp": 8,
         "channel_base": 4096, "channel_max": 128}  # fmt: skip
CPU_D = {"channel_base": 4096, "channel_max": 128}
HALF_RESNET18 = {"model_name": "resnet18", "channels": [32, 64, 128, 256], "stem_width": 32, "map_index": 2}
LOSSES = {"w_id": 1.0, "w_app": 5.0, "tau_id": [0.5, 1.5], "tau_app": [0.001, 0.01]}
NO_REGULARIZERS = {"r1_gamma": 0.0, "pl_weight": 0.0}
SIZE = 128
GOAL = 0.8


def generation_rate(resolution: int, batch_size: int, batches: int) -> float:
    """Images/s of an untrained CPU-default generator at ``resolution`` (no grad)."""
    torch.manual_seed(0)
    g = FPGANGenerator(resolution=resolution, img_channels=1, **CPU_G).eval()
    z = torch.randn(batch_size, g.identity_dim), torch.randn(batch_size, g.appearance_dim)
    with torch.no_grad():
        g(*z)  # warm-up
        return batches * batch_size / timed(lambda: [g(*z) for _ in range(batches)])


def gan() -> FPGANControl:
    """The CPU-default system at 128 px with a frozen half-width ResNet-18 embedder as its Recognizer."""
    torch.manual_seed(0)
    spec = DataSpec(1, (SIZE, SIZE), (0.5,), (0.5,))
    net = build_embedding_net(HALF_RESNET18, in_chans=1, embedding_dim=384).eval()
    recognizer = FrozenRecognizer(net, spec, in_chans=1, mean=[0.5], std=[0.5], input_size=SIZE)
    adam = lambda params: torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))  # noqa: E731
    return FPGANControl(spec, CPU_G, CPU_D, LOSSES, NO_REGULARIZERS, adam, adam, recognizer=recognizer)


def trainer_seconds(model: FPGANControl, reals: torch.Tensor, iterations: int) -> float:
    """Median seconds of a training iteration over ``iterations`` (after a warm-up one) of a fresh trainer."""
    loader = DataLoader([{"image": r} for r in reals.repeat(iterations + 1, 1, 1, 1)], batch_size=len(reals))
    return median_step_seconds(model, loader)


def alone_seconds(model: FPGANControl, reals: torch.Tensor, iterations: int) -> float:
    """Median seconds of the same iteration's network work in a plain loop (module docstring, (b))."""
    g, d, policy = model.generator, model.discriminator, model.augment
    g_opt, d_opt = (torch.optim.Adam(m.parameters(), lr=0.002, betas=(0.0, 0.99)) for m in (g, d))

    def iteration() -> None:
        with torch.no_grad():
            fake = g(torch.randn(len(reals), g.identity_dim), torch.randn(len(reals), g.appearance_dim))
        d_opt.zero_grad(set_to_none=True)
        d_logistic_loss(d(diff_augment(reals, policy)), d(diff_augment(fake, policy))).backward()
        d_opt.step()
        d.requires_grad_(False)  # as in training: G's backward leaves D's weights alone
        pairs = pair_batch(g, len(reals))
        fake = g(pairs.z_id, pairs.z_app, pairs.noise)
        shown = clamp_straight_through(fake)
        dist_id = identity_distances(model.recognizer, shown, pairs.pairs)
        dist_app = appearance_distances(appearance_thumbnails(shown, model.blur_sigma, model.thumb_size), pairs.pairs)
        id_loss = contrastive_hinge(dist_id[pairs.same_id], dist_id[~pairs.same_id], *model.tau_id)
        app_loss = contrastive_hinge(dist_app[pairs.same_app], dist_app[~pairs.same_app], *model.tau_app)
        loss = g_nonsaturating_loss(d(diff_augment(fake, policy))) + model.w_id * id_loss + model.w_app * app_loss
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()
        d.requires_grad_(True)

    iteration()  # warm-up
    return statistics.median(timed(iteration) for _ in range(iterations))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=3, help="timed training iterations per mode and round")
    parser.add_argument("--batch-size", type=int, default=16, help="experiment=fpgan_fingerprint's")
    parser.add_argument("--batches", type=int, default=4, help="generation batches timed per resolution")
    parser.add_argument("--export-images", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    print(f"{args.threads} thread(s), batch {args.batch_size}, median of {args.rounds} rounds after a warm-up; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip

    rates = {r: statistics.median(generation_rate(r, args.batch_size, args.batches) for _ in range(args.rounds))
             for r in (64, 128, 256)}  # fmt: skip
    print("\n(a) generation, CPU-default channels, untrained: "
          + ", ".join(f"{r} px {rate:.1f} img/s" for r, rate in rates.items()))  # fmt: skip

    model = gan()
    reals = torch.rand(args.batch_size, 1, SIZE, SIZE) * 2 - 1
    seconds: dict[str, list[float]] = {"trainer": [], "alone": []}
    for r in range(args.rounds):
        for mode in ("trainer", "alone") if r % 2 else ("alone", "trainer"):
            run = trainer_seconds if mode == "trainer" else alone_seconds
            seconds[mode].append(run(model, reals, args.iterations))
    ratios = [a / t for a, t in zip(seconds["alone"], seconds["trainer"], strict=True)]
    ratio = statistics.median(ratios)
    verdict = "PASS" if ratio >= GOAL else "FAIL"
    print(f"(b) training iteration at {SIZE} px: trainer {statistics.median(seconds['trainer']):.2f} s "
          f"({1 / statistics.median(seconds['trainer']):.3f} it/s), networks alone "
          f"{statistics.median(seconds['alone']):.2f} s; alone / trainer {ratio:.3f} (per round: "
          f"{', '.join(f'{x:.3f}' for x in ratios)}; goal >= {GOAL}: {verdict})")  # fmt: skip

    g = model.g_ema.eval()
    identities = max(1, args.export_images // 8)
    with tempfile.TemporaryDirectory() as tmp:
        seconds_export = timed(lambda: export_generated(g, Path(tmp) / "set", identities, 8, ExportSettings(),
                                                        args.batch_size))  # fmt: skip
    export_rate = identities * 8 / seconds_export
    print(
        f"(c) export of {identities * 8} prints at {SIZE} px: {export_rate:.1f} img/s, "
        f"{export_rate / rates[SIZE]:.3f} of generation alone; 10,000 prints in {10_000 / export_rate / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
