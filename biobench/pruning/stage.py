"""The pruning stage of a training job, run once per job under DDP and SLURM.

Under Lightning's DDP subprocess launcher the other ranks re-run the entrypoint after rank 0 has pruned; under
SLURM (and torchrun) all ranks start together. Either way only global rank 0 (read from the environment, since no
trainer exists yet) scores, samples and writes ``<output_dir>/pruning/subset.json``; the other ranks wait for that
file and apply the same subset, so proxies are trained once per job.

A run token tells this run's ``subset.json`` from a stale one left in the same folder by an earlier run. It is
``BIOBENCH_RUN_TOKEN`` when set, else ``torchrun-<TORCHELASTIC_RUN_ID>`` under torchrun, else
``slurm-<SLURM_JOB_ID>-<SLURM_RESTART_COUNT>`` under SLURM, else a fresh random token made by rank 0 for each job.
Rank 0 exports it in ``BIOBENCH_RUN_TOKEN``, so Lightning's child processes inherit it. Elsewhere (e.g. several nodes
without SLURM) set ``BIOBENCH_RUN_TOKEN`` to one new value per run on every rank.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from biobench.contracts import SubsetDataModule
from biobench.pruning.pruner import SUBSET_FILE, Pruner, load_subset
from biobench.utils.distributed import global_rank_from_env
from biobench.utils.io import write_json

log = logging.getLogger(__name__)

RUN_TOKEN_ENV = "BIOBENCH_RUN_TOKEN"
_OWN_TOKENS: set[str] = set()  # tokens this process made (not given by the user or a scheduler)


def run_token(rank: int) -> str:
    """This run's token (see the module docstring); rank 0 makes a fresh one when the environment gives none."""
    if os.environ.get(RUN_TOKEN_ENV) and os.environ[RUN_TOKEN_ENV] not in _OWN_TOKENS:
        return os.environ[RUN_TOKEN_ENV]
    if os.environ.get("TORCHELASTIC_RUN_ID"):
        return f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}"
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    if rank == 0:
        token = uuid.uuid4().hex
        _OWN_TOKENS.add(token)  # exported for this job's children only: the next job of a multirun makes its own
        return token
    raise RuntimeError(
        f"Rank {rank} cannot tell this run's pruning subset from a stale one: {RUN_TOKEN_ENV} is not set and this "
        f"is not a SLURM job. Set {RUN_TOKEN_ENV} to the same new value on every rank (any unique string)."
    )


def run_pruning_stage(
    pruner: Pruner, datamodule: SubsetDataModule, output_dir: Path, poll_s: float = 1.0
) -> dict[str, float]:
    """Select (rank 0) or read (other ranks) the training subset, apply it to ``datamodule`` and return the
    pruning metrics (the same on every rank). Other ranks poll every ``poll_s`` seconds for up to
    ``pruner.wait_timeout_s``."""
    if not hasattr(type(datamodule), "train_labels"):
        raise ValueError(
            f"Pruning needs labelled training samples, but {type(datamodule).__name__} has none (no train_labels). "
            "Leave pruning off for this data (remove pruning=... / the pruning.* overrides)."
        )
    path = Path(output_dir) / "pruning" / SUBSET_FILE
    rank = global_rank_from_env()
    token = run_token(rank)
    if rank == 0:
        os.environ[RUN_TOKEN_ENV] = token
        try:
            kept, metrics = pruner.select(datamodule)
            datamodule.set_train_subset(kept)
        except Exception as err:  # let the waiting ranks fail now rather than at their timeout
            write_json(path, {"run_token": token, "error": f"{type(err).__name__}: {err}"})
            raise
        pruner.save(path, kept, datamodule, run_token=token, metrics=metrics)
        return metrics
    saved = wait_for_subset(path, token, pruner.wait_timeout_s, poll_s, rank)
    what = f"the pruning subset '{path}' written by rank 0"
    datamodule.set_train_subset(load_subset(path, datamodule.data_hash(), len(datamodule.train_labels), what))
    log.info("Rank %d uses the subset selected by rank 0 (%s).", rank, path)
    return saved.get("metrics", {})


def wait_for_subset(path: Path, token: str, timeout_s: float, poll_s: float, rank: int) -> dict[str, Any]:
    """Poll ``path`` until it carries ``token``; raise when rank 0 reported a failure or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    log.info("Rank %d waits for rank 0's pruning subset %s (run token %s).", rank, path, token)
    while True:
        data, found = read_subset(path)
        if data is not None and data.get("run_token") == token:
            if "error" in data:
                raise RuntimeError(f"Rank 0 failed in the pruning stage ({data['error']}); see its log. ({path})")
            return data
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"Rank {rank} waited {timeout_s:g} s for rank 0's pruning subset '{path}' with run token '{token}', "
                f"but {found}. Rank 0 may have failed or still be scoring (proxy training): check its log, or raise "
                "pruning.wait_timeout_s."
            )
        time.sleep(poll_s)


def read_subset(path: Path) -> tuple[dict[str, Any] | None, str]:
    """``(content, description)`` of a subset file that may not exist yet or may be a stale one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, "the file does not exist"
    except (OSError, ValueError) as err:
        return None, f"it cannot be read as JSON ({err})"
    if not isinstance(data, dict):
        return None, "it is not a subset file"
    return data, f"it carries run token '{data.get('run_token')}' (a stale file from another run)"
