"""The pruning stage runs once per job: rank 0 selects and writes subset.json, the other ranks wait and read it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from biobench.data import DigitsDataModule
from biobench.pruning import Pruner
from biobench.pruning.samplers import TopKSampler
from biobench.pruning.scores import EL2NScore, RandomScore
from biobench.pruning.stage import RUN_TOKEN_ENV, run_pruning_stage, run_token

RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_JOB_ID", "SLURM_RESTART_COUNT", RUN_TOKEN_ENV)

# one rank of a job: prunes (rank 0) or waits for rank 0's subset; prints "ready" first, then what it trains on
WORKER = """
import json, sys
from biobench.data import DigitsDataModule
from biobench.pruning import Pruner
from biobench.pruning.samplers import TopKSampler
from biobench.pruning.scores import RandomScore
from biobench.pruning.stage import run_pruning_stage

dm = DigitsDataModule()
dm.setup("fit")
pruner = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.3, seed=0, wait_timeout_s=120)
print("ready", flush=True)
metrics = run_pruning_stage(pruner, dm, sys.argv[1], poll_s=0.05)
print(json.dumps({"kept": dm.subset.tolist(), "metrics": metrics}), flush=True)
"""


@pytest.fixture
def single_process_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No rank, SLURM or run-token variables from the calling environment."""
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def start_rank(out: Path, **env: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(out)],
        env=clean | env | {"OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )


def stale_subset(out: Path, dm: DigitsDataModule, token: str) -> Path:
    """A valid subset file from an earlier run in the same folder, with other indices."""
    stale = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.1, seed=99)
    return stale.save(out / "pruning" / "subset.json", stale.select(dm)[0], dm, run_token=token)


def test_rank1_waits_for_rank0_and_trains_on_the_same_subset(tmp_path: Path) -> None:
    """Two OS processes started as SLURM starts the tasks of one job (same job id, SLURM_PROCID 0 / 1)."""
    dm = DigitsDataModule()
    stale_subset(tmp_path, dm, token="slurm-4242-0")  # left by the job's previous attempt (before its requeue)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_RESTART_COUNT": "1"}
    rank1 = start_rank(tmp_path, SLURM_PROCID="1", **slurm)
    assert rank1.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # rank 1 polls and sees only the stale file
    assert rank1.poll() is None
    rank0 = start_rank(tmp_path, SLURM_PROCID="0", **slurm)
    out0, _ = rank0.communicate(timeout=120)
    out1, _ = rank1.communicate(timeout=120)
    assert rank0.returncode == 0 and rank1.returncode == 0
    r0, r1 = (json.loads(out.splitlines()[-1]) for out in (out0, out1))
    assert len(r0["kept"]) == round(0.3 * len(dm.train_labels)) and r1["kept"] == r0["kept"]
    assert r1["metrics"] == r0["metrics"] and r0["metrics"]["pruning/kept"] == len(r0["kept"])
    saved = json.loads((tmp_path / "pruning" / "subset.json").read_text())
    assert saved["run_token"] == "slurm-4242-1" and saved["indices"] == r0["kept"]


def test_rank0_exports_a_fresh_token_and_writes_it_with_the_subset(tmp_path: Path, single_process_env) -> None:
    dm = DigitsDataModule()
    metrics = run_pruning_stage(Pruner(RandomScore(), TopKSampler(), keep_ratio=0.5), dm, tmp_path)
    token = os.environ[RUN_TOKEN_ENV]  # what Lightning's DDP children inherit
    saved = json.loads((tmp_path / "pruning" / "subset.json").read_text())
    assert saved["run_token"] == token and saved["metrics"] == metrics
    assert np.array_equal(dm.subset, saved["indices"]) and len(dm.subset) == metrics["pruning/kept"]
    single_process_env.delenv(RUN_TOKEN_ENV)
    assert run_token(0) != token  # the next run in this folder is told apart
    single_process_env.setenv("SLURM_JOB_ID", "77")
    assert run_token(0) == run_token(3) == "slurm-77-0"


def test_a_waiting_rank_ignores_a_stale_subset_and_times_out_clearly(tmp_path: Path, single_process_env) -> None:
    dm = DigitsDataModule()
    path = stale_subset(tmp_path, dm, token="earlier-run")
    single_process_env.setenv("RANK", "1")
    single_process_env.setenv(RUN_TOKEN_ENV, "this-run")
    pruner = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.5, wait_timeout_s=0.3)
    pattern = rf"Rank 1 waited 0.3 s for .*'{re.escape(str(path))}' with run token 'this-run', "
    pattern += "but it carries run token 'earlier-run'"
    with pytest.raises(TimeoutError, match=pattern + r".*pruning\.wait_timeout_s"):
        run_pruning_stage(pruner, dm, tmp_path, poll_s=0.05)
    assert dm.subset is None
    with pytest.raises(TimeoutError, match="the file does not exist"):
        run_pruning_stage(pruner, dm, tmp_path / "elsewhere", poll_s=0.05)


def test_a_waiting_rank_needs_a_run_token(tmp_path: Path, single_process_env) -> None:
    single_process_env.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match=f"Set {RUN_TOKEN_ENV} to the same new value on every rank"):
        run_pruning_stage(Pruner(RandomScore(), TopKSampler()), DigitsDataModule(), tmp_path)


def test_a_failure_on_rank0_stops_the_waiting_ranks_at_once(tmp_path: Path, single_process_env) -> None:
    dm = DigitsDataModule()
    single_process_env.setenv(RUN_TOKEN_ENV, "job-1")
    no_proxies = Pruner(EL2NScore(), TopKSampler(), keep_ratio=0.5, wait_timeout_s=60)
    with pytest.raises(ValueError, match="needs proxy models"):
        run_pruning_stage(no_proxies, dm, tmp_path)
    single_process_env.setenv("RANK", "1")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"Rank 0 failed in the pruning stage \(ValueError: EL2NScore needs"):
        run_pruning_stage(no_proxies, dm, tmp_path)
    assert time.monotonic() - start < 5


@pytest.mark.slow
def test_submitit_local_sweep_prunes_each_job(tmp_path: Path) -> None:
    """Two jobs through Hydra's submitit launcher with its local executor (the SLURM code path without SLURM)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    command = [
        str(Path(sys.executable).with_name("biobench-train")),
        "-m",
        "hydra/launcher=submitit_local",
        "experiment=prune_digits",
        "debug=fdr",
        "pruning.keep_ratio=0.3,0.5",
        "trainer.accelerator=cpu",
        "logger=csv",
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    clean = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    done = subprocess.run(command, env=clean, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    tokens = set()
    for job, ratio in ((0, 0.3), (1, 0.5)):
        assert (sweep / str(job) / "metrics.json").is_file(), sorted(p.name for p in (sweep / str(job)).iterdir())
        subset = json.loads((sweep / str(job) / "pruning" / "subset.json").read_text())
        assert subset["keep_ratio"] == ratio and len(subset["indices"]) == round(ratio * subset["n_train"])
        tokens.add(subset["run_token"])
    assert len(tokens) == 2  # each job ran its own pruning stage
