"""Training entrypoint: compose config -> datamodule -> (pruning) -> system -> fit -> test -> metrics.json.

biobench-train experiment=prune_digits pruning.keep_ratio=0.3
biobench-train -m experiment=prune_digits pruning.keep_ratio=0.1,0.5 seed=0,1

Any system (DESIGN.md, docs/architecture.md) is built the same way: its declared data arguments come from the
datamodule's spec; ``monitor`` selects the best checkpoint, the early-stopping metric and the checkpoint tested
(the last one for ``monitor: null``). The run's ``status.json`` says whether it finished; with ``skip_done=true`` a
job whose directory holds a finished run of the same config is not run again (resuming an interrupted multirun).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint

from biobench import CONFIG_DIR
from biobench.contracts import SubsetDataModule
from biobench.pruning import Pruner
from biobench.pruning.budget import training_length
from biobench.pruning.pruner import SUBSET_FILE
from biobench.pruning.stage import run_pruning_stage
from biobench.utils.callbacks import StopOnNonFiniteLoss
from biobench.utils.checkpoint import read_checkpoint
from biobench.utils.config import to_plain
from biobench.utils.distributed import is_global_zero_from_env
from biobench.utils.instantiate import instantiate_group
from biobench.utils.run import (
    check_launcher_plugin,
    check_multirun_ddp,
    finished_run,
    group_wandb_runs,
    metric_value,
    run_status,
    wandb_run_per_job,
    write_run_files,
)
from biobench.utils.systems import build_system, check_monitor, check_optimized_metric, system_class

log = logging.getLogger(__name__)

SELECTION_CALLBACKS = ("model_checkpoint", "early_stopping")  # callbacks that need a monitor metric


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one experiment described by ``cfg``; returns its final metrics. ``status.json`` records the outcome."""
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("skip_done") and (done := finished_run(output_dir, cfg)) is not None:
        log.info("Skipped: %s already holds a finished run of this config (skip_done=true).", output_dir)
        return done
    with run_status(output_dir):
        return _train(cfg, output_dir)


def _train(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    cls = system_class(cfg.model)
    check_monitor(cfg.get("monitor"), cls)
    check_optimized_metric(
        cfg.get("optimized_metric"), cls, pruning=bool(cfg.get("pruning")), train=cfg.get("train"), test=cfg.get("test")
    )
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    metrics: dict[str, Any] = {}
    pruner = instantiate(cfg.pruning) if cfg.get("pruning") else None
    if pruner is not None:
        metrics |= run_pruning_stage(pruner, datamodule, output_dir)

    model = build_system(cfg.model, datamodule.spec)
    if cfg.get("ckpt_path"):
        model.check_checkpoint(read_checkpoint(cfg.ckpt_path), cfg.ckpt_path)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=[*instantiate_group(cfg.get("callbacks"), "callback", unused_callbacks(cfg)), StopOnNonFiniteLoss()],
        logger=instantiate_group(cfg.get("logger"), "logger") or False,
    )
    if pruner is not None:
        metrics |= apply_budget(trainer, pruner, datamodule, int(metrics["pruning/kept"]), output_dir)
    with wandb_run_per_job(trainer):
        for lg in trainer.loggers:
            lg.log_hyperparams(cfg_to_hparams(cfg))
        if cfg.get("train"):
            start = time.perf_counter()
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
            metrics["time/fit_s"] = time.perf_counter() - start
        metrics.update(trainer.callback_metrics)

        if cfg.get("test"):
            ckpt = checkpoint_to_test(trainer) or cfg.get("ckpt_path")  # train=false: the given checkpoint
            trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
            metrics.update(trainer.callback_metrics)

        if trainer.is_global_zero:
            write_run_files(output_dir, metrics, cfg)
    return metrics


def apply_budget(
    trainer: pl.Trainer, pruner: Pruner, datamodule: SubsetDataModule, n_kept: int, output_dir: Path
) -> dict[str, float]:
    """Set how long the trainer runs on the kept subset (``pruning.budget``, see :mod:`biobench.pruning.budget`) and
    record it in ``subset.json``; returns its metrics."""
    n_full = len(datamodule.train_labels)
    length = training_length(
        pruner.budget, trainer.max_epochs, datamodule.batch_size, n_full, n_kept, trainer.world_size
    )
    trainer.fit_loop.max_epochs = length.epochs
    if length.budget == "steps":
        trainer.fit_loop.epoch_loop.max_steps = length.steps
        log.info(
            "Step budget: %d steps (%d epochs over %d of %d samples).", length.steps, length.epochs, n_kept, n_full
        )
    if is_global_zero_from_env():
        pruner.record_training(output_dir / "pruning" / SUBSET_FILE, length)
    return length.metrics()


def unused_callbacks(cfg: DictConfig) -> tuple[str, ...]:
    """Best-checkpoint and early stopping need a metric: without ``monitor`` they are left out."""
    if cfg.get("monitor") and cfg.monitor.get("metric"):
        return ()
    unused = tuple(name for name in SELECTION_CALLBACKS if name in (cfg.get("callbacks") or {}))
    if unused:
        log.info("monitor is null: callbacks %s are not used (the last checkpoint is tested).", list(unused))
    return unused


def checkpoint_to_test(trainer: pl.Trainer) -> str | None:
    """The best checkpoint of the monitored metric, else the last one, else ``None`` (nothing was saved)."""
    checkpoints = [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    best = next((cb.best_model_path for cb in checkpoints if cb.monitor and cb.best_model_path), "")
    last = next((cb.last_model_path or cb.best_model_path for cb in checkpoints if not cb.monitor), "")
    return best or last or None


def cfg_to_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The parts of the config worth showing as run hyperparameters in loggers."""
    keys = ("task_name", "seed", "monitor", "data", "model", "pruning", "trainer", "tags")
    return {k: to_plain(cfg[k]) for k in keys if k in cfg}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    check_multirun_ddp(cfg)
    group_wandb_runs(cfg)
    metrics = train(cfg)
    return metric_value(metrics, cfg.get("optimized_metric"))


def main() -> None:
    check_launcher_plugin()
    _hydra_main()


if __name__ == "__main__":
    main()
