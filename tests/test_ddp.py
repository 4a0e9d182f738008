"""Distributed training on CPU (2 processes, gloo): the pruned subset is what every rank trains on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

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
