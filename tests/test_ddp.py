"""Distributed training on CPU (2 processes, gloo): the pruned subset is what every rank trains on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

from biobench.train import train


@pytest.mark.slow
def test_ddp_sim_trains_each_rank_on_its_share_of_the_subset(compose_train, tmp_path: Path) -> None:
    seen_dir = tmp_path / "seen"
    cfg = compose_train(
        "experiment=prune_digits",
        "trainer=ddp_sim",
        "trainer.max_epochs=6",
        "pruning.keep_ratio=0.5",
        "+callbacks.seen._target_=conftest.RecordSeenIndices",
        f"+callbacks.seen.out={seen_dir}",
    )
    cfg.trainer.devices = 2  # compose_train pins tests to one device
    metrics = train(cfg)
    kept = np.array(json.loads((Path(cfg.paths.output_dir) / "pruning" / "subset.json").read_text())["indices"])
    per_rank = [np.load(seen_dir / f"rank{r}.npy") for r in (0, 1)]
    assert np.array_equal(np.unique(np.concatenate(per_rank)), kept)  # together the ranks cover the subset only
    assert all(abs(len(s) - len(kept) / 2) <= 1 for s in per_rank)  # ... each about half of it
    assert len(np.intersect1d(per_rank[0], per_rank[1])) <= 1  # DistributedSampler pads at most one duplicate
    assert float(metrics["test/acc"]) > 0.5


@pytest.mark.slow
def test_ddp_sim_records_the_same_dynamics_as_one_process(tmp_path: Path) -> None:
    """With frozen weights (lr 0) and no batch statistics, per-sample dynamics must not depend on the sharding;
    the training split (1,213 samples) is odd, so DistributedSampler pads a duplicate: still one record per sample."""
    from functools import partial

    import pytorch_lightning as pl
    import torch

    from biobench.data import DigitsDataModule
    from biobench.models.pruned_classifier import PrunedClassifier
    from biobench.pruning.recorder import DynamicsRecorder
    from biobench.utils.cache import load_arrays

    records = {}
    for name, devices, strategy in (("single", 1, "auto"), ("ddp", 2, "ddp_spawn")):
        pl.seed_everything(0)
        dm = DigitsDataModule(batch_size=50, test_fraction=0.25)
        n = len(dm.train_labels)
        model = PrunedClassifier({"name": "fixed_linear"}, 10, 1, partial(torch.optim.SGD, lr=0.0))
        path = tmp_path / f"{name}.npz"
        trainer = pl.Trainer(
            max_epochs=2,
            accelerator="cpu",
            devices=devices,
            strategy=strategy,
            logger=False,
            enable_checkpointing=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            enable_progress_bar=False,
            callbacks=[DynamicsRecorder(n, 2, save_path=str(path))],
        )
        trainer.fit(model, datamodule=dm)
        records[name] = load_arrays(path, "dynamics", n)
    assert n % 2 == 1
    for key in ("target_prob", "other_max_prob", "correct", "loss", "sq_norm"):
        np.testing.assert_array_equal(records["single"][key], records["ddp"][key], err_msg=key)
    assert (records["ddp"]["target_prob"] > 0).all()  # every sample recorded in every epoch


@pytest.mark.slow
def test_subprocess_ddp_prunes_once_and_every_rank_trains_on_that_subset(tmp_path: Path) -> None:
    """``trainer=ddp`` as on a GPU node (Lightning re-runs the command for rank 1), on 2 CPU processes."""
    run_dir = tmp_path / "run"
    cpu = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true", "trainer.sync_batchnorm=false"]
    args = [
        "experiment=prune_digits",
        "trainer=ddp",
        *cpu,
        "pruning.keep_ratio=0.5",
        "trainer.max_epochs=6",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_python("-m", "biobench.train", *args, "~callbacks.progress_bar", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Rank 1 uses the subset selected by rank 0" in proc.stdout + proc.stderr
    subset = json.loads((run_dir / "pruning" / "subset.json").read_text())
    assert len(subset["indices"]) == round(0.5 * subset["n_train"]) and subset["run_token"]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] > 0.5
