"""Pruning costs, each printed as a ratio against a baseline measured in the same run.

1. Recording training dynamics: training time with the DynamicsRecorder / without it (goal <= 1.05).
2. A 4-ratio sweep sharing the cache: scoring time of runs 2-4 / run 1 (goal < 0.05).
3. Scoring 50,000 samples once dynamics exist (K=3 experts, 20 epochs, 100 classes, 512-d features): seconds per
   score, and its ratio to one pass over the record arrays (the least any score must do).

    python scripts/bench_pruning.py            # ResNet-8 on the real CIFAR-10 subset if present, else digits
"""

from __future__ import annotations

import tempfile
import time
from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch
from bench_workload import bench_args, bench_workload
from hydra.utils import instantiate
from omegaconf import open_dict

from biobench.models.pruned_classifier import PrunedClassifier
from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.recorder import DynamicsRecorder
from biobench.pruning.scores import ScoreContext
from biobench.train import train
from biobench.utils.compose import compose_run_config


def fit_seconds(dm, net: dict, epochs: int, record: bool) -> float:
    pl.seed_everything(0, verbose=False)
    model = PrunedClassifier(net, dm.num_classes, dm.in_chans, partial(torch.optim.SGD, lr=0.05, momentum=0.9))
    callbacks = [DynamicsRecorder(len(dm.train_labels), epochs)] if record else []
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    return time.perf_counter() - start


def bench_recording(dm, net: dict, epochs: int, repeats: int) -> None:
    ratios = []
    for r in range(repeats):  # alternate which goes first, so warm-up favours neither
        order = (False, True) if r % 2 == 0 else (True, False)
        took = {record: fit_seconds(dm, net, epochs, record) for record in order}
        ratios.append(took[True] / took[False])
    print(
        f"[1] training time with / without dynamics recording: {np.median(ratios):.3f} "
        f"(per repeat {', '.join(f'{r:.3f}' for r in ratios)}; goal <= 1.05)"
    )


def bench_sweep_cache() -> None:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, ratio in enumerate((0.1, 0.3, 0.5, 0.7)):
            overrides = [
                "experiment=prune_digits",
                "pruning/score=el2n",
                f"pruning.keep_ratio={ratio}",
                "pruning.proxy.epochs=4",
                "trainer.max_epochs=1",
                "logger=csv",
            ]
            cfg = compose_run_config("train", overrides, f"{tmp}/run{i}", job_num=i)
            with open_dict(cfg):
                cfg.paths.cache_dir = f"{tmp}/cache"  # shared by the four runs, as in a sweep
                cfg.test = False
            times.append(train(cfg)["pruning/score_time_s"])
    later = [t / times[0] for t in times[1:]]
    print(
        f"[2] 4-ratio sweep, scoring time of runs 2-4 / run 1: {', '.join(f'{r:.4f}' for r in later)} "
        f"(run 1 {times[0]:.1f} s incl. proxy training; goal < 0.05)"
    )


def bench_scoring(n: int = 50_000, epochs: int = 20, classes: int = 100, dim: int = 512, experts: int = 3) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, n)

    def expert() -> ProxyRecord:
        probs = rng.dirichlet(np.ones(classes) * 0.3, n).astype(np.float32)
        p_y = rng.random((n, epochs)).astype(np.float16)
        return ProxyRecord(
            labels,
            p_y,
            (1 - p_y) * 0.5,
            rng.random((n, epochs)) > 0.5,
            -np.log(p_y + 1e-3),
            (p_y**2 + 0.1).astype(np.float16),
            probs,
            rng.normal(size=(n, dim)).astype(np.float32),
        )

    records = [expert() for _ in range(experts)]

    class Data:
        train_labels = labels

        def data_hash(self) -> str:
            return "bench"

    ctx = ScoreContext(Data(), 0, proxies=lambda: records)
    start = time.perf_counter()
    for r in records:
        for a in (r.target_prob, r.other_max_prob, r.correct, r.loss, r.sq_norm, r.probs, r.features):
            a.astype(np.float32).sum()
    baseline = time.perf_counter() - start
    print(
        f"[3] scoring {n:,} samples ({experts} experts x {epochs} epochs, {classes} classes, {dim}-d features); "
        f"baseline pass over the arrays {baseline:.2f} s:"
    )
    scores = {
        "el2n": "EL2NScore",
        "grand": "GraNdScore",
        "forgetting": "ForgettingScore",
        "aum": "AUMScore",
        "uncertainty": "UncertaintyScore",
        "dyn_unc": "DynamicUncertaintyScore",
        "moderate": "ModerateScore",
        "sim": "SIMScore",
    }
    for name, cls in scores.items():
        score = instantiate({"_target_": f"biobench.pruning.scores.{cls}"})
        start = time.perf_counter()
        values = score(ctx)
        took = time.perf_counter() - start
        assert values.shape == (n,)
        print(f"    {name:12s} {took:6.2f} s  ({took / baseline:5.1f}x baseline)")


def main() -> None:
    args = bench_args(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        dm, net = bench_workload(tmp)
        threads = torch.get_num_threads()
        print(f"workload: {net['name']} on {type(dm).__name__}, {args.epochs} epochs, {threads} threads")
        bench_recording(dm, net, args.epochs, args.repeats)
    bench_sweep_cache()
    bench_scoring()


if __name__ == "__main__":
    main()
