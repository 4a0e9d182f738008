"""An unlabelled system with two optimisers (tests/example_system.py) through the unchanged entrypoints: it trains,
selects on val/loss (min), resumes exactly, evaluates, sweeps and is summarised."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import run_python, train_crash_and_resume

from biobench.eval import evaluate
from biobench.train import train

TESTS = Path(__file__).resolve().parent
SEARCHPATH = f"hydra.searchpath=[file://{TESTS / 'conf'}]"
AE = [SEARCHPATH, "experiment=autoencoder_digits", "logger=csv", "data.batch_size=128"]


def read_metrics(run_dir: str | Path) -> dict[str, float]:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def test_trains_selects_on_val_loss_and_evaluates(compose_train, compose_eval) -> None:
    cfg = compose_train(*AE, "trainer.max_epochs=3")
    assert cfg.get("pruning") is None and cfg.monitor.mode == "min"
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    rows = list(csv.DictReader((out / "csv" / "metrics.csv").open()))
    val = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert val[-1] < 0.7 * val[0]  # reconstruction improves
    assert float(metrics["test/psnr"]) > 10.0 and "train/aux_loss" in metrics
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    (selection,) = [state for key, state in best["callbacks"].items() if "val/loss" in key]
    assert float(selection["best_model_score"]) == pytest.approx(min(val))  # best = lowest val/loss
    assert len(best["optimizer_states"]) == 2

    ecfg = compose_eval(*AE, f"ckpt_path={out / 'checkpoints' / 'best.ckpt'}")
    assert float(evaluate(ecfg)["test/loss"]) == pytest.approx(float(metrics["test/loss"]), rel=1e-6)
    classifier = compose_eval("experiment=prune_digits", f"ckpt_path={out / 'checkpoints' / 'best.ckpt'}", out="c")
    with pytest.raises(ValueError, match="saved by a different model"):
        evaluate(classifier)


def test_resumes_exactly(compose_train) -> None:
    full, resumed = train_crash_and_resume(compose_train, [*AE, "trainer.max_epochs=4", "seed=2"])
    a, b = read_metrics(full), read_metrics(resumed)
    assert b["test/loss"] == pytest.approx(a["test/loss"], rel=1e-6)
    assert b["train/aux_loss"] == pytest.approx(a["train/aux_loss"], rel=1e-5)


def test_sweeps_and_is_summarised(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    env = {"PYTHONPATH": str(TESTS)}
    sweep_args = ["model.width=2,8", "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}", "~callbacks.progress_bar"]
    proc = run_python("-m", "biobench.train", "-m", *AE, *sweep_args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(json.loads((sweep / j / "status.json").read_text())["status"] == "done" for j in ("0", "1"))
    summary = ["-m", "biobench.results.cli", str(sweep), "--metric", "test/psnr", "--x", "model.width"]
    proc = run_python(*summary, "--label", "task_name", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {float(r["x"]): float(r["mean"]) for r in csv.DictReader((sweep / "summary.csv").open())}
    assert set(rows) == {2.0, 8.0} and rows[8.0] > rows[2.0]  # a wider bottleneck reconstructs better
