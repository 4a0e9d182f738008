"""The summary as a W&B run of job type ``summary``, in the summarised runs' own W&B project and group."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from biobench.results.jobs import JobReport
from biobench.results.runs import lookup
from biobench.results.summary import Row
from biobench.utils.run import wandb_group_name

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "biobench"


@dataclass(frozen=True)
class WandbTarget:
    project: str
    group: str
    mode: str


def _most_common(values: Sequence[str], what: str) -> str:
    counts = Counter(values)
    chosen = counts.most_common(1)[0][0]
    if len(counts) > 1:
        log.warning("The runs have several W&B %ss %s: the summary run uses '%s'.", what, dict(counts), chosen)
    return chosen


def wandb_target(report: JobReport, first_dir: str | Path) -> WandbTarget:
    """Project, group and mode of the runs' own W&B runs, read from their ``config.yaml``.

    group: the runs' ``logger.wandb.group``, else ``wandb_group_name(task_name, sweep dir)`` as ``biobench-train``
    names a multirun's group (``first_dir`` for runs outside a sweep); project: ``logger.wandb.project``, else
    ``biobench``; mode: ``WANDB_MODE``, else the runs' ``logger.wandb.mode``, else ``offline``.
    """
    runs = report.with_status("done") or report.runs
    sweep_of = {run.dir: sweep.dir for sweep in report.sweeps for run in sweep.jobs}
    groups, projects, modes = [], [], []
    for run in runs:
        wandb_cfg = lookup(run.config, "logger.wandb", None) or {}
        task = run.config.get("task_name", "train")
        groups.append(wandb_cfg.get("group") or wandb_group_name(task, sweep_of.get(run.dir, Path(first_dir))))
        projects.append(wandb_cfg.get("project") or DEFAULT_PROJECT)
        modes.append(wandb_cfg.get("mode") or "offline")
    mode = os.environ.get("WANDB_MODE") or _most_common(modes, "mode")
    return WandbTarget(project=_most_common(projects, "project"), group=_most_common(groups, "group"), mode=mode)


def log_to_wandb(rows: Sequence[Row], paths: dict[str, Path], metric: str, target: WandbTarget) -> dict[str, str]:
    """Log the summary table and plot as one W&B run in ``target``'s project and group; its files go next to
    the summary (offline: ``wandb sync`` uploads them). Returns the run's ``dir``, ``project`` and ``group``."""
    import wandb

    run = wandb.init(
        project=target.project,
        group=target.group,
        job_type="summary",
        name=f"summary-{target.group}",
        dir=str(paths["md"].parent),
        mode=target.mode,
        reinit="finish_previous",
    )
    columns = ["label", "x", f"{metric} mean", f"{metric} std", "n"]
    table = wandb.Table(columns=columns, data=[[r.label, r.x, r.mean, r.std, r.n] for r in rows])
    run.log({"summary/table": table, "summary/plot": wandb.Image(str(paths["png"]))})
    logged = {"dir": run.dir, "project": run.project, "group": run.group}
    run.finish()
    return logged
