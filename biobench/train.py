"""Training entrypoint: compose config -> instantiate data, pruning, model, trainer -> fit -> test -> metrics.json.

biobench-train experiment=prune_digits pruning.keep_ratio=0.3
biobench-train -m experiment=prune_digits pruning.keep_ratio=0.1,0.5 seed=0,1
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig

from biobench import CONFIG_DIR
from biobench.pruning.pruner import SUBSET_FILE
from biobench.utils.checkpoint import check_compatible, read_checkpoint
from biobench.utils.config import to_plain
from biobench.utils.instantiate import instantiate_group
from biobench.utils.run import check_launcher_plugin, group_wandb_runs, metric_value, write_run_files

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one experiment described by ``cfg``; returns its final metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    datamodule = instantiate(cfg.data)
    metrics: dict[str, Any] = {}
    pruner = instantiate(cfg.pruning) if cfg.get("pruning") else None
    if pruner is not None:
        kept, metrics = pruner.select(datamodule)
        datamodule.set_train_subset(kept)
        pruner.save(output_dir / "pruning" / SUBSET_FILE, kept, datamodule)
        pl.seed_everything(cfg.seed, workers=True)  # the model's init must not depend on proxy training or caches

    model = instantiate(cfg.model, num_classes=datamodule.num_classes, in_chans=datamodule.in_chans)
    if cfg.get("ckpt_path"):
        check_compatible(model, read_checkpoint(cfg.ckpt_path), cfg.ckpt_path)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=instantiate_group(cfg.get("callbacks"), "callback"),
        logger=instantiate_group(cfg.get("logger"), "logger") or False,
    )
    for lg in trainer.loggers:
        lg.log_hyperparams(cfg_to_hparams(cfg))

    if cfg.get("train"):
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        metrics["time/fit_s"] = time.perf_counter() - start
    metrics.update(trainer.callback_metrics)

    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("No best checkpoint found: testing the current weights.")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(trainer.callback_metrics)

    if trainer.is_global_zero:
        write_run_files(output_dir, metrics, cfg)
    return metrics


def cfg_to_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The parts of the config worth showing as run hyperparameters in loggers."""
    keys = ("task_name", "seed", "data", "model", "pruning", "trainer", "tags")
    return {k: to_plain(cfg[k]) for k in keys if k in cfg}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    sweep_dir = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    group_wandb_runs(cfg, sweep_dir, list(hc.overrides.task))
    metrics = train(cfg)
    return metric_value(metrics, cfg.get("optimized_metric"))


def main() -> None:
    check_launcher_plugin()
    _hydra_main()


if __name__ == "__main__":
    main()
