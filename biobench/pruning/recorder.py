"""Lightning callback recording per-sample training dynamics into compact ``[N, epochs]`` tensors.

It reads what the classifier's ``training_step`` returns (``logits``, ``index``, ``label``). Under DDP every
rank gathers all ranks' outputs, so each rank holds the full record; the duplicates that ``DistributedSampler``
pads an epoch with are ignored (the first occurrence of an index in an epoch is kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from biobench.pruning.dynamics import DYNAMICS
from biobench.utils.cache import save_arrays


def batch_dynamics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample p_y, max_{k != y} p_k, correctness, CE loss and sum_k p_k^2 of one batch."""
    logits = logits.float()
    probs = logits.softmax(dim=1)
    target = probs.gather(1, labels[:, None]).squeeze(1)
    other = probs.scatter(1, labels[:, None], -1.0).amax(dim=1)
    return {
        "target_prob": target,
        "other_max_prob": other,
        "correct": logits.argmax(dim=1) == labels,
        "loss": F.cross_entropy(logits, labels, reduction="none"),
        "sq_norm": probs.square().sum(dim=1),
    }


class DynamicsRecorder(pl.Callback):
    """Fills ``self.record[name][index, epoch]`` for every name in :data:`DYNAMICS`.

    ``save_path``: also write the record there (rank 0, at the end of training), e.g. to get it back from
    spawned DDP processes.
    """

    def __init__(self, num_samples: int, max_epochs: int, save_path: str | None = None) -> None:
        self.save_path = save_path
        self.record = {
            name: torch.zeros(num_samples, max_epochs, dtype=torch.bool if name == "correct" else torch.float16)
            for name in DYNAMICS
        }
        self.seen = torch.zeros(num_samples, dtype=torch.bool)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seen.zero_()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        logits, index, labels = outputs["logits"], outputs["index"], outputs["label"]
        if trainer.world_size > 1:
            logits, index, labels = (pl_module.all_gather(t).flatten(0, 1) for t in (logits, index, labels))
        stats = batch_dynamics(logits, labels)
        index = index.cpu()
        _, first = np.unique(index.numpy(), return_index=True)  # one write per index within the gathered batch
        first = torch.from_numpy(first)
        index = index[first]
        fresh = ~self.seen[index]
        rows, cols = index[fresh], trainer.current_epoch
        for name, values in stats.items():
            self.record[name][rows, cols] = values.detach().cpu()[first][fresh].to(self.record[name].dtype)
        self.seen[rows] = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_path and trainer.is_global_zero:
            save_arrays(Path(self.save_path), self.arrays(trainer.current_epoch), data_hash="dynamics")

    def arrays(self, epochs: int | None = None) -> dict[str, np.ndarray]:
        """The record as numpy arrays, cut to the first ``epochs`` epochs."""
        return {name: t[:, :epochs].numpy() for name, t in self.record.items()}
