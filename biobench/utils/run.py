"""Run-directory bookkeeping shared by ``train`` and ``eval``: status.json, metrics.json, the resolved config,
W&B grouping."""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import WandbLogger

from biobench.utils.distributed import is_global_zero_from_env
from biobench.utils.hashing import content_hash
from biobench.utils.io import read_json, write_json, write_text

log = logging.getLogger(__name__)

# hydra/launcher choices that need an optional plugin package: choice -> (import name, pip extra)
LAUNCHER_PLUGINS = {
    name: ("hydra_plugins.hydra_submitit_launcher", "slurm") for name in ("slurm", "submitit_slurm", "submitit_local")
} | {name: ("hydra_plugins.hydra_joblib_launcher", "joblib") for name in ("parallel", "joblib")}


SUBPROCESS_DDP = ("ddp", "ddp_find_unused_parameters_true")  # strategies that re-run the command in child processes


def check_multirun_ddp(cfg: DictConfig) -> None:
    """Refuse ``-m`` with Lightning's DDP subprocess launcher on the local launcher: each child re-runs the command
    line, so it would start the whole sweep again (and look for its files in a run dir instead of the job dir)."""
    hc = HydraConfig.get()
    trainer = cfg.get("trainer") or {}
    launcher = str(hc.launcher.get("_target_", ""))
    if (
        hc.mode == RunMode.MULTIRUN
        and str(trainer.get("strategy")) in SUBPROCESS_DDP
        and trainer.get("devices") not in (1, "1")
        and "submitit" not in launcher.lower()
    ):
        raise ValueError(
            f"trainer.strategy={trainer.get('strategy')} with several devices cannot run inside a local multirun (-m): "
            "Lightning's DDP launcher re-runs the command line in every child process, which would start the sweep "
            "again. Use hydra/launcher=slurm (one SLURM task per device), trainer.strategy=ddp_spawn, or run the "
            "jobs one at a time without -m."
        )


def check_launcher_plugin(argv: list[str] | None = None) -> None:
    """Exit with a clear message when ``hydra/launcher=X`` names a launcher whose plugin is not installed."""
    for arg in argv if argv is not None else sys.argv[1:]:
        key, _, choice = arg.lstrip("+~").partition("=")
        if key == "hydra/launcher" and choice in LAUNCHER_PLUGINS:
            module, extra = LAUNCHER_PLUGINS[choice]
            if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
                sys.exit(
                    f"hydra/launcher={choice} needs the Hydra launcher plugin '{module.split('.')[-1]}', "
                    f"which is not installed. Install it with: pip install 'biobench[{extra}]'"
                )


STATUS_FILE = "status.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def run_status(output_dir: str | Path) -> Iterator[None]:
    """``status.json`` in the run dir: ``running`` on entry, ``done`` on a clean exit, ``failed`` with the error on
    any exception (re-raised). A killed job stays ``running`` with no end time, so a summary sees it unfinished.
    Written by global rank zero only."""
    path = Path(output_dir) / STATUS_FILE
    write = is_global_zero_from_env()
    status = {"status": "running", "error": None, "started": _now(), "ended": None}
    if write:
        write_json(path, status)
    try:
        yield
    except BaseException as err:
        if write:
            write_json(path, status | {"status": "failed", "error": describe_failure(err), "ended": _now()})
        raise
    if write:
        write_json(path, status | {"status": "done", "ended": _now()})


def finished_run(output_dir: str | Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The metrics of a run that already finished in ``output_dir`` with this same config (``status.json`` done,
    ``metrics.json`` present, the saved ``config.yaml`` equal to ``cfg`` resolved, ``skip_done`` and ``hydra``
    aside); else ``None``. Lets a re-launched multirun skip the jobs an interrupted one completed."""
    output_dir = Path(output_dir)
    status, metrics, saved = (output_dir / name for name in (STATUS_FILE, "metrics.json", "config.yaml"))
    if not (status.is_file() and metrics.is_file() and saved.is_file()):
        return None
    if read_json(status, "run status").get("status") != "done":
        return None
    same = _run_settings(OmegaConf.load(saved)) == _run_settings(cfg)
    return read_json(metrics, "run metrics") if same else None


def _run_settings(cfg: DictConfig) -> dict[str, Any]:
    """``cfg`` resolved, without ``skip_done`` and Hydra's own node (present in a composed config: its run /
    sweep dirs carry the launch time, which says nothing about the run)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    return {key: value for key, value in container.items() if key not in ("skip_done", "hydra")}


def describe_failure(err: BaseException) -> str:
    """One line for ``status.json``: the error and where it was raised. Lightning turns Ctrl-C during fit/test into
    ``SystemExit(1)`` after its graceful shutdown; that is reported as an interruption."""
    if isinstance(err, KeyboardInterrupt) or (
        isinstance(err, SystemExit) and isinstance(err.__context__, KeyboardInterrupt)
    ):
        return "interrupted (KeyboardInterrupt): the run did not finish"
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(err).__name__}: {err}".strip().rstrip(":") + where


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Tensors and numbers -> plain floats (non-finite values become ``None`` in JSON)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, int | float):
            out[key] = float(value) if math.isfinite(value) else None
    return dict(sorted(out.items()))


def write_run_files(output_dir: str | Path, metrics: Mapping[str, Any], cfg: DictConfig) -> Path:
    """Write ``metrics.json`` and the resolved ``config.yaml`` into the run directory."""
    output_dir = Path(output_dir)
    write_text(output_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    path = write_json(output_dir / "metrics.json", flat_metrics(metrics))
    log.info("Metrics written to %s", path)
    return path


def metric_value(metrics: Mapping[str, Any], name: str | None) -> float | None:
    """The value a sweeper optimises; an unknown name is an error listing the known metrics."""
    if not name:
        return None
    if name not in metrics:
        raise KeyError(f"optimized_metric '{name}' was not produced by the run. Known: {sorted(metrics)}.")
    value = metrics[name]
    return float(value.item() if isinstance(value, torch.Tensor) else value)


WANDB_TAG_MAX = 64  # W&B refuses longer tags


def wandb_group_name(task_name: str, sweep_dir: str | Path) -> str:
    """The W&B group of a sweep's runs (and of its summary run): ``<task>-<sweep folder name>``."""
    return f"{task_name}-{Path(sweep_dir).name}"


def wandb_tag(override: str) -> str:
    """A command-line override as a W&B tag of at most 64 characters: long values (paths) are shortened to their
    last characters behind a short content hash, so distinct overrides keep distinct tags."""
    if len(override) <= WANDB_TAG_MAX:
        return override
    key, _, value = override.partition("=")
    digest = content_hash(override, length=6)
    room = WANDB_TAG_MAX - len(key) - len(digest) - 3  # '=', '~', '~'
    if room < 8:
        return f"{override[: WANDB_TAG_MAX - len(digest) - 1]}~{digest}"
    return f"{key}=~{value[-room:]}~{digest}"


def group_wandb_runs(cfg: DictConfig) -> None:
    """Give every W&B logger of a Hydra job the sweep's name as group (in a multirun) and the job's overrides as
    tags (<= 64 characters each)."""
    hc = HydraConfig.get()
    sweep_dir = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    overrides = list(hc.overrides.task)
    loggers = cfg.get("logger") or {}
    with open_dict(cfg):
        for node in loggers.values():
            if isinstance(node, DictConfig) and "WandbLogger" in str(node.get("_target_", "")):
                if sweep_dir and node.get("group") is None:
                    node.group = wandb_group_name(cfg.task_name, sweep_dir)
                tags = list(node.get("tags") or []) + [o for o in overrides if not o.startswith("hydra")]
                node.tags = list(dict.fromkeys(wandb_tag(str(t)) for t in tags))


@contextmanager
def wandb_run_per_job(trainer: pl.Trainer) -> Iterator[None]:
    """End this job's W&B run on leaving (exit code 1 when the job failed). Lightning's ``WandbLogger`` re-uses an
    active ``wandb.run``, so without this every job of a multirun would log into the first job's run."""
    try:
        yield
    except BaseException:
        _finish_wandb(trainer, exit_code=1)
        raise
    _finish_wandb(trainer, exit_code=0)


def _finish_wandb(trainer: pl.Trainer, exit_code: int) -> None:
    if not any(isinstance(lg, WandbLogger) for lg in trainer.loggers):
        return
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
