"""The process's place in a distributed job, read from the environment before any trainer exists."""

from __future__ import annotations

import os


def global_rank_from_env() -> int:
    """Global rank: ``RANK`` (torchrun, Lightning's launchers), else the ``LOCAL_RANK`` / ``NODE_RANK`` of a
    Lightning subprocess child (checked before SLURM: children started inside a SLURM allocation inherit the parent's
    ``SLURM_PROCID``), else ``SLURM_PROCID`` (one task per rank), else 0. Callers rely on ``== 0`` being exact."""
    if os.environ.get("RANK", "").isdigit():
        return int(os.environ["RANK"])
    local, node = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("NODE_RANK", 0))
    if local or node:
        devices = int(os.environ.get("LOCAL_WORLD_SIZE", 0))
        return local + node * devices if devices else max(local, 1)  # without the node size: only "not zero" is known
    return int(os.environ.get("SLURM_PROCID", 0))


def is_global_zero_from_env() -> bool:
    return global_rank_from_env() == 0
