"""Evaluation entrypoint: load a checkpoint (safely) into the configured model and run the test stage.

biobench-eval experiment=prune_digits ckpt_path=outputs/prune_digits/runs/<time>/checkpoints/best.ckpt
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
from biobench.utils.checkpoint import load_model_weights
from biobench.utils.instantiate import instantiate_group
from biobench.utils.run import check_launcher_plugin, write_run_files

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test the checkpoint ``cfg.ckpt_path`` on the configured data; returns the test metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, num_classes=datamodule.num_classes, in_chans=datamodule.in_chans)
    load_model_weights(model, cfg.ckpt_path)
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=instantiate_group(cfg.get("logger"), "logger") or False)
    trainer.test(model, datamodule=datamodule)
    metrics = dict(trainer.callback_metrics)
    if trainer.is_global_zero:
        write_run_files(Path(cfg.paths.output_dir), metrics, cfg)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    evaluate(cfg)


def main() -> None:
    check_launcher_plugin()
    _hydra_main()


if __name__ == "__main__":
    main()
