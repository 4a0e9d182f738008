"""Command-line entrypoints as a user runs them: a multirun over keep ratios, then its summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import run_python as run
from conftest import wandb_run_record

ROOT = Path(__file__).resolve().parents[1]


def test_multirun_over_keep_ratios_then_summary(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cache = tmp_path / ("a-cache-folder-with-a-name-long-enough-to-exceed-the-w-and-b-tag-limit" * 2)
    proc = run(
        "-m",
        "biobench.train",
        "-m",
        "experiment=prune_digits",
        "pruning.keep_ratio=0.2,1.0",
        "trainer.max_epochs=2",
        "logger=wandb",
        f"paths.cache_dir={cache}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(sweep.glob("*/metrics.json"))
    assert len(runs) == 2
    kept = sorted(json.loads(p.read_text())["pruning/kept_fraction"] for p in runs)
    assert kept[0] < 0.21 and kept[1] == 1.0
    # every job is its own W&B run (offline, beside the job), in the sweep's group, with tags W&B accepts
    records = [wandb_run_record(next((sweep / job / "wandb").glob("offline-run-*"))) for job in ("0", "1")]
    assert records[0].run_id != records[1].run_id
    assert {r.run_group for r in records} == {f"prune_digits-{sweep.name}"}
    assert all(len(tag) <= 64 for r in records for tag in r.tags)
    assert "pruning.keep_ratio=0.2" in records[0].tags and "pruning.keep_ratio=1.0" in records[1].tags

    proc = run("-m", "biobench.results.cli", str(sweep), "--wandb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(r["label"], float(r["x"])) for r in rows] == [("random+topk", 0.2), ("random+topk", 1.0)]
    assert (sweep / "test_acc_vs_keep_ratio.png").stat().st_size > 1000
    summary_run = next((sweep / "wandb").glob("offline-run-*"))
    assert list(summary_run.glob("files/media/images/summary/*.png"))  # plot logged to W&B
    record = wandb_run_record(summary_run)
    assert (record.run_group, record.project) == (records[0].run_group, records[0].project)


def test_missing_launcher_plugin_is_explained(tmp_path: Path) -> None:
    proc = run("-m", "biobench.train", "-m", "hydra/launcher=parallel", cwd=tmp_path)
    if proc.returncode == 0:
        raise AssertionError("expected a failure without the joblib plugin")
    assert "pip install 'biobench[joblib]'" in proc.stderr, proc.stderr[-2000:]


def test_bad_keep_ratio_from_the_command_line_names_the_key(tmp_path: Path) -> None:
    proc = run("-m", "biobench.train", "experiment=prune_digits", "pruning.keep_ratio=1.5", cwd=tmp_path)
    assert proc.returncode != 0
    assert "pruning.keep_ratio must be a number in (0, 1], got 1.5" in proc.stderr


def test_a_sweep_with_a_diverging_job_is_summarised_with_the_failure(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    lrs = "model.optimizer.lr=1.0e+6,0.05"  # the first job's loss turns NaN
    args = ["experiment=prune_digits", lrs, "model.scheduler=null", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}"]
    proc = run("-m", "biobench.train", "-m", *args, cwd=tmp_path)
    assert proc.returncode != 0 and "NonFiniteLossError" in proc.stderr
    assert json.loads((sweep / "0" / "status.json").read_text())["status"] == "failed"
    assert not (sweep / "0" / "metrics.json").exists()
    assert (sweep / "1" / "metrics.json").is_file()  # the other job still ran
    summary = (sweep / "summary.md").read_text()  # written at exit, though Hydra re-raised the failure
    assert "2 jobs expected: 1 done, 1 failed" in summary and "NonFiniteLossError" in summary


def test_local_multirun_with_subprocess_ddp_is_refused_before_anything_runs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
    args = ["experiment=prune_digits", *ddp, "seed=0,1", f"hydra.sweep.dir={sweep}"]
    proc = run("-m", "biobench.train", "-m", *args, cwd=tmp_path)
    assert proc.returncode != 0
    assert "cannot run inside a local multirun" in proc.stderr and "hydra/launcher=slurm" in proc.stderr
    assert not list(sweep.glob("*/checkpoints"))
