"""IPR codec: learned image compression with an identity-preserving loss ("Identity Preserving Loss for Learned Image
Compression", Xiao et al., CVPRW 2022, arXiv 2204.10869).

A CompressAI architecture (:func:`biobench.models.nets.compression.build_codec`) trains on
``bpp + lmbda * D + beta * IPR`` (:mod:`biobench.models.codec_losses`), IPR through a frozen Recognizer so that the
reconstruction keeps what the recognizer sees. Manual optimisation: the main optimiser over the codec's transforms
and entropy-model densities (gradients clipped inside the step), the auxiliary one over the entropy bottlenecks'
quantiles (CompressAI's aux loss); the Recognizer is in neither and is not saved with the codec.

Validation scores the codec's differentiable forward pass (estimated bpp). Test compresses every image to a real
bitstream (:func:`biobench.models.nets.compression.compress_images`, after ``update(force=True)``), decodes it, and
reports the real ``test/bpp`` (8 * bytes / pixels of the unpadded image), PSNR, MS-SSIM, the IPR distance, the gap
between the decoded and the forward pass's reconstruction (``test/decode_error``: 0 for non-autoregressive
priors), and the recognition metric of the decoded images with the evaluator (the recognizer, or another one: the
paper's unseen-recognizer test), next to the same metric on the uncompressed images (``test/ref_*``):

- ``verification`` (fingerprints, faces): decoded probes against uncompressed galleries, TAR@FAR, EER, rank-1;
- ``classification`` (a classifier's logits as evaluator, ``recognizer=classifier recognizer.output=logits``):
  accuracy.

``save_decoded=True`` also writes the decoded test images and the originals as identity folders
(``artifacts/decoded/``, ``artifacts/original/``; :mod:`biobench.metrics.compression.decoded`), for scorers of images
such as Bozorth3 (single process: the folders hold what this process tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models.utils import update_registered_buffers
from matplotlib.figure import Figure
from torch import nn
from torchmetrics import MeanMetric

from biobench.contracts import DataSpec, Recognizer
from biobench.metrics.compression.decoded import to_uint8, write_identity_folder
from biobench.metrics.compression.quality import psnr
from biobench.metrics.verification import VerificationMetrics, far_name
from biobench.models.base import System
from biobench.models.codec_losses import (
    IPR_DISTANCES,
    MS_SSIM_MIN_SIDE,
    RateDistortionLoss,
    identity_distance,
    ms_ssim_fitted,
)
from biobench.models.nets.compression import (
    build_codec,
    compress_images,
    crop_padding,
    decompress_images,
    pad_to_stride,
)
from biobench.models.schedules import lightning_scheduler
from biobench.recognizers import build_recognizer
from biobench.utils.artifacts import artifacts_dir, save_figure

FARS = (1e-2, 1e-3, 1e-4)
_VERIFY = (*(far_name(f) for f in FARS), "eer", "rank1")
_PAIRS = ("genuine_pairs", "impostor_pairs")  # logged once: the decoded and the reference protocol share the pairs
_CDF_BUFFERS = {EntropyBottleneck: ["_quantized_cdf", "_offset", "_cdf_length"],
                GaussianConditional: ["_quantized_cdf", "_offset", "_cdf_length", "scale_table"]}  # fmt: skip


def reconstruction_figure(x: torch.Tensor, x_hat: torch.Tensor, bpp: torch.Tensor) -> Figure:
    """Originals (top row) over their decoded bitstreams (bottom row, titled with the real bpp)."""
    n = len(x)
    fig = Figure(figsize=(2 * n, 4.3), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        for row, image in enumerate((x[i], x_hat[i])):
            ax = axes[row, i]
            shown = image.permute(1, 2, 0).clamp(0, 1).numpy()
            ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1)
            ax.set_axis_off()
        axes[1, i].set_title(f"{float(bpp[i]):.3f} bpp", fontsize=9)
    axes[0, 0].set_title("original", fontsize=9)
    return fig


class IPRCodec(System):
    """Learned codec trained with rate, distortion and an identity-preserving term (module docstring).

    Args:
        spec: the served images' :class:`DataSpec` (the codec works on their [0, 1] pixels).
        codec: ``{name, quality, N, M, pretrained_path}`` (:func:`build_codec`).
        loss: ``{lmbda, distortion: mse | ms-ssim}`` (:class:`RateDistortionLoss`).
        ipr: ``{weight, distance: cosine | l2}``; weight 0 trains rate-distortion only (the beta = 0 twin).
        recognizer: the frozen Recognizer of the IPR loss (a factory taking ``spec=``); required when weight > 0.
        evaluator: the Recognizer of the test's recognition metric; ``None`` = ``recognizer``.
        evaluation: ``verification`` | ``classification`` | ``none``.
        optimizer, aux_optimizer: partials (``params`` missing); scheduler: optional partial of the main optimiser.
        clip_max_norm: gradient-norm clipping of the main step (0 = off).
        impostors: impostor pairs of the verification (``all`` or ``fvc``).
    """

    data_args = ("spec",)
    metrics = (
        "train/loss", "train/bpp", "train/mse", "train/aux_loss",
        "val/loss", "val/bpp", "val/psnr", "val/ipr",
        "test/bpp", "test/psnr", "test/decode_error",
    )  # fmt: skip
    # logged besides, by model.evaluation (test/ms_ssim too where images exceed 32 px, test/ipr with a recognizer,
    # train/ipr when beta > 0)
    evaluation_metrics: ClassVar[dict[str, tuple[str, ...]]] = {
        "verification": tuple(f"test/{m}" for m in (*_VERIFY, *_PAIRS, *(f"ref_{v}" for v in _VERIFY))),
        "classification": ("test/acc", "test/ref_acc"),
        "none": (),
    }
    checked_hparams = ("codec", "in_chans")
    checkpoint_excluded_prefixes = ("recognizer.", "evaluator.")
    shape_flexible_prefixes = ("codec.entropy_bottleneck._", "codec.gaussian_conditional.")

    def __init__(
        self,
        spec: DataSpec,
        codec: dict[str, Any],
        loss: dict[str, Any],
        ipr: dict[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        aux_optimizer: Callable[..., torch.optim.Optimizer],
        recognizer: Recognizer | Callable[..., Recognizer] | None = None,
        evaluator: Recognizer | Callable[..., Recognizer] | None = None,
        evaluation: str = "verification",
        scheduler: Callable[..., Any] | None = None,
        clip_max_norm: float = 1.0,
        impostors: str = "all",
        save_decoded: bool = False,
    ) -> None:
        super().__init__()
        codec, loss, ipr = dict(codec), dict(loss), dict(ipr)
        if evaluation not in self.evaluation_metrics:
            raise ValueError(f"model.evaluation='{evaluation}' is not one of {tuple(self.evaluation_metrics)}.")
        self.ipr_weight = float(ipr.get("weight", 0.0))
        if self.ipr_weight < 0:
            raise ValueError(f"model.ipr.weight must be >= 0, got {self.ipr_weight}.")
        if recognizer is None and (self.ipr_weight > 0 or (evaluation != "none" and evaluator is None)):
            raise ValueError(
                "IPRCodec needs a recognizer for the IPR loss (model.ipr.weight > 0) and for the recognition metric "
                f"(model.evaluation='{evaluation}'): choose one, e.g. recognizer=embedder recognizer.path=<ckpt>."
            )
        hparams = {"codec": codec, "loss": loss, "ipr": ipr, "in_chans": spec.in_chans, "evaluation": evaluation,
                   "clip_max_norm": clip_max_norm, "impostors": impostors}  # fmt: skip
        self.save_hyperparameters(hparams)
        self.spec = spec
        self.codec = build_codec(in_chans=spec.in_chans, **codec)
        self.rd_loss = RateDistortionLoss(**loss)
        self.recognizer = build_recognizer(recognizer, spec) if recognizer is not None else None
        self.evaluator = build_recognizer(evaluator, spec) if evaluator is not None else None
        self.ipr_distance = ipr.get("distance", "cosine")
        if self.ipr_distance not in IPR_DISTANCES:
            raise ValueError(f"model.ipr.distance='{self.ipr_distance}' is not one of {IPR_DISTANCES}.")
        self.exclude_frozen_parts()
        self.evaluation, self.clip_max_norm = evaluation, float(clip_max_norm)
        self.optimizer_factory, self.aux_optimizer_factory, self.scheduler_factory = optimizer, aux_optimizer, scheduler
        self.automatic_optimization = False  # two optimisers (CompressAI: main + auxiliary), stepped by hand
        self.test_verification = VerificationMetrics(FARS, impostors=impostors)
        self.ref_verification = VerificationMetrics(FARS, impostors=impostors)
        self.test_means = nn.ModuleDict({k: MeanMetric() for k in ("bpp", "psnr", "ms_ssim", "ipr", "acc", "ref_acc")})
        self._decode_error = 0.0
        self._shown: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.save_decoded = bool(save_decoded)
        self._saved: dict[str, list] = {}

    # -- the pieces -------------------------------------------------------------------------------------------------
    @property
    def eval_recognizer(self) -> Recognizer | None:
        return self.evaluator if self.evaluator is not None else self.recognizer

    def reconstruct(self, served: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(x_hat in [0, 1] at the served size, codec output)`` of served images (forward pass: noise in training,
        rounding in eval)."""
        padded, pad = pad_to_stride(self.spec.to_unit(served).clamp(0, 1))
        out = self.codec(padded)
        return crop_padding(out["x_hat"], pad), out

    def objective(self, served: torch.Tensor) -> dict[str, torch.Tensor]:
        """``loss = bpp + lmbda * D + beta * IPR`` of a batch and its parts; ``x_hat`` for the metrics."""
        x = self.spec.to_unit(served).clamp(0, 1)
        x_hat, out = self.reconstruct(served)
        parts = self.rd_loss({"x_hat": x_hat, "likelihoods": out["likelihoods"]}, x)
        parts["x_hat"] = x_hat.detach().clamp(0, 1)
        # the IPR term: in the loss when beta > 0; otherwise measured only outside training (the twin's diagnostic)
        if self.recognizer is not None and (self.ipr_weight > 0 or not torch.is_grad_enabled()):
            parts["ipr"] = identity_distance(self.recognizer, self.spec.from_unit(x_hat), served, self.ipr_distance)
            parts["loss"] = parts["loss"] + self.ipr_weight * parts["ipr"]
        return parts

    # -- training ---------------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        opt, aux_opt = self.optimizers()
        parts = self.objective(batch["image"])
        if not torch.isfinite(parts["loss"]):
            raise FloatingPointError(
                f"IPR codec loss is {float(parts['loss'])} at step {self.global_step} (bpp {float(parts['bpp'])}, "
                f"mse {float(parts['mse'])}): training diverged; lower model.optimizer.lr or model.loss.lmbda."
            )
        opt.zero_grad()
        self.manual_backward(parts["loss"])
        if self.clip_max_norm > 0:
            self.clip_gradients(opt, gradient_clip_val=self.clip_max_norm, gradient_clip_algorithm="norm")
        opt.step()
        aux_loss = self.codec.aux_loss()
        aux_opt.zero_grad()
        self.manual_backward(aux_loss)
        aux_opt.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        n = len(batch["image"])
        for key in ("loss", "bpp", "mse", "ipr"):
            if key in parts:
                self.log(f"train/{key}", parts[key].detach(), batch_size=n, prog_bar=key in ("loss", "bpp"))
        self.log("train/aux_loss", aux_loss.detach(), batch_size=n)
        return parts["loss"].detach()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        parts = self.objective(batch["image"])
        n = len(batch["image"])
        self.log("val/loss", parts["loss"], batch_size=n, prog_bar=True, sync_dist=True)
        self.log("val/bpp", parts["bpp"], batch_size=n, prog_bar=True, sync_dist=True)
        self.log("val/psnr", psnr(parts["x_hat"], self.spec.to_unit(batch["image"]).clamp(0, 1)).mean(),
                 batch_size=n, sync_dist=True)  # fmt: skip
        if "ipr" in parts:
            self.log("val/ipr", parts["ipr"], batch_size=n, sync_dist=True)

    def configure_optimizers(self) -> Any:
        quantiles = [p for name, p in self.codec.named_parameters() if name.endswith("quantiles")]
        main = [p for name, p in self.codec.named_parameters() if not name.endswith("quantiles")]
        opt = self.optimizer_factory(params=main)
        aux = self.aux_optimizer_factory(params=quantiles)
        if self.scheduler_factory is None:
            return [opt, aux]
        schedule = lightning_scheduler(self.scheduler_factory, opt, self.trainer.estimated_stepping_batches)
        return [opt, aux], [schedule]

    # -- real bitstreams --------------------------------------------------------------------------------------------
    def on_test_start(self) -> None:
        self.codec.update(force=True)
        self._decode_error, self._shown = 0.0, None
        self._saved = {k: [] for k in ("decoded", "original", "identity", "impression")}

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        served = batch["image"]
        x = self.spec.to_unit(served).clamp(0, 1)
        bitstreams = compress_images(self.codec, x)
        x_hat = decompress_images(self.codec, bitstreams, device=x.device)
        forward_hat, _ = self.reconstruct(served)
        self._decode_error = max(self._decode_error, float((x_hat - forward_hat.clamp(0, 1)).abs().max()))
        pixels = x.shape[-2] * x.shape[-1]
        bpp = torch.tensor([8.0 * len(b) / pixels for b in bitstreams], device=x.device)
        self.test_means["bpp"].update(bpp)
        self.test_means["psnr"].update(psnr(x_hat, x))
        if min(x.shape[-2:]) > MS_SSIM_MIN_SIDE:  # CIFAR's 32 px are too small for five scales: no MS-SSIM
            self.test_means["ms_ssim"].update(ms_ssim_fitted(x_hat, x))
        if self._shown is None:
            self._shown = (x[:6].cpu(), x_hat[:6].cpu(), bpp[:6].cpu())
        if self.save_decoded:
            self.keep_images(batch, x, x_hat)
        recognizer = self.eval_recognizer
        if recognizer is None:
            return
        decoded = recognizer.embed(self.spec.from_unit(x_hat))
        original = recognizer.embed(served)
        self.test_means["ipr"].update(1.0 - (decoded * original).sum(1))
        if self.evaluation == "verification":
            identity = batch.get("identity", batch.get("finger"))
            if identity is None or "impression" not in batch or "index" not in batch:
                raise KeyError(
                    "model.evaluation=verification needs samples labelled by identity (identity or finger, "
                    "impression, index): use data=fingerprints data.task=finger or data=faces, or "
                    "model.evaluation=classification / none."
                )
            labels = [identity, batch["impression"], batch["index"]]
            self.test_verification.update(decoded, *labels, gallery=original)
            self.ref_verification.update(original, *labels)
        elif self.evaluation == "classification":
            if "label" not in batch:
                raise KeyError("model.evaluation=classification needs labelled samples ('label').")
            self.test_means["acc"].update((decoded.argmax(1) == batch["label"]).float())
            self.test_means["ref_acc"].update((original.argmax(1) == batch["label"]).float())

    def on_test_epoch_end(self) -> None:
        results = {f"test/{k}": m.compute() for k, m in self.test_means.items() if m.update_count}
        results["test/decode_error"] = torch.tensor(self._decode_error)
        if self.evaluation == "verification" and self.eval_recognizer is not None:
            for prefix, metric in (("test/", self.test_verification), ("test/ref_", self.ref_verification)):
                keep = (*_VERIFY, *_PAIRS) if prefix == "test/" else _VERIFY
                results.update({f"{prefix}{k}": v for k, v in metric.compute().items() if k in keep})
                metric.reset()
        self.log_dict({k: v.float() for k, v in results.items()}, sync_dist=True)
        for m in self.test_means.values():
            m.reset()
        if self._shown is not None:
            save_figure(self.trainer, "reconstructions", reconstruction_figure(*self._shown))
        if self.save_decoded:
            root = artifacts_dir(self.trainer)
            labels = (self._saved["identity"], self._saved["impression"])
            for name in ("decoded", "original"):
                write_identity_folder(root / name, self._saved[name], *labels)
            self._saved = {}

    def keep_images(self, batch: dict[str, torch.Tensor], x: torch.Tensor, x_hat: torch.Tensor) -> None:
        """Keep a test batch's decoded and original images (uint8) with identity folder labels: identity and
        impression (verification data) or class and sample index (classification)."""
        identity = batch.get("identity", batch.get("finger"))
        second = batch.get("impression") if identity is not None else batch.get("index")
        identity = identity if identity is not None else batch.get("label")
        if identity is None or second is None:
            raise KeyError("model.save_decoded needs samples labelled by identity (identity or finger) and impression, "
                           "or by label and index.")  # fmt: skip
        self._saved["decoded"] += to_uint8(x_hat)
        self._saved["original"] += to_uint8(x)
        self._saved["identity"] += identity.tolist()
        self._saved["impression"] += second.tolist()

    # -- checkpoints ------------------------------------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Resize the entropy models' CDF buffers to the stored ones (after ``update()`` they differ from a fresh
        model's), then load."""
        for name, module in self.codec.named_modules():
            for kind, buffers in _CDF_BUFFERS.items():
                if isinstance(module, kind) and any(k.startswith(f"codec.{name}.") for k in state_dict):
                    update_registered_buffers(module, f"codec.{name}", buffers, state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
