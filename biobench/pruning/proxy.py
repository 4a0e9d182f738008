"""The proxy stage: K proxy models ("experts") trained on the full training set with different seeds.

Each leaves a :class:`ProxyRecord` (training dynamics + final probabilities and features) from which the scores
are computed. Records are cached by (dataset content hash, proxy settings, :data:`PROXY_VERSION`, the datamodule's
train transform settings, seed, expert), so a sweep over keep ratios and samplers trains the proxies once.

Bump :data:`PROXY_VERSION` whenever the records would change for the same settings: the training recipe here
(optimiser, schedule, seeding, model construction, the eval pass) or what :class:`DynamicsRecorder` /
:mod:`biobench.pruning.grad_norm` store. Since score cache keys contain the proxy key, this also recomputes scores.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from biobench.contracts import SubsetDataModule
from biobench.models.pruned_classifier import PrunedClassifier
from biobench.models.schedules import one_cycle
from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.grad_norm import per_sample_grad_norms
from biobench.pruning.recorder import DynamicsRecorder
from biobench.utils.cache import cached_arrays
from biobench.utils.config import to_plain

log = logging.getLogger(__name__)

PROXY_VERSION = 2  # 2: one-cycle schedule stepped per optimiser step, peak lr 0.1, reflect-padded crops


@dataclass
class ProxyStage:
    """Settings of the proxy models (all part of the cache key).

    ``net``: network spec as in ``model.net``; ``epochs``: proxy training epochs (dynamics are recorded for
    each); SGD with Nesterov momentum and the classifier's one-cycle schedule (peak ``lr``, stepped per optimiser
    step over the ``epochs``' steps, :func:`biobench.models.schedules.one_cycle`). ``full_grad_norm`` also stores
    every sample's full-parameter gradient norm after training (for ``GraNdScore(mode="full")``; costs about one
    more epoch of backward passes).
    """

    num_experts: int = 3
    epochs: int = 10
    net: dict[str, Any] = field(default_factory=lambda: {"name": "small_cnn"})
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    accelerator: str = "auto"
    precision: str = "32-true"
    full_grad_norm: bool = False

    def __post_init__(self) -> None:
        self.net = dict(to_plain(self.net))
        if self.num_experts < 1 or self.epochs < 1:
            raise ValueError(
                f"pruning.proxy needs num_experts >= 1 and epochs >= 1, got {self.num_experts}, {self.epochs}."
            )
        self.cost_s = 0.0  # training time spent by the last run() (0 when every record came from the cache)

    def key(self, datamodule: SubsetDataModule) -> dict[str, Any]:
        """What the records depend on besides the data and the seed (hardware settings excluded)."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("accelerator", "precision")}
        return {**settings, "version": PROXY_VERSION, "transforms": datamodule.transform_settings()}

    def run(self, datamodule: SubsetDataModule, seed: int, cache_dir: Path | None = None) -> list[ProxyRecord]:
        """Train (or load) the K experts; ``self.cost_s`` says how long training took."""
        n = len(datamodule.train_labels)
        records, self.cost_s = [], 0.0
        for k in range(self.num_experts):
            arrays, _ = cached_arrays(
                cache_dir,
                "proxies",
                (self.key(datamodule), seed, k),
                datamodule.data_hash(),
                n,
                partial(self._train_one, datamodule, seed * 1000 + k),
            )
            records.append(ProxyRecord(**{f.name: arrays[f.name] for f in fields(ProxyRecord) if f.name in arrays}))
        return records

    def _train_one(self, datamodule: SubsetDataModule, seed: int) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        pl.seed_everything(seed, verbose=False)
        labels = np.asarray(datamodule.train_labels)
        optimizer = partial(
            torch.optim.SGD, lr=self.lr, momentum=self.momentum, nesterov=True, weight_decay=self.weight_decay
        )
        scheduler = one_cycle
        model = PrunedClassifier(self.net, datamodule.spec.num_classes, datamodule.spec.in_chans, optimizer, scheduler)
        recorder = DynamicsRecorder(len(labels), self.epochs)
        trainer = pl.Trainer(
            max_epochs=self.epochs,
            accelerator=self.accelerator,
            devices=1,
            precision=self.precision,
            logger=False,
            enable_checkpointing=False,
            callbacks=[recorder],
            limit_val_batches=0,
            num_sanity_val_steps=0,
            enable_model_summary=False,
        )
        loader = datamodule.shuffled_train_loader(seed=seed, batch_size=self.batch_size)
        log.info("Training proxy model (seed %d) for %d epochs on %d samples.", seed, self.epochs, len(labels))
        trainer.fit(model, train_dataloaders=loader)
        outputs = trainer.predict(model, dataloaders=datamodule.train_eval_dataloader())
        index = torch.cat([o["index"] for o in outputs]).numpy()
        order = np.argsort(index)
        logits = torch.cat([o["logits"] for o in outputs])[order]
        features = torch.cat([o["features"] for o in outputs])[order]
        grad_norm = np.full(len(labels), np.nan)
        if self.full_grad_norm:
            grad_norm = per_sample_grad_norms(model.net, datamodule.train_eval_dataloader(), len(labels))
        self.cost_s += time.perf_counter() - start
        return {
            "labels": labels,
            **recorder.arrays(),
            "probs": logits.softmax(1).numpy(),
            "features": features.numpy(),
            "grad_norm": grad_norm,
        }
