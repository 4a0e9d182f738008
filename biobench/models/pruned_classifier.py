"""Image classifier trained with cross-entropy on whatever (pruned) training subset the datamodule serves.

The training subset is chosen before ``fit`` by the pruning stage (``biobench.pruning``); this module only
trains, evaluates and exposes per-sample outputs (``training_step`` returns logits and sample indices,
which the pruning dynamics recorder consumes) and a Recognizer ``embed`` (L2-normalised penultimate features).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from biobench.models.base import System, record_training_data
from biobench.models.nets import create_net
from biobench.models.schedules import optimizers_config
from biobench.utils.config import to_plain


class PrunedClassifier(System):
    """Cross-entropy classifier.

    Args:
        net: ``{"name": <registered net>, **kwargs}`` for :func:`biobench.models.nets.create_net`.
        num_classes, in_chans: filled from the datamodule by the entrypoint.
        optimizer: partial optimizer (``params`` missing); scheduler: partial LR scheduler or ``None``.
        label_smoothing: cross-entropy label smoothing.
        channels_last: use the NHWC memory format (faster convolutions on CPU and tensor cores).
    """

    data_args = ("num_classes", "in_chans")
    metrics = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc")
    checked_hparams = ("net", "num_classes", "in_chans")

    def __init__(
        self,
        net: dict[str, Any],
        num_classes: int,
        in_chans: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        net = dict(to_plain(net))
        self.save_hyperparameters(
            {
                "net": net,
                "num_classes": num_classes,
                "in_chans": in_chans,
                "label_smoothing": label_smoothing,
                "channels_last": channels_last,
            }
        )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        spec = dict(net)
        self.net = create_net(spec.pop("name"), num_classes=num_classes, in_chans=in_chans, **spec)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Recognizer interface: L2-normalised penultimate features ``[N, D]``, differentiable with respect to the
        images (freezing and eval mode are the :mod:`biobench.recognizers` wrapper's job, not this method's)."""
        feats = self.net.forward_features(images.contiguous(memory_format=self.memory_format))
        return F.normalize(feats.float(), dim=1)

    def compute_loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Training loss of one batch (overridden by the KD student)."""
        return F.cross_entropy(logits, batch["label"], label_smoothing=self.hparams.label_smoothing)

    # -- steps -------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self(batch["image"])
        loss = self.compute_loss(logits, batch)
        self.train_loss(loss.detach())
        self.train_acc(logits.detach(), batch["label"])
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return {"loss": loss, "logits": logits.detach(), "index": batch["index"], "label": batch["label"]}

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["label"])
        getattr(self, f"{stage}_loss")(loss)
        getattr(self, f"{stage}_acc")(logits, batch["label"])
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", getattr(self, f"{stage}_acc"), on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.val_acc_best(self.val_acc.compute())
            self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Per-sample ``index``, ``logits`` and penultimate ``features`` (used by pruning scores)."""
        feats = self.net.forward_features(batch["image"].contiguous(memory_format=self.memory_format))
        return {"index": batch["index"], "logits": self.net.forward_head(feats).float(), "features": feats.float()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record which data the weights were trained on (a KD student checks its teacher against the hash) and the
        spec of the images they saw (a classifier Recognizer resizes and normalises to it)."""
        record_training_data(checkpoint, self.trainer)

    def configure_optimizers(self) -> Any:
        return optimizers_config(
            self.optimizer_factory, self.scheduler_factory, self.parameters(), self.trainer.estimated_stepping_batches
        )
