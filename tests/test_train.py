"""End-to-end training / evaluation through the entrypoints, on the embedded digits data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_crash_and_resume
from omegaconf import OmegaConf, open_dict

from biobench.eval import evaluate
from biobench.train import train
from biobench.utils.run import finished_run

FAST = ["experiment=prune_digits", "trainer.max_epochs=3", "logger=csv"]


def read_metrics(run_dir: str) -> dict[str, float]:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def test_pruned_training_learns_and_writes_outputs(compose_train) -> None:
    cfg = compose_train(*FAST, "pruning.keep_ratio=0.5")
    train(cfg)
    out = Path(cfg.paths.output_dir)
    metrics = read_metrics(out)
    assert metrics["test/acc"] > 0.85  # 10 classes: chance is 0.1
    assert {"train/loss", "val/acc", "val/acc_best", "test/loss", "pruning/kept"} <= set(metrics)
    subset = json.loads((out / "pruning" / "subset.json").read_text())
    n_train = subset["n_train"]
    assert len(subset["indices"]) == metrics["pruning/kept"] == round(0.5 * n_train)
    assert (out / "config.yaml").is_file()
    assert (out / "checkpoints" / "best.ckpt").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "csv" / "metrics.csv").is_file()


def test_eval_reproduces_training_test_metrics(compose_train, compose_eval) -> None:
    cfg = compose_train(*FAST, "pruning.keep_ratio=0.3")
    train(cfg)
    trained = read_metrics(cfg.paths.output_dir)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    ecfg = compose_eval("experiment=prune_digits", f"ckpt_path={ckpt}", "logger=csv")
    evaluated = evaluate(ecfg)
    assert float(evaluated["test/acc"]) == pytest.approx(trained["test/acc"], abs=1e-6)
    assert read_metrics(ecfg.paths.output_dir)["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)


def test_eval_rejects_checkpoint_of_another_model(compose_train, compose_eval) -> None:
    cfg = compose_train(*FAST, "trainer.max_epochs=1")
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    ecfg = compose_eval("experiment=prune_digits", f"ckpt_path={ckpt}", "model.net.width=8")
    with pytest.raises(ValueError, match=r"last\.ckpt.*different model.*net"):
        evaluate(ecfg)
    ecfg = compose_eval("experiment=prune_digits", f"ckpt_path={ckpt.parent / 'nope.ckpt'}")
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt"):
        evaluate(ecfg)


def test_resume_from_last_checkpoint_matches_uninterrupted_run(compose_train) -> None:
    common = [*FAST, "trainer.max_epochs=4", "model.net.dropout=0.3", "pruning.keep_ratio=0.7", "seed=3"]
    full, resumed = train_crash_and_resume(compose_train, common)
    a, b = read_metrics(full), read_metrics(resumed)
    assert b["test/acc"] == pytest.approx(a["test/acc"], abs=1e-7)
    assert b["val/acc_best"] == pytest.approx(a["val/acc_best"], abs=1e-7)
    assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-5)
    rows = list(csv.DictReader((resumed / "csv" / "metrics.csv").open()))
    val_epochs = sorted({int(r["epoch"]) for r in rows if r.get("val/acc")})
    assert val_epochs == [0, 1, 2, 3]  # rows logged before the crash are kept


def test_indices_file_reuses_a_saved_subset_and_rejects_foreign_data(compose_train) -> None:
    first = compose_train(*FAST, "trainer.max_epochs=1", "pruning.keep_ratio=0.2", out="a")
    train(first)
    saved = Path(first.paths.output_dir) / "pruning" / "subset.json"
    reuse = compose_train(*FAST, "trainer.max_epochs=1", f"pruning.indices_file={saved}", "seed=5", out="b")
    train(reuse)
    again = json.loads((Path(reuse.paths.output_dir) / "pruning" / "subset.json").read_text())
    assert again["indices"] == json.loads(saved.read_text())["indices"]

    foreign = compose_train(*FAST, f"pruning.indices_file={saved}", "data.split_seed=1", out="c")
    with pytest.raises(ValueError, match="was made for dataset"):
        train(foreign)


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_keep_ratio_out_of_range_is_rejected(compose_train, ratio: float) -> None:
    cfg = compose_train(*FAST, f"pruning.keep_ratio={ratio}")
    with pytest.raises(Exception, match=r"keep_ratio must be a number in \(0, 1\]"):
        train(cfg)


def test_unknown_network_name_is_rejected(compose_train) -> None:
    cfg = compose_train(*FAST, "model.net.name=resnet9000")
    with pytest.raises(Exception, match=r"Unknown network model\.net\.name='resnet9000'"):
        train(cfg)


def test_same_seed_gives_same_subset_and_result(compose_train) -> None:
    runs = []
    for out in ("x", "y"):
        cfg = compose_train(*FAST, "trainer.max_epochs=1", "pruning.keep_ratio=0.4", out=out)
        with open_dict(cfg):
            cfg.test = False
        train(cfg)
        subset = json.loads((Path(cfg.paths.output_dir) / "pruning" / "subset.json").read_text())
        runs.append((subset["indices"], read_metrics(cfg.paths.output_dir)["val/acc"]))
    assert runs[0][0] == runs[1][0]
    assert np.isclose(runs[0][1], runs[1][1])


def test_checkpoint_records_the_full_net_spec_and_data_hash(compose_train) -> None:
    cfg = compose_train(*FAST, "trainer.max_epochs=1")
    train(cfg)
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["net"] == {"name": "small_cnn", "width": 32, "dropout": 0.0}
    from biobench.data import DigitsDataModule

    assert ckpt["data_hash"] == DigitsDataModule().data_hash()


def test_step_budget_trains_a_subset_for_the_full_sets_steps(compose_train) -> None:
    runs = {}
    for budget in ("epochs", "steps"):
        cfg = compose_train(
            *FAST, "trainer.max_epochs=2", "pruning.keep_ratio=0.1", f"pruning.budget={budget}", out=budget
        )
        runs[budget] = (Path(cfg.paths.output_dir), float(train(cfg)["test/acc"]), cfg.data.batch_size)
    for budget, (out, _, batch) in runs.items():
        subset = json.loads((out / "pruning" / "subset.json").read_text())
        per_epoch = -(-len(subset["indices"]) // batch)
        steps = 2 * -(-subset["n_train"] // batch) if budget == "steps" else 2 * per_epoch
        assert subset["budget"] == budget and subset["train_steps"] == steps
        assert subset["train_epochs"] == (-(-steps // per_epoch) if budget == "steps" else 2)
        written = read_metrics(out)
        assert written["pruning/train_steps"] == steps and written["pruning/step_budget"] == float(budget == "steps")
        assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == steps
    # the one-cycle schedule spans the longer run, which then learns much more from the same 10 %
    assert runs["steps"][1] > runs["epochs"][1] + 0.1


def test_unknown_budget_is_rejected(compose_train) -> None:
    with pytest.raises(Exception, match=r"pruning.budget must be one of \['epochs', 'steps'\]"):
        train(compose_train(*FAST, "pruning.budget=iterations"))


def test_skip_done_reuses_a_finished_run_of_the_same_config_only(compose_train) -> None:
    cfg = compose_train(*FAST, "trainer.max_epochs=1", "skip_done=true")
    first = train(cfg)
    out = Path(cfg.paths.output_dir)
    stamp = (out / "metrics.json").stat().st_mtime_ns
    relaunched = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    relaunched.hydra.run.dir = "logs/runs/2030-01-01_00-00-00"
    assert finished_run(out, relaunched) is not None  # the launch time in Hydra's node says nothing about the run
    again = train(compose_train(*FAST, "trainer.max_epochs=1", "skip_done=true"))
    assert again["test/acc"] == pytest.approx(float(first["test/acc"]))
    assert (out / "metrics.json").stat().st_mtime_ns == stamp  # nothing retrained or rewritten
    changed = compose_train(*FAST, "trainer.max_epochs=2", "skip_done=true")
    train(changed)
    assert (out / "metrics.json").stat().st_mtime_ns != stamp  # another config trains
    assert OmegaConf.load(out / "config.yaml").trainer.max_epochs == 2
