"""The summary's W&B run lands in the summarised runs' own W&B project and group (offline, files in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_results_jobs import write_multirun
from test_summarize import make_run

from biobench.results import cli
from biobench.results.wandb_summary import wandb_target
from biobench.utils.run import wandb_group_name


def _sweep(root: Path, wandb_cfg: dict | None) -> Path:
    sweep = write_multirun(root / "2025-01-01_10-00-00", ["pruning.keep_ratio=0.1,0.5"])
    for i, keep in enumerate((0.1, 0.5)):
        config = {"task_name": "prune_digits", "pruning": {"keep_ratio": keep}}
        if wandb_cfg is not None:
            config["logger"] = {"wandb": wandb_cfg}
        make_run(
            sweep / str(i), {"test/acc": 0.5 + keep}, config, {"pruning/score": "random", "pruning/sampler": "topk"}
        )
    return sweep


def test_target_without_wandb_logger_is_the_sweeps_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    sweep = _sweep(tmp_path, None)
    target = wandb_target(cli.read_jobs([sweep]), sweep)
    assert (target.project, target.group, target.mode) == (
        "biobench",
        wandb_group_name("prune_digits", sweep),
        "offline",
    )


def test_summary_run_uses_the_runs_project_and_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    sweep = _sweep(tmp_path, {"project": "fp-study", "group": None, "mode": "offline"})  # group as a csv-only run
    out = tmp_path / "summary"
    opts = cli.Options(wandb=True)
    result = cli.summarize_jobs(cli.read_jobs([sweep]), out, opts, sweep)
    assert result.wandb is not None
    assert result.wandb["project"] == "fp-study"
    assert result.wandb["group"] == wandb_group_name("prune_digits", sweep) == f"prune_digits-{sweep.name}"
    assert Path(result.wandb["dir"]).is_relative_to(out)
    assert list(out.glob("wandb/offline-run-*/files/media/images/summary/*.png"))  # the plot was logged

    # runs with a W&B group of their own (logger=wandb in a multirun): the summary joins that group
    other = _sweep(tmp_path / "other", {"project": "fp-study", "group": "custom-group", "mode": "offline"})
    target = wandb_target(cli.read_jobs([other]), other)
    assert (target.project, target.group) == ("fp-study", "custom-group")
