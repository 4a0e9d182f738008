"""KD cost: training time per epoch of the KD student vs plain training of the same student, in one process.

Modes: plain CE (baseline), KD with the online teacher (a teacher forward per batch), KD with cached teacher logits
(computed once before training; not counted, as a sweep computes them once). The teacher has the student's
architecture. No augmentation, so all three see the same batches.

For a figure that holds from run to run: the time of an epoch is the median training-step time (batch in hand to
step done; trainer set-up and batch loading, the same in every mode, are not counted) times the steps per epoch, each
run's first epoch is a warm-up that is not counted, the modes alternate in rounds (plain, online, cached, then
reversed), and the printed ratio is the median over rounds of the per-round ratios. Goals: online <= 1.4x,
cached <= 1.05x.

    python scripts/bench_kd.py                  # ResNet-8 on the real CIFAR-10 subset if present, else digits
"""

from __future__ import annotations

import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from bench_workload import bench_args, bench_workload

from biobench.models.kd_student import KDStudent
from biobench.models.pruned_classifier import PrunedClassifier


class StepTimer(pl.Callback):
    """Wall time of every training step (batch fetched to step done) after the first epoch, a warm-up."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch > 0:
            self.seconds.append(time.perf_counter() - self.start)


def seconds_per_epoch(model: pl.LightningModule, dm, epochs: int) -> float:
    """Median step time x steps per epoch, over ``epochs`` timed epochs after one warm-up epoch: the median over
    hundreds of steps is robust to the machine's passing slowdowns, which whole-epoch times are not."""
    timer = StepTimer()
    trainer = pl.Trainer(
        max_epochs=epochs + 1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    loader = dm.train_dataloader()
    trainer.fit(model, train_dataloaders=loader)
    return statistics.median(timer.seconds) * len(loader)


def main() -> None:
    args = bench_args(__doc__, epochs=1, repeats=5)
    with tempfile.TemporaryDirectory() as tmp:
        dm, net = bench_workload(tmp, augment=False)
        optimizer = partial(torch.optim.SGD, lr=0.05, momentum=0.9)
        common = {
            "net": net,
            "num_classes": dm.num_classes,
            "in_chans": dm.in_chans,
            "optimizer": optimizer,
            "channels_last": True,  # as the folder experiments train
        }
        ckpt = Path(tmp) / "teacher.ckpt"  # timing only: an untrained teacher of the student's architecture
        teacher = PrunedClassifier(**common)
        torch.save({"state_dict": teacher.state_dict(), "hyper_parameters": dict(teacher.hparams)}, ckpt)

        def cached_student() -> KDStudent:
            student = KDStudent(teacher_ckpt=str(ckpt), teacher_logits="cached", **common)
            student.cached_logits = student._cached_teacher_logits(dm)  # once per sweep, not timed
            return student

        builders = {
            "plain": lambda: PrunedClassifier(**common),
            "online": lambda: KDStudent(teacher_ckpt=str(ckpt), **common),
            "cached": cached_student,
        }
        times: dict[str, list[float]] = {k: [] for k in builders}
        for r in range(args.repeats):
            for name in builders if r % 2 == 0 else reversed(builders):
                pl.seed_everything(0, verbose=False)
                times[name].append(seconds_per_epoch(builders[name](), dm, args.epochs))
    print(
        f"workload: {net['name']} on {type(dm).__name__}, {args.repeats} rounds of 1 warm-up + {args.epochs} timed "
        "epochs per mode (median step time)"
    )
    for name in ("online", "cached"):
        ratios = [t / p for t, p in zip(times[name], times["plain"], strict=True)]
        goal = 1.4 if name == "online" else 1.05
        print(
            f"KD ({name} teacher) / plain time per epoch: {statistics.median(ratios):.3f} "
            f"(per round {', '.join(f'{x:.3f}' for x in ratios)}; goal <= {goal})"
        )


if __name__ == "__main__":
    main()
