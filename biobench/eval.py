"""Evaluation entrypoint: build the configured system, load a checkpoint (safely) into it, run the test stage.

biobench-eval experiment=prune_digits ckpt_path=outputs/prune_digits/runs/<time>/checkpoints/best.ckpt

Systems with no weights of their own (``requires_checkpoint = False``, e.g. a frozen recognizer under test) run
without ``ckpt_path``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from biobench import CONFIG_DIR
from biobench.utils.checkpoint import read_checkpoint
from biobench.utils.instantiate import instantiate_group
from biobench.utils.run import check_launcher_plugin, group_wandb_runs, run_status, wandb_run_per_job, write_run_files
from biobench.utils.systems import build_system, system_class

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test the checkpoint ``cfg.ckpt_path`` on the configured data; returns the test metrics."""
    output_dir = Path(cfg.paths.output_dir)
    with run_status(output_dir):
        cls = system_class(cfg.model)
        if cls.requires_checkpoint and not cfg.get("ckpt_path"):
            raise ValueError(
                f"biobench-eval needs ckpt_path=<run>/checkpoints/best.ckpt: {cls.__name__} has trained weights."
            )
        pl.seed_everything(cfg.seed, workers=True)
        datamodule = instantiate(cfg.data)
        model = build_system(cfg.model, datamodule.spec)
        if cfg.get("ckpt_path"):
            checkpoint = read_checkpoint(cfg.ckpt_path)
            model.check_checkpoint(checkpoint, cfg.ckpt_path)
            model.load_weights(checkpoint)
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=instantiate_group(cfg.get("logger"), "logger") or False)
        with wandb_run_per_job(trainer):
            trainer.test(model, datamodule=datamodule)
            metrics = dict(trainer.callback_metrics)
            if trainer.is_global_zero:
                write_run_files(output_dir, metrics, cfg)
        return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    group_wandb_runs(cfg)
    evaluate(cfg)


def main() -> None:
    check_launcher_plugin()
    _hydra_main()


if __name__ == "__main__":
    main()
