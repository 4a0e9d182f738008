"""Knowledge distillation on a pruned subset ("Distilling the Knowledge in Data Pruning", Ben-Baruch et al.,
ICML 2025): the student trains on the kept samples with soft targets from a teacher trained on the full data.

Loss: (1 - alpha) CE(y, s) + alpha T^2 KL(softmax(t / T) || softmax(s / T)). The paper finds the best alpha grows
as less data is kept, so alpha can follow the keep ratio (``alpha_schedule``): ``constant``; ``linear`` in the
pruned fraction, alpha_min + (alpha_max - alpha_min) (1 - keep_ratio); or a ``table`` {keep_ratio: alpha},
interpolated linearly. The teacher runs frozen, in eval mode, on the student's (augmented) batch
(``teacher_logits: online``), or, for training without augmentation, its logits are computed once per (teacher file,
data, normalisation, code version) and cached on disk (``cached``). The online teacher has its BatchNorm folded into
the convolutions (equivalent in eval mode up to float rounding) and runs in the student's memory format; it is not
part of the student's checkpoint (which stays a plain classifier's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biobench.contracts import SubsetDataModule
from biobench.models.base import trainer_data_hash
from biobench.models.nets.loading import fold_batchnorm, load_classifier_net
from biobench.models.pruned_classifier import PrunedClassifier
from biobench.utils.cache import cached_arrays
from biobench.utils.config import to_plain
from biobench.utils.hashing import content_hash

SCHEDULES = ("constant", "linear", "table")


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """(1 - alpha) CE(labels, student) + alpha T^2 KL(softmax(teacher / T) || softmax(student / T)), batch mean."""
    ce = F.cross_entropy(student, labels, label_smoothing=label_smoothing)
    if alpha == 0:
        return ce
    log_s = F.log_softmax(student.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher.float() / temperature, dim=1)
    kl = F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")
    return (1 - alpha) * ce + alpha * temperature**2 * kl


def kd_alpha(
    schedule: str,
    keep_ratio: float,
    alpha: float = 0.5,
    alpha_min: float = 0.0,
    alpha_max: float = 1.0,
    table: Mapping[float, float] | None = None,
) -> float:
    """The KD weight for a keep ratio under ``schedule`` (see the module docstring)."""
    if schedule == "constant":
        value = alpha
    elif schedule == "linear":
        value = alpha_min + (alpha_max - alpha_min) * (1.0 - keep_ratio)
    elif schedule == "table":
        if not table:
            raise ValueError("kd alpha_schedule=table needs model.alpha_table {keep_ratio: alpha}.")
        xs = np.array(sorted(float(k) for k in table))
        value = float(np.interp(keep_ratio, xs, [float(table[k]) for k in sorted(table, key=float)]))
    else:
        raise ValueError(f"model.alpha_schedule must be one of {list(SCHEDULES)}, got '{schedule}'.")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"KD alpha must lie in [0, 1], got {value} ({schedule} schedule at keep ratio {keep_ratio}).")
    return value


# Version of the cached teacher logits: bump it when how they are computed changes (the teacher's forward pass, the
# eval transform), so caches written by older code are not reused.
TEACHER_LOGITS_VERSION = 1


def teacher_logits_key(teacher_hash: str, datamodule: SubsetDataModule) -> tuple:
    """What cached teacher logits depend on besides the data: the teacher file, the code version and the pixels the
    teacher saw (normalisation; augmentation is refused for cached logits)."""
    return (teacher_hash, TEACHER_LOGITS_VERSION, datamodule.transform_settings())


def load_teacher(path: str | Path, num_classes: int, in_chans: int) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a classifier checkpoint's network, frozen in eval mode, checked to predict the student's classes
    from the student's channels; returns (net, checkpoint)."""
    net, ckpt = load_classifier_net(path)
    hp = ckpt["hyper_parameters"]
    if (hp["num_classes"], hp["in_chans"]) != (num_classes, in_chans):
        raise ValueError(
            f"Teacher checkpoint '{path}' predicts {hp['num_classes']} classes from {hp['in_chans']} channels, "
            f"but the student's data has {num_classes} classes and {in_chans} channels. Train the teacher on this data."
        )
    return net, ckpt


class KDStudent(PrunedClassifier):
    """A :class:`PrunedClassifier` whose training loss distils a frozen full-data teacher.

    Args (besides the classifier's): ``teacher_ckpt`` (a classifier checkpoint, loaded with weights_only=True);
    ``alpha``, ``temperature``; ``alpha_schedule`` with ``alpha_min`` / ``alpha_max`` / ``alpha_table``;
    ``keep_ratio`` (the run's pruning.keep_ratio, which the schedule reads).
    """

    checkpoint_excluded_prefixes = ("teacher.",)  # the teacher is not saved with the student

    def __init__(
        self,
        teacher_ckpt: str,
        alpha: float = 0.5,
        temperature: float = 4.0,
        alpha_schedule: str = "constant",
        alpha_min: float = 0.0,
        alpha_max: float = 1.0,
        alpha_table: Mapping[float, float] | None = None,
        keep_ratio: float = 1.0,
        teacher_logits: str = "online",
        cache_dir: str | None = None,
        **classifier: Any,
    ) -> None:
        super().__init__(**classifier)
        if temperature <= 0:
            raise ValueError(f"model.temperature must be > 0, got {temperature}.")
        if teacher_logits not in ("online", "cached"):
            raise ValueError(f"model.teacher_logits must be 'online' or 'cached', got '{teacher_logits}'.")
        self.teacher_logits = teacher_logits
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cached_logits: torch.Tensor | None = None
        table = to_plain(alpha_table)
        self.kd_weight = kd_alpha(alpha_schedule, keep_ratio, alpha, alpha_min, alpha_max, table)
        self.temperature = temperature
        teacher, ckpt = load_teacher(teacher_ckpt, self.hparams.num_classes, self.hparams.in_chans)
        self.teacher = fold_batchnorm(teacher).to(memory_format=self.memory_format)
        # the teacher comes from teacher_ckpt, not from the student's state (hooks: also when the student is wrapped)
        self.exclude_frozen_parts()
        self.teacher_ckpt = str(teacher_ckpt)
        self.teacher_hash = content_hash(Path(teacher_ckpt).read_bytes())
        self.teacher_data_hash = ckpt.get("data_hash", ckpt.get("data_fingerprint"))  # older: data_fingerprint
        self.hparams.update(
            {
                "kd": {
                    "teacher": self.teacher_ckpt,
                    "teacher_hash": self.teacher_hash,
                    "alpha": self.kd_weight,
                    "temperature": temperature,
                    "alpha_schedule": alpha_schedule,
                    "keep_ratio": keep_ratio,
                }
            }
        )

    def setup(self, stage: str) -> None:
        mine = trainer_data_hash(self.trainer)
        if mine and self.teacher_data_hash and mine != self.teacher_data_hash:
            raise ValueError(
                f"Teacher checkpoint '{self.teacher_ckpt}' was trained on data {self.teacher_data_hash}, but the "
                f"student's data is {mine} (other files, labels or split). Train the teacher on the student's data."
            )
        if stage == "fit" and self.teacher_logits == "cached" and self.cached_logits is None:
            self.cached_logits = self._cached_teacher_logits(self.trainer.datamodule)

    def _cached_teacher_logits(self, datamodule: SubsetDataModule | None) -> torch.Tensor:
        """Teacher logits ``[N, C]`` of every training sample, by index, from the disk cache or one eval pass."""
        if datamodule is None or getattr(datamodule, "crop_padding", 0) or getattr(datamodule, "hflip", False):
            raise ValueError(
                "model.teacher_logits=cached needs a datamodule trained without augmentation (data.crop_padding=0, "
                "data.hflip=false): cached logits of clean images would not match augmented batches."
            )
        n = len(datamodule.train_labels)

        @torch.no_grad()
        def compute() -> dict[str, np.ndarray]:
            out = torch.empty(n, self.hparams.num_classes)
            for batch in datamodule.train_eval_dataloader():
                out[batch["index"]] = self.teacher(batch["image"].to(self.device)).float().cpu()
            return {"logits": out.numpy()}

        key = teacher_logits_key(self.teacher_hash, datamodule)
        arrays, _ = cached_arrays(self.cache_dir, "teacher_logits", key, datamodule.data_hash(), n, compute)
        return torch.from_numpy(arrays["logits"])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A resumed run must distil from the teacher it started with (the teacher is not in the checkpoint)."""
        saved = checkpoint.get("hyper_parameters", {}).get("kd", {}).get("teacher_hash")
        if saved and saved != self.teacher_hash:
            raise ValueError(
                f"Teacher checkpoint '{self.teacher_ckpt}' is not the teacher this run was trained with (its content "
                f"changed since): resume with the original teacher file or start a new run."
            )

    def train(self, mode: bool = True) -> KDStudent:
        super().train(mode)
        self.teacher.eval()  # the teacher stays frozen in eval mode (BatchNorm statistics untouched)
        return self

    def compute_loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.kd_weight == 0:
            return super().compute_loss(logits, batch)
        if self.cached_logits is not None:
            teacher_logits = self.cached_logits[batch["index"].cpu()].to(logits.device)
        else:
            with torch.no_grad():
                teacher_logits = self.teacher(batch["image"].contiguous(memory_format=self.memory_format))
        return kd_loss(
            logits, teacher_logits, batch["label"], self.kd_weight, self.temperature, self.hparams.label_smoothing
        )
