"""Fixed-length fingerprint embeddings (Grosz, Engelsma et al., "Minutiae-Guided Fingerprint Embeddings via Vision
Transformers", arXiv 2210.13994): a ViT or CNN backbone, an L2-normalised embedding trained with a margin-softmax
identity loss over the training fingers, and optional minutiae guidance.

Guidance (our reading; the paper does not publish it, docs/embedder.md): an auxiliary head decodes a DeepPrint-style
minutiae map (6 orientation channels, a Gaussian blob per minutia) from the backbone's spatial features -- a ViT's
patch tokens, a CNN stage -- and its MSE to the map drawn from the ground-truth minutiae is added with weight
``minutiae.weight`` (0 = off, the ablation). Making the tokens locate and orient minutiae is what "guided to
attend to minutiae" means here; the embedding pools those tokens. Pose augmentation (rotation, translation,
partial crops) moves the minutiae with the image before the map is drawn.

Validation and test verify identity-disjoint fingers (FVC protocol, :class:`VerificationMetrics`): ``val/eer`` is
the monitor; test logs TAR@FAR, EER, rank-1 and the pair counts and saves ROC / DET, scores and a TAR table.
``embed`` is the Recognizer interface; :func:`biobench.recognizers.embedder_recognizer` loads a checkpoint as one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from biobench.data.fingerprints.minutiae_map import minutiae_maps
from biobench.data.fingerprints.pose import PoseAugment, background_fill
from biobench.metrics.verification import VerificationMetrics, far_name
from biobench.models.base import System, record_training_data
from biobench.models.margin_loss import margin_loss
from biobench.models.nets.embedding import EMBEDDER_SYSTEM, MinutiaeMapHead, build_embedding_net
from biobench.models.recognizer_verification import FARS, PAIR_COUNTS, save_verification_artifacts
from biobench.models.schedules import optimizers_config
from biobench.utils.config import to_plain

BATCH_KEYS = ("image", "label", "finger", "impression", "index")
_VAL = ("val/eer", *(f"val/{far_name(far)}" for far in FARS))
_TEST = (*(f"test/{far_name(far)}" for far in FARS), "test/eer", "test/rank1", *PAIR_COUNTS)


class FingerprintEmbedder(System):
    """Margin-softmax fingerprint embedder with optional minutiae guidance (see the module docstring).

    Args:
        net: ``{model_name, map_index, pretrained_path, **timm kwargs}`` (:class:`EmbeddingBackbone`).
        embedding_dim: length D of the embedding.
        loss: ``{kind: arcface | cosface, margin, scale}`` (:func:`biobench.models.margin_loss.margin_loss`).
        minutiae: ``{weight, map_size, hidden, channels, sigma, truncate}``; weight 0 builds no minutiae head.
        pose: :class:`PoseAugment` magnitudes ``{max_rotation, max_translation, crop_prob, crop_min_keep}``.
        num_identities, in_chans, mean, std: from the data spec (training fingers, image channels, normalisation).
        optimizer / scheduler: partials (``params`` / ``optimizer`` missing).
        impostors: impostor pairs of the verification metrics, ``fvc`` or ``all``.
    """

    data_args = ("num_identities", "in_chans", "mean", "std")
    metrics = ("train/loss", "train/margin_loss", "train/minutiae_loss", *_VAL, *_TEST)
    checked_hparams = ("net", "embedding_dim", "num_identities", "in_chans", "minutiae")

    def __init__(
        self,
        net: dict[str, Any],
        embedding_dim: int,
        loss: dict[str, Any],
        minutiae: dict[str, Any],
        pose: dict[str, Any],
        num_identities: int | None,
        in_chans: int,
        mean: Sequence[float],
        std: Sequence[float],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        impostors: str = "fvc",
    ) -> None:
        super().__init__()
        if not num_identities:
            raise ValueError(
                "FingerprintEmbedder trains on identities, but the data reports none: use fingerprint data labelled "
                "by finger (data=fingerprints data.task=finger)."
            )
        net, loss, minutiae, pose = (dict(to_plain(c)) for c in (net, loss, minutiae, pose))
        hparams = {"net": net, "embedding_dim": embedding_dim, "loss": loss, "minutiae": minutiae, "pose": pose,
                   "num_identities": num_identities, "in_chans": in_chans, "mean": list(mean), "std": list(std),
                   "impostors": impostors}  # fmt: skip
        self.save_hyperparameters(hparams)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.net = build_embedding_net(net, in_chans, embedding_dim)
        self.margin_loss = margin_loss(num_classes=num_identities, embedding_dim=embedding_dim, **loss)
        self.minutiae_weight = float(minutiae.get("weight", 0.0))
        if self.minutiae_weight < 0:
            raise ValueError(f"model.minutiae.weight must be >= 0, got {self.minutiae_weight}.")
        self.map_settings = {k: v for k, v in minutiae.items() if k not in ("weight", "map_size", "hidden")}
        self.minutiae_head = None
        if self.minutiae_weight > 0:
            size = minutiae["map_size"]
            map_size = (size, size) if isinstance(size, int) else tuple(size)
            self.minutiae_head = MinutiaeMapHead(
                self.net.backbone.map_channels,
                map_size,
                self.map_settings.get("channels", 6),
                hidden=int(minutiae.get("hidden", 32)),
            )
        self.pose = PoseAugment(**pose, fill=background_fill(mean, std))
        self.train_loss, self.train_margin, self.train_minutiae = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_metrics = VerificationMetrics(FARS, impostors=impostors)
        self.test_metrics = VerificationMetrics(FARS, impostors=impostors)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.embed(images)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Recognizer interface: L2-normalised embeddings ``[N, D]``, differentiable with respect to the images."""
        return self.net.embed(images)

    def _check_batch(self, batch: dict[str, Any]) -> None:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(
                f"FingerprintEmbedder needs samples with {list(BATCH_KEYS)}, the data serves no {missing}: use "
                "data=fingerprints data.task=finger (or a folder of prints with finger / impression names)."
            )

    # -- training ----------------------------------------------------------------------------------
    def minutiae_loss(self, feature_map: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """MSE between the decoded map and the map drawn from the (posed) ground-truth minutiae."""
        predicted = self.minutiae_head(feature_map).float()
        target = minutiae_maps(
            batch["minutiae"], batch["n_minutiae"], tuple(batch["image"].shape[-2:]), predicted.shape[-2:],
            **self.map_settings,
        )  # fmt: skip
        return F.mse_loss(predicted, target)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self._check_batch(batch)
        if self.minutiae_head is not None and batch_idx == 0 and not bool(batch["n_minutiae"].any()):
            raise ValueError(
                f"model.minutiae.weight={self.minutiae_weight} guides the embedder with minutiae, but the training "
                "batch carries none: a folder of prints needs data.minutiae=mindtct (extracted) or files "
                "(<stem>.minutiae.csv beside each image); or set model.minutiae.weight=0."
            )
        batch = self.pose(batch)
        embeddings, feature_map = self.net(batch["image"])
        identity = self.margin_loss(embeddings, batch["label"])
        loss = identity
        if self.minutiae_head is not None:
            guidance = self.minutiae_loss(feature_map, batch)
            loss = loss + self.minutiae_weight * guidance
            self.train_minutiae(guidance.detach())
            self.log("train/minutiae_loss", self.train_minutiae, on_step=False, on_epoch=True)
        self.train_margin(identity.detach())
        self.train_loss(loss.detach())
        self.log("train/margin_loss", self.train_margin, on_step=False, on_epoch=True)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    # -- verification ------------------------------------------------------------------------------
    def _update(self, metric: VerificationMetrics, batch: dict[str, Any]) -> None:
        self._check_batch(batch)
        metric.update(self.embed(batch["image"]), batch["finger"], batch["impression"], batch["index"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._update(self.val_metrics, batch)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # a couple of batches: too few fingers for a verification protocol
            self.val_metrics.reset()
            return
        results = self.val_metrics.compute()
        self.log_dict({f"val/{far_name(far)}": results[far_name(far)] for far in FARS}, sync_dist=True)
        self.log("val/eer", results["eer"], prog_bar=True, sync_dist=True)
        self.val_metrics.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._update(self.test_metrics, batch)

    def on_test_epoch_end(self) -> None:
        results = self.test_metrics.compute()
        self.log_dict({f"test/{k}": v for k, v in results.items()}, sync_dist=True)
        save_verification_artifacts(self.trainer, {k: float(v) for k, v in results.items()}, self.test_metrics.scores)
        self.test_metrics.reset()

    # -- checkpoint and optimiser (the loss's class centres are parameters too) ---------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Mark the checkpoint as an embedder's and record the data it was trained on (the embedder Recognizer
        resizes and normalises to that spec)."""
        checkpoint["system"] = EMBEDDER_SYSTEM
        record_training_data(checkpoint, self.trainer)

    def configure_optimizers(self) -> Any:
        return optimizers_config(
            self.optimizer_factory, self.scheduler_factory, self.parameters(), self.trainer.estimated_stepping_batches
        )
