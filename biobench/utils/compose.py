"""Composing a run config in-process (tests, benchmarks) the way the command line would, outputs redirected."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from biobench import CONFIG_DIR


def compose_run_config(name: str, overrides: list[str], output_dir: str | Path, job_num: int = 0) -> DictConfig:
    """``conf/<name>.yaml`` + overrides with every output under ``output_dir``, registered as Hydra's current config
    (so ``${hydra:...}`` interpolations resolve)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = job_num
        for key in ("root_dir", "output_dir", "log_dir"):
            cfg.paths[key] = str(output_dir)
    HydraConfig().set_config(cfg)
    return cfg
