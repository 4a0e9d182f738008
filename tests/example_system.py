"""A small unlabelled system built only on the public contracts (docs/architecture.md, "adding a system").

A convolutional autoencoder with a main optimiser (reconstruction) and an auxiliary one (a running estimate of the
latent mean, the way CompressAI trains its entropy bottleneck's quantiles apart from the rate-distortion loss), so
it needs manual optimisation. It declares one data argument (``in_chans``), selects on ``val/loss`` (min) and
reports ``test/psnr``. The tests train, resume, evaluate, sweep and summarise it through the unchanged entrypoints.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from biobench.models.base import System


class ConvAutoencoder(System):
    data_args = ("in_chans",)
    metrics = ("train/loss", "train/aux_loss", "val/loss", "test/loss", "test/psnr")

    def __init__(self, in_chans: int, width: int = 8, lr: float = 1e-2, aux_lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False  # two optimisers, stepped by hand
        self.encoder = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, in_chans, 3, padding=1),
        )
        self.latent_mean = nn.Parameter(torch.zeros(width))  # trained by the auxiliary optimiser only

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return torch.sigmoid(self.decoder(z)), z

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        opt, aux_opt = self.optimizers()
        recon, z = self(batch["image"])
        loss = F.mse_loss(recon, batch["image"])
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        aux_loss = F.mse_loss(self.latent_mean, z.detach().mean(dim=(0, 2, 3)))
        aux_opt.zero_grad()
        self.manual_backward(aux_loss)
        aux_opt.step()
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/aux_loss", aux_loss, on_step=False, on_epoch=True)
        return {"loss": loss.detach(), "aux_loss": aux_loss.detach()}

    def on_train_epoch_end(self) -> None:
        self.lr_schedulers().step()  # manual optimisation: schedulers are stepped by the system

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        recon, _ = self(batch["image"])
        mse = F.mse_loss(recon, batch["image"])
        self.log(f"{stage}/loss", mse, prog_bar=True)
        if stage == "test":
            self.log("test/psnr", -10 * torch.log10(mse))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> Any:
        main = [p for name, p in self.named_parameters() if name != "latent_mean"]
        opt = torch.optim.Adam(main, lr=self.hparams.lr)
        aux_opt = torch.optim.SGD([self.latent_mean], lr=self.hparams.aux_lr)
        return [opt, aux_opt], [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.trainer.max_epochs)]
