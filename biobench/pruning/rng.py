"""Run code without touching the process's global random state (python, numpy, torch CPU / CUDA, Lightning's seed).

The pruning stage trains proxy models that seed and draw from the global generators. Inside :func:`isolated_rng`
the run that follows pruning starts from exactly the state it would have had without a pruning stage, whether
the proxies were trained or read from the cache, so the entrypoint need not re-seed after pruning.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

# set by ``pl.seed_everything`` and read by Lightning when it re-seeds DDP processes and dataloader workers
SEED_ENV_VARS = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


@contextmanager
def isolated_rng() -> Iterator[None]:
    """Restore the python, numpy, torch CPU and CUDA generator states and Lightning's seed variables on exit.

    CUDA is not initialised here when it was not already (that would claim every GPU from this process); if the
    block initialises it, the CUDA generators are re-seeded on exit with the seed they would have been lazily
    initialised with (the current torch seed, as ``torch.manual_seed`` queues it for CUDA).
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    env = {k: os.environ.get(k) for k in SEED_ENV_VARS}
    cuda_ready = torch.cuda.is_initialized()
    pending_cuda_seed = torch.initial_seed()
    devices = list(range(torch.cuda.device_count())) if cuda_ready else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        if not cuda_ready and torch.cuda.is_initialized():
            torch.cuda.manual_seed_all(pending_cuda_seed)
        random.setstate(py_state)
        np.random.set_state(np_state)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
