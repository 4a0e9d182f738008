"""FPGAN-Control, phase 1: a StyleGAN2 fingerprint generator with identity and appearance latents trained with
GAN-Control's disentanglement losses ("FPGAN-Control", Shoshan et al., WACV 2024, arXiv 2310.19024; docs/fpgan.md).

Networks: :class:`~biobench.models.nets.fpgan_generator.FPGANGenerator` (``z_id`` and ``z_app``, one mapping each),
:class:`~biobench.models.nets.fpgan_discriminator.FPGANDiscriminator`, and ``g_ema``, the generator's EMA copy
(half-life in images) that validation, test and sampling use. The resolution and channels are the data's; served
images must be in [-1, 1] (``data.mean=[0.5] data.std=[0.5]``), the generator's linear output is trained towards it.

Manual optimisation, one iteration per training batch (StyleGAN2 / GAN-Control):

- D step: logistic loss on DiffAugment'ed reals and fakes (fresh latents and noise); every ``r1_every`` iterations
  a separate step on ``r1_gamma / 2 * R1 * r1_every`` (R1 w.r.t. the un-augmented reals);
- G step on a pair batch (:mod:`biobench.models.fpgan_losses`: identity pairs share ``z_id`` + noise, appearance
  pairs ``z_app``): non-saturating loss through D (augmented) ``+ w_id * identity hinge + w_app * appearance hinge``
  on the un-augmented images (clamped to [-1, 1] straight-through: the Recognizer sees what a sample shows, and
  overshooting pixels keep their gradient); ``update_w_avg`` on its ``w``; every
  ``pl_every`` iterations a separate step on ``pl_weight * path length * pl_every`` (batch / ``pl_batch_shrink``);
- ``g_ema <- ema_update``. Both Adam optimisers get StyleGAN2's lazy-regularisation correction (``lr * c``,
  ``betas ** c``, ``c = every / (every + 1)``). Lightning counts every optimiser step in ``global_step`` (up to 4 per
  iteration): bound runs by epochs; the iteration count is the ``iteration`` buffer.

Hinge thresholds ``tau_id`` / ``tau_app`` are given, or (``null``) calibrated at the start of training from the
Recognizer's distances on training reals (:func:`~biobench.models.fpgan_losses.hinge_thresholds`), kept in the
checkpoint and written to ``artifacts/hinge_thresholds.csv``.

The frozen Recognizer (a factory taking ``spec``) must see what it was trained on: its channels and training image
size must equal the GAN's (else a clear error). It is in no optimiser and not in the checkpoint.

Evaluation, in the Recognizer's embedding space (no Inception weights offline), on g_ema samples of fixed seeded
latents (so epochs compare): ``identities x impressions`` samples, each identity one ``z_id`` and one noise set, each
sample its own ``z_app``. Reals are the split being evaluated (validation / test fingers: unseen by the GAN and by
a Recognizer trained on the training fingers, whose embeddings of its own training images would be tighter):

- ``val/fd``: Fréchet distance (float64, :mod:`biobench.metrics.generation`) between generated and validation
  embeddings; ``val/id_eer``: EER of same-identity vs all cross-identity generated pairs (cosine);
- ``test/id_tar@far=1e-3``, ``test/id_eer`` (64 x 4 samples: 384 genuine, 32,256 impostor pairs), ``test/fd``,
  ``test/precision`` / ``test/recall``: k-NN (k = 3) manifold precision / recall (same module) against the test
  reals; artifact ``samples.png``: rows = identities (shared noise), columns = appearances.

Single device: the metrics are not gathered across DDP ranks.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from biobench.contracts import DataSpec, Recognizer
from biobench.metrics.generation import frechet_distance, knn_precision_recall, shared_factor_ratio
from biobench.metrics.verification import (
    all_impostor_scores,
    equal_error_rate,
    far_name,
    fvc_pairs,
    pair_similarities,
    tar_at_far,
)
from biobench.models.base import System, record_training_data
from biobench.models.fpgan_export import FPGAN_SYSTEM, ExportSettings, export_generated, sample_grid_figure
from biobench.models.fpgan_losses import (
    PairBatch,
    appearance_distances,
    appearance_thumbnails,
    clamp_straight_through,
    contrastive_hinge,
    hinge_thresholds,
    identity_distances,
    pair_batch,
)
from biobench.models.gan_losses import d_logistic_loss, g_nonsaturating_loss, path_length_penalty, r1_penalty
from biobench.models.nets.diff_augment import AUGMENTATIONS, diff_augment
from biobench.models.nets.fpgan_discriminator import FPGANDiscriminator
from biobench.models.nets.fpgan_generator import FPGANGenerator, ema_beta, ema_update
from biobench.recognizers import FrozenRecognizer, build_recognizer
from biobench.utils.artifacts import save_figure, save_table
from biobench.utils.config import to_plain

log = logging.getLogger(__name__)

ID_TAR = f"id_{far_name(1e-3)}"
EVALUATION = {"seed": 0, "val": [32, 8], "test": [64, 4], "grid": [6, 6], "knn": 3, "batch_size": 64}
STAGE_SEEDS = {"val": 0, "test": 1, "grid": 2, "appearance": 3}  # offsets of evaluation.seed
CALIBRATION = {"images": 512, "id_quantiles": [0.5, 0.1], "app_quantiles": [0.01, 0.1]}


# -- generation metrics ---------------------------------------------------------------------------------------------
def identity_verification(embeddings: torch.Tensor, identity: np.ndarray, impression: np.ndarray) -> dict[str, float]:
    """``id_eer`` and ``id_tar@far=1e-3`` of embeddings: every same-identity pair against every cross-identity pair."""
    genuine_pairs, _ = fvc_pairs(identity, impression)
    genuine = pair_similarities(embeddings, torch.as_tensor(genuine_pairs, device=embeddings.device))
    impostor = all_impostor_scores(embeddings, identity)
    genuine, impostor = genuine.double().cpu().numpy(), impostor.double().cpu().numpy()
    return {"id_eer": equal_error_rate(genuine, impostor), ID_TAR: tar_at_far(genuine, impostor, 1e-3)}


# -- fixed samples --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleSet:
    """Latents of ``identities x impressions`` samples: ``z_id`` / ``z_app`` per sample, the noise maps per identity
    (``[identities, 1, r, r]``), the sample's ``identity`` and ``impression`` (identity-major order)."""

    z_id: torch.Tensor
    z_app: torch.Tensor
    noise: list[torch.Tensor]
    identity: np.ndarray
    impression: np.ndarray

    @classmethod
    def draw(
        cls, g: FPGANGenerator, identities: int, impressions: int, seed: int, shared_appearance: bool = False
    ) -> SampleSet:
        """Seeded (on the CPU, so every device draws the same latents); ``shared_appearance``: impression ``j`` of
        every identity has the same ``z_app`` (a grid's columns)."""
        rng = torch.Generator().manual_seed(seed)
        device = g.const.device
        z_id = torch.randn(identities, g.identity_dim, generator=rng).repeat_interleave(impressions, dim=0)
        noise = g.make_noise(identities, rng)
        apps = impressions if shared_appearance else identities * impressions
        z_app = torch.randn(apps, g.appearance_dim, generator=rng)
        z_app = z_app.repeat(identities, 1) if shared_appearance else z_app
        identity = np.repeat(np.arange(identities), impressions)
        return cls(z_id.to(device), z_app.to(device), noise, identity, np.tile(np.arange(impressions), identities))

    def __len__(self) -> int:
        return len(self.identity)

    @torch.no_grad()
    def images(self, g: FPGANGenerator, rows: torch.Tensor) -> torch.Tensor:
        """The samples ``rows`` generated by ``g``."""
        ids = torch.as_tensor(self.identity, device=self.z_id.device)[rows]
        return g(self.z_id[rows], self.z_app[rows], [n[ids] for n in self.noise])


# -- checks ---------------------------------------------------------------------------------------------------------
def square_resolution(spec: DataSpec) -> int:
    """The GAN's resolution: the served images' side; they must be square and in [-1, 1]."""
    if spec.image_size is None or spec.image_size[0] != spec.image_size[1]:
        raise ValueError(f"FPGANControl needs square images of one size (data.image_size=<side>), the data serves "
                         f"{spec.image_size}.")  # fmt: skip
    if any(abs(m - 0.5) > 1e-6 for m in spec.mean) or any(abs(s - 0.5) > 1e-6 for s in spec.std):
        lo, hi = spec.value_range
        raise ValueError(
            f"FPGANControl trains on images served in [-1, 1] (data.mean=[0.5] data.std=[0.5]), towards which the "
            f"generator's linear output learns; the data serves mean={list(spec.mean)}, std={list(spec.std)} (range "
            f"[{lo:.3g}, {hi:.3g}]). Set data.mean=[0.5] data.std=[0.5]."
        )
    return spec.image_size[0]


def check_recognizer(recognizer: Recognizer, spec: DataSpec) -> None:
    """Every frozen network inside ``recognizer`` must take the GAN's channels and have been trained at its image
    size (an embedder checkpoint's ``data_spec``), so the identity loss sees images as the Recognizer learned them."""
    modules = recognizer.modules() if isinstance(recognizer, nn.Module) else ()
    for part in (m for m in modules if isinstance(m, FrozenRecognizer)):
        size = part.input_size if part.input_size is not None else spec.image_size
        if part.in_chans != spec.in_chans or tuple(size) != tuple(spec.image_size):
            raise ValueError(
                f"The Recognizer ({type(part.model).__name__}) was trained on {part.in_chans}-channel images of "
                f"{size[0]} x {size[1]} px, but the GAN generates {spec.in_chans}-channel {spec.image_size[0]} x "
                f"{spec.image_size[1]} px images: train it at the GAN's data settings (biobench-train "
                "experiment=fpgan_recognizer, the same data.* overrides) and give that checkpoint as recognizer.path."
            )


def lazy_regularization(optimizer: torch.optim.Optimizer, every: int) -> torch.optim.Optimizer:
    """StyleGAN2's correction for an optimiser that also takes a regulariser step every ``every`` iterations:
    ``lr * c``, ``betas ** c``, ``c = every / (every + 1)``; ``every`` 0 (no regulariser): unchanged."""
    if every > 0:
        c = every / (every + 1)
        for group in optimizer.param_groups:
            group["lr"] *= c
            if "betas" in group:
                group["betas"] = tuple(b**c for b in group["betas"])
    return optimizer


class FPGANControl(System):
    """FPGAN-Control's generator training (module docstring).

    Args:
        spec: the served images' :class:`DataSpec` (square, in [-1, 1]); resolution and channels come from it.
        generator / discriminator: :class:`FPGANGenerator` / :class:`FPGANDiscriminator` keyword arguments
            (``resolution`` and ``img_channels`` excluded).
        losses: ``{w_id, w_app, tau_id, tau_app, blur_sigma, thumb_size, calibration}``; ``tau_*`` ``[low, high]``
            or ``null`` (calibrated: ``calibration = {images, id_quantiles, app_quantiles}``).
        regularization: ``{r1_gamma, r1_every, pl_weight, pl_every, pl_batch_shrink, pl_decay}`` (0 turns off).
        g_optimizer / d_optimizer: partials (``params`` missing), before the lazy-regularisation correction.
        recognizer: the frozen Recognizer (a factory taking ``spec=``) of the identity loss and every metric.
        augment: DiffAugment policy of D's inputs (comma-separated; empty: none).
        ema_half_life_images: half-life of ``g_ema`` in images.
        ema_rampup: ``None``, or at most this fraction of the images seen so far as half-life (StyleGAN2-ADA: 0.05;
            for runs shorter than a few half-lives).
        evaluation: ``{seed, val: [identities, impressions], test: [...], grid: [rows, cols], knn, batch_size}``.
        export: ``{dir, identities, impressions, seed, psi_id, psi_app, shared_appearance}``: with a ``dir``, the
            test stage ends by exporting a synthetic set of g_ema there (:mod:`biobench.models.fpgan_export`).
    """

    data_args = ("spec",)
    metrics = (
        "train/loss", "train/d_loss", "train/adv_loss", "train/id_loss", "train/app_loss", "train/r1_loss",
        "train/pl_loss", "val/fd", "val/id_eer",
        "test/fd", "test/precision", "test/recall", "test/id_eer", f"test/{ID_TAR}", "test/app_ratio",
    )  # fmt: skip
    checked_hparams = ("generator", "discriminator", "resolution", "img_channels")
    checkpoint_excluded_prefixes = ("recognizer.",)

    def __init__(
        self,
        spec: DataSpec,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        losses: dict[str, Any],
        regularization: dict[str, Any],
        g_optimizer: Callable[..., torch.optim.Optimizer],
        d_optimizer: Callable[..., torch.optim.Optimizer],
        recognizer: Recognizer | Callable[..., Recognizer] | None = None,
        augment: str = ",".join(AUGMENTATIONS),
        ema_half_life_images: float = 10_000.0,
        ema_rampup: float | None = None,
        evaluation: dict[str, Any] | None = None,
        export: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        generator, discriminator, losses, regularization = (
            dict(to_plain(c)) for c in (generator, discriminator, losses, regularization)
        )
        evaluation = EVALUATION | dict(to_plain(evaluation or {}))
        resolution = square_resolution(spec)
        if recognizer is None:
            raise ValueError(
                "FPGANControl needs a recognizer for its identity loss and its metrics (FD, precision / recall and "
                "identity EER in its embedding space): recognizer=embedder recognizer.path=<fpgan_recognizer run>/"
                "checkpoints/best.ckpt."
            )
        self.save_hyperparameters({
            "generator": generator, "discriminator": discriminator, "losses": losses, "regularization": regularization,
            "augment": augment, "ema_half_life_images": ema_half_life_images, "ema_rampup": ema_rampup,
            "evaluation": evaluation, "resolution": resolution, "img_channels": spec.in_chans,
        })  # fmt: skip
        self.generator = FPGANGenerator(resolution=resolution, img_channels=spec.in_chans, **generator)
        self.discriminator = FPGANDiscriminator(resolution=resolution, img_channels=spec.in_chans, **discriminator)
        self.g_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.recognizer = build_recognizer(recognizer, spec)
        check_recognizer(self.recognizer, spec)
        self.exclude_frozen_parts()

        self.w_id, self.w_app = float(losses.get("w_id", 1.0)), float(losses.get("w_app", 5.0))
        if self.w_id < 0 or self.w_app < 0:
            raise ValueError(f"model.losses.w_id / w_app must be >= 0, got {self.w_id} / {self.w_app}.")
        self.blur_sigma, self.thumb_size = float(losses.get("blur_sigma", 3.0)), int(losses.get("thumb_size", 16))
        self.calibration = CALIBRATION | dict(losses.get("calibration") or {})
        for name in ("tau_id", "tau_app"):
            tau = losses.get(name)
            if tau is not None and (len(tau) != 2 or not tau[0] <= tau[1]):
                raise ValueError(f"model.losses.{name} must be [low, high] with low <= high (or null: calibrated), "
                                 f"got {tau}.")  # fmt: skip
            self.register_buffer(name, torch.tensor(tau if tau is not None else [math.nan, math.nan]))
        reg = regularization
        self.r1_gamma, self.r1_every = float(reg.get("r1_gamma", 1.0)), int(reg.get("r1_every", 16))
        self.pl_weight, self.pl_every = float(reg.get("pl_weight", 2.0)), int(reg.get("pl_every", 4))
        self.pl_batch_shrink, self.pl_decay = int(reg.get("pl_batch_shrink", 2)), float(reg.get("pl_decay", 0.01))
        if min(self.r1_every, self.pl_every, self.pl_batch_shrink) < 1:
            raise ValueError(f"model.regularization r1_every / pl_every / pl_batch_shrink must be >= 1, got {reg}.")
        diff_augment(torch.zeros(1, 1, 4, 4), augment)  # an unknown policy fails here, not in the first step
        self.augment, self.ema_half_life_images = augment, float(ema_half_life_images)
        self.ema_rampup = None if ema_rampup is None else float(ema_rampup)
        if self.ema_rampup is not None and self.ema_rampup <= 0:
            raise ValueError(f"model.ema_rampup must be > 0 (or null: none), got {ema_rampup}.")
        self.g_optimizer_factory, self.d_optimizer_factory = g_optimizer, d_optimizer
        self.evaluation = evaluation
        self.export = dict(to_plain(export or {}))
        unknown = set(self.export) - {"dir", "identities", "impressions", *ExportSettings.__dataclass_fields__}
        if unknown:
            raise ValueError(f"model.export has unknown keys {sorted(unknown)}.")
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.register_buffer("mean_path_length", torch.zeros(()))
        self.automatic_optimization = False  # a D and a G optimiser, each with its lazy regulariser step
        self._real: list[torch.Tensor] = []

    # -- training ---------------------------------------------------------------------------------------------------
    def generator_losses(self, fake: torch.Tensor, batch: PairBatch) -> dict[str, torch.Tensor]:
        """G's objective on a pair batch's images: ``adv_loss + w_id * id_loss + w_app * app_loss`` (weight-0 terms
        are not computed)."""
        parts = {"adv_loss": g_nonsaturating_loss(self.discriminator(diff_augment(fake, self.augment)))}
        loss, shown = parts["adv_loss"], clamp_straight_through(fake)
        if self.w_id > 0:
            d = identity_distances(self.recognizer, shown, batch.pairs)
            parts["id_loss"] = contrastive_hinge(d[batch.same_id], d[~batch.same_id], *self.tau_id)
            loss = loss + self.w_id * parts["id_loss"]
        if self.w_app > 0:
            d = appearance_distances(appearance_thumbnails(shown, self.blur_sigma, self.thumb_size), batch.pairs)
            parts["app_loss"] = contrastive_hinge(d[batch.same_app], d[~batch.same_app], *self.tau_app)
            loss = loss + self.w_app * parts["app_loss"]
        return parts | {"loss": loss}

    def random_fakes(self, n: int, return_w: bool = False) -> Any:
        """``n`` images of independent latents and fresh noise (``(images, w)`` with ``return_w``)."""
        g = self.generator
        z_id = torch.randn(n, g.identity_dim, device=self.device)
        return g(z_id, torch.randn(n, g.appearance_dim, device=self.device), return_w=return_w)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        g_opt, d_opt = self.optimizers()
        real = batch["image"]
        n = 4 * math.ceil(len(real) / 4)  # the generated batch: identity and appearance pairs
        step = int(self.iteration)
        logs: dict[str, torch.Tensor] = {}

        with torch.no_grad():
            fake = self.random_fakes(n)
        d = self.discriminator
        logs["d_loss"] = d_logistic_loss(d(diff_augment(real, self.augment)), d(diff_augment(fake, self.augment)))
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(logs["d_loss"])
        d_opt.step()
        if self.r1_gamma > 0 and step % self.r1_every == 0:
            leaf = real.detach().requires_grad_(True)
            logs["r1_loss"] = r1_penalty(d(diff_augment(leaf, self.augment)), leaf)
            d_opt.zero_grad(set_to_none=True)
            self.manual_backward(self.r1_gamma / 2 * self.r1_every * logs["r1_loss"])
            d_opt.step()

        d.requires_grad_(False)
        pairs = pair_batch(self.generator, n)
        fake, w = self.generator(pairs.z_id, pairs.z_app, pairs.noise, return_w=True)
        self.generator.update_w_avg(w)
        logs |= self.generator_losses(fake, pairs)
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(logs["loss"])
        g_opt.step()
        if self.pl_weight > 0 and step % self.pl_every == 0:
            fake, w = self.random_fakes(max(1, n // self.pl_batch_shrink), return_w=True)
            logs["pl_loss"], mean = path_length_penalty(fake, w, self.mean_path_length, self.pl_decay)
            self.mean_path_length.copy_(mean)
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(self.pl_weight * self.pl_every * logs["pl_loss"])
            g_opt.step()
        d.requires_grad_(True)

        seen = (int(self.iteration) + 1) * n
        ema_update(self.g_ema, self.generator, ema_beta(n, self.ema_half_life_images, seen, self.ema_rampup))
        self.iteration += 1
        logs = {k: v.detach() for k, v in logs.items()}
        shown = ("loss", "d_loss")
        self.log_dict({f"train/{k}": logs[k] for k in shown}, prog_bar=True, batch_size=len(real))
        self.log_dict({f"train/{k}": v for k, v in logs.items() if k not in shown}, batch_size=len(real))
        return logs

    def on_fit_start(self) -> None:
        """Calibrate the hinge thresholds left ``null`` (kept in the checkpoint, so a resumed run keeps them)."""
        unset = [name for name, weight in (("tau_id", self.w_id), ("tau_app", self.w_app))
                 if weight > 0 and getattr(self, name).isnan().any()]  # fmt: skip
        if not unset:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise ValueError(f"Calibrating model.losses {unset} needs the datamodule's training reals (train through "
                             "biobench-train), or give the thresholds as [low, high].")  # fmt: skip
        self.calibrate_thresholds(datamodule.train_eval_dataloader(), unset)

    @torch.no_grad()
    def calibrate_thresholds(self, loader: Any, names: Sequence[str]) -> None:
        """Set the thresholds ``names`` from all pairs of the first ``calibration.images`` training reals: same /
        different finger for ``tau_id``, every pair for ``tau_app`` (:func:`hinge_thresholds`)."""
        embeddings, thumbnails, fingers = [], [], []
        for batch in loader:
            images = batch["image"].to(self.device)
            embeddings.append(self.recognizer.embed(images))
            thumbnails.append(appearance_thumbnails(images, self.blur_sigma, self.thumb_size).flatten(1))
            fingers.append(batch["finger"].to(self.device))
            if sum(len(f) for f in fingers) >= self.calibration["images"]:
                break
        e, t, f = (torch.cat(x)[: self.calibration["images"]] for x in (embeddings, thumbnails, fingers))
        i, j = torch.triu_indices(len(e), len(e), offset=1, device=self.device)
        same, d_id, d_app = f[i] == f[j], (e[i] - e[j]).square().sum(dim=1), (t[i] - t[j]).square().mean(dim=1)
        pairs = {"tau_id": (d_id[same], d_id[~same], self.calibration["id_quantiles"]),
                 "tau_app": (d_app, d_app, self.calibration["app_quantiles"])}  # fmt: skip
        rows = []
        for name in names:
            low_from, high_from, quantiles = pairs[name]
            tau = getattr(self, name)
            tau.copy_(torch.tensor(hinge_thresholds(low_from, high_from, *quantiles)))
            rows.append({"threshold": name, "low": float(tau[0]), "high": float(tau[1]), "images": len(e),
                         "low_pairs": len(low_from), "high_pairs": len(high_from)})  # fmt: skip
            if tau[0] > tau[1]:
                log.warning("Calibrated %s = %s has low > high: the Recognizer barely separates the real pairs "
                            "(train it longer, or give the thresholds).", name, tau.tolist())  # fmt: skip
        log.info("Calibrated hinge thresholds: %s", rows)
        save_table(self.trainer, "hinge_thresholds", rows)

    def configure_optimizers(self) -> Any:
        g_opt = self.g_optimizer_factory(params=self.generator.parameters())
        d_opt = self.d_optimizer_factory(params=self.discriminator.parameters())
        return [lazy_regularization(g_opt, self.pl_every if self.pl_weight > 0 else 0),
                lazy_regularization(d_opt, self.r1_every if self.r1_gamma > 0 else 0)]  # fmt: skip

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Name the system (an export checks it) and record the data the GAN was trained on."""
        checkpoint["system"] = FPGAN_SYSTEM
        record_training_data(checkpoint, self.trainer)

    # -- evaluation -------------------------------------------------------------------------------------------------
    def sample_set(self, stage: str) -> SampleSet:
        """The fixed ``evaluation[stage]`` samples (``identities x impressions``); the grid's and the appearance
        test's (``evaluation.test``'s size) share appearances: impression ``j`` of every identity, one ``z_app``."""
        identities, impressions = self.evaluation["test" if stage == "appearance" else stage]
        seed = self.evaluation["seed"] + STAGE_SEEDS[stage]
        shared = stage in ("grid", "appearance")
        return SampleSet.draw(self.g_ema, identities, impressions, seed, shared_appearance=shared)

    def over_samples(self, samples: SampleSet, features: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``features`` of g_ema's ``samples`` (clamped to [-1, 1]), generated in chunks of ``batch_size``."""
        rows = torch.arange(len(samples), device=self.device).split(self.evaluation["batch_size"])
        return torch.cat([features(samples.images(self.g_ema, r).clamp(-1, 1)) for r in rows])

    def sample_embeddings(self, samples: SampleSet) -> torch.Tensor:
        """Recognizer embeddings of g_ema's ``samples``."""
        return self.over_samples(samples, self.recognizer.embed)

    def on_validation_epoch_start(self) -> None:
        self._real = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._real.append(self.recognizer.embed(batch["image"]))

    def on_validation_epoch_end(self) -> None:
        samples = self.sample_set("val")
        fake = self.sample_embeddings(samples)
        fd = frechet_distance(torch.cat(self._real), fake)
        eer = identity_verification(fake, samples.identity, samples.impression)["id_eer"]
        self.log("val/fd", fd.float(), prog_bar=True)
        self.log("val/id_eer", torch.tensor(eer, dtype=torch.float32))
        self._real = []

    def on_test_epoch_start(self) -> None:
        self._real = []

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._real.append(self.recognizer.embed(batch["image"]))

    def on_test_epoch_end(self) -> None:
        samples = self.sample_set("test")
        fake, real = self.sample_embeddings(samples), torch.cat(self._real)
        results = identity_verification(fake, samples.identity, samples.impression)
        results["fd"] = float(frechet_distance(real, fake))
        results["precision"], results["recall"] = knn_precision_recall(real, fake, self.evaluation["knn"])
        results["app_ratio"] = self.appearance_ratio()
        self.log_dict({f"test/{k}": torch.tensor(v, dtype=torch.float32) for k, v in results.items()})
        self._real = []
        rows, cols = self.evaluation["grid"]
        grid = self.sample_set("grid")
        images = grid.images(self.g_ema, torch.arange(len(grid), device=self.device))
        save_figure(self.trainer, "samples", sample_grid_figure(images, rows, cols))

    def appearance_ratio(self) -> float:
        """How much ``z_app`` alone fixes the appearance: :func:`shared_factor_ratio` of the appearance loss's blurred
        thumbnails, pairs of other identities with one ``z_app`` against pairs sharing nothing (0 = disentangled)."""
        samples = self.sample_set("appearance")
        thumbnails = self.over_samples(samples, lambda x: appearance_thumbnails(x, self.blur_sigma, self.thumb_size))
        return shared_factor_ratio(thumbnails, torch.as_tensor(samples.impression), torch.as_tensor(samples.identity))

    def on_test_end(self) -> None:
        """Export a synthetic set of g_ema when ``export.dir`` is set, after the metrics; ``export.json`` names the
        checkpoint tested, or the run (biobench-eval: its config.yaml names the checkpoint)."""
        settings = dict(self.export)
        out = settings.pop("dir", None)
        if not out:
            return
        identities, impressions = int(settings.pop("identities", 100)), int(settings.pop("impressions", 8))
        source = self.trainer.ckpt_path or self.trainer.default_root_dir
        export_generated(self.g_ema, out, identities, impressions, ExportSettings(**settings),
                         self.evaluation["batch_size"], source=str(source))  # fmt: skip
