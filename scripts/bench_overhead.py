"""Framework overhead: samples/s of a biobench training run vs a plain PyTorch loop, in one process.

Both train the same model (same init), on the same DataLoader, with the same optimizer, batch size and
epochs; validation is off in both. biobench's figure is its own ``time/fit_s`` (Lightning trainer with the
default callbacks, progress bar, metrics and CSV logging). Runs alternate (plain, biobench, plain, ...) and
the median ratio is printed. Goal: biobench / plain >= 0.9.

    python scripts/bench_overhead.py                      # ResNet-20 on the real CIFAR-10 subset if present
    python scripts/bench_overhead.py --workload digits    # small CNN on scikit-learn's digits
"""

from __future__ import annotations

import argparse
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from biobench.models.schedules import lightning_scheduler
from biobench.train import train
from biobench.utils.compose import compose_run_config

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-mini.tar"


def workload_overrides(name: str, workdir: Path) -> list[str]:
    if name == "cifar":
        with tarfile.open(SHARED_CIFAR) as tf:
            tf.extractall(workdir, filter="data")
        return ["experiment=prune_folder", f"data.data_dir={workdir / 'cifar10-mini'}", "data.num_workers=0"]
    return ["experiment=prune_digits"]


def compose_cfg(overrides: list[str], out: Path) -> DictConfig:
    cfg = compose_run_config("train", overrides, out)
    with open_dict(cfg):
        cfg.test = False
        cfg.trainer.accelerator = "cpu"
        cfg.trainer.limit_val_batches = 0
        cfg.trainer.num_sanity_val_steps = 0
    return cfg


def plain_loop(cfg: DictConfig) -> float:
    """Samples/s of a hand-written loop over the same data, model and optimizer."""
    torch.manual_seed(cfg.seed)
    dm = instantiate(cfg.data)
    model = instantiate(cfg.model, num_classes=dm.num_classes, in_chans=dm.in_chans)
    net, fmt = model.net, model.memory_format
    optimizer = model.optimizer_factory(params=net.parameters())
    loader = dm.train_dataloader()
    steps = cfg.trainer.max_epochs * len(loader)
    schedule = lightning_scheduler(model.scheduler_factory, optimizer, steps) if model.scheduler_factory else None
    scheduler, per_step = (schedule["scheduler"], schedule["interval"] == "step") if schedule else (None, False)
    net.train()
    seen, start = 0, time.perf_counter()
    for epoch in range(cfg.trainer.max_epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            loss = F.cross_entropy(net(batch["image"].contiguous(memory_format=fmt)), batch["label"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if per_step:
                scheduler.step()
            seen += len(batch["label"])
        if scheduler is not None and not per_step:
            scheduler.step()
    return seen / (time.perf_counter() - start)


def biobench_run(cfg: DictConfig) -> float:
    metrics = train(cfg)
    return metrics["pruning/kept"] * cfg.trainer.max_epochs / metrics["time/fit_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--workload", choices=["cifar", "digits"], default="cifar" if SHARED_CIFAR.is_file() else "digits"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        overrides = [
            *workload_overrides(args.workload, tmp),
            f"trainer.max_epochs={args.epochs}",
            "pruning.keep_ratio=1.0",
            "logger=csv",
        ]
        plain, ours = [], []
        for r in range(args.repeats):
            plain.append(plain_loop(compose_cfg(overrides, tmp / f"plain{r}")))
            ours.append(biobench_run(compose_cfg(overrides, tmp / f"run{r}")))
            print(f"repeat {r}: plain {plain[-1]:.0f} samples/s, biobench {ours[-1]:.0f} samples/s")
    ratios = [o / p for o, p in zip(ours, plain, strict=True)]
    print(f"workload={args.workload} epochs={args.epochs} threads={torch.get_num_threads()}")
    print(
        f"biobench / plain samples/s ratio: {statistics.median(ratios):.3f} (per repeat: "
        f"{', '.join(f'{x:.3f}' for x in ratios)}; goal >= 0.9)"
    )


if __name__ == "__main__":
    main()
