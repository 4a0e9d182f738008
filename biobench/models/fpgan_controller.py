"""FPGAN-Control, phase 2 (GAN-Control's controllers): ask the generator for an appearance by its attributes.

A trained FPGAN-Control generator (its ``g_ema``, frozen) and frozen attribute predictors (biobench classifiers
trained on the GAN's data with ``data.task=<attribute>``, e.g. ``condition``: dry / normal / wet, ``device``) label
generated samples: latents from a seeded generator, images, each attribute's predicted value (argmax of the
predictor's logits). A controller MLP (:class:`AttributeController`: the one-hot attributes -> ``hidden`` x
``layers`` with leaky ReLU -> the appearance part of ``w``) is fitted with L1 to the true ``w_app`` of those samples
(GAN-Control: a 4-layer MLP, L1, generated samples labelled by predictors). Controlled generation is then
``w = [mapping_id(z_id), controller(attributes)]``.

Data: :class:`~biobench.data.latents.LatentDataModule` serves sample numbers; each split's samples are generated and
labelled once, in chunks with a progress bar, at the start of fitting (train, val) or testing, and cached by content
(the GAN and predictor files, the seed, the count) under ``cache_dir``.

Metrics: ``train/loss`` / ``val/l1`` (the L1 to the true ``w_app``; monitor); ``test/control_acc``: for every value
of every attribute, ``evaluation.per_value`` new identities are generated with that value requested (the other
attributes drawn from their predicted frequencies among the training samples) and the predictor checks the
attribute; the mean over values, per attribute (``test/control_acc_<attribute>``) and over attributes. Next to it
``test/chance_acc``: what asking gets without a controller, the mean over attributes of 1 / values (a random
appearance shows value v with its frequency f_v; averaged over the values asked for, that is 1 / values whatever f).
Artifact ``controlled.png``: rows = identities, columns = requested values.

The generator and predictors are rebuilt from their files (not saved with the controller); the checkpoint records
the GAN file's content hash, so a controlled export refuses another generator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torchmetrics import MeanMetric
from tqdm.auto import tqdm

from biobench.contracts import DataSpec
from biobench.data.fingerprints.fields import CATEGORIES
from biobench.models.base import System
from biobench.models.fpgan_export import load_generator
from biobench.models.nets.fpgan_generator import FPGANGenerator
from biobench.recognizers import FrozenRecognizer, classifier_recognizer
from biobench.utils.artifacts import save_figure
from biobench.utils.cache import cached_arrays
from biobench.utils.checkpoint import read_system_checkpoint
from biobench.utils.config import to_plain
from biobench.utils.hashing import content_hash

log = logging.getLogger(__name__)

CONTROLLER_SYSTEM = "fpgan_controller"  # the checkpoint's ``system`` entry
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}  # offsets of ``seed``
LABEL_VERSION = 1  # bumped when the labelled arrays change


class AttributeController(nn.Module):
    """``attributes -> w_app``: one-hot per attribute (``values``: attribute -> its value names, in order),
    concatenated, through ``layers`` hidden layers (leaky ReLU 0.2) to ``out_dim``. Deterministic."""

    def __init__(self, values: Mapping[str, Sequence[str]], out_dim: int, hidden: int = 512, layers: int = 3) -> None:
        super().__init__()
        if not values or layers < 1 or hidden < 1:
            raise ValueError(f"AttributeController needs >= 1 attribute, layer and unit, got {dict(values)}, "
                             f"layers={layers}, hidden={hidden}.")  # fmt: skip
        self.values = {k: tuple(v) for k, v in values.items()}
        sizes = [sum(len(v) for v in self.values.values()), *([hidden] * layers)]
        blocks: list[nn.Module] = []
        for a, b in pairwise(sizes):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.mlp = nn.Sequential(*blocks, nn.Linear(hidden, out_dim))

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """Value indices ``[N, attributes]`` (in ``values`` order) as the concatenated one-hot input."""
        return torch.cat([F.one_hot(labels[:, k], len(v)).float() for k, v in enumerate(self.values.values())], 1)

    def indices(self, requests: Sequence[Mapping[str, str]]) -> torch.Tensor:
        """Requests by name (``{"condition": "wet", "device": "optical"}``, every attribute given) as value indices
        ``[N, attributes]``; an attribute or value the controller was not trained on is an error naming them."""
        rows = []
        for request in requests:
            unknown = set(request) - set(self.values)
            missing = set(self.values) - set(request)
            if unknown or missing:
                raise ValueError(f"Appearance request {dict(request)}: the controller was trained on the attributes "
                                 f"{sorted(self.values)} and needs each of them once (unknown {sorted(unknown)}, "
                                 f"missing {sorted(missing)}).")  # fmt: skip
            row = []
            for name, names in self.values.items():
                if request[name] not in names:
                    raise ValueError(f"Appearance request {dict(request)}: '{request[name]}' is not a value of "
                                     f"'{name}' the controller knows ({', '.join(names)}).")  # fmt: skip
                row.append(names.index(request[name]))
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.one_hot(labels.to(self.mlp[0].weight.device)))


def parse_request(text: str) -> dict[str, str]:
    """``"condition=wet,device=capacitive"`` as ``{"condition": "wet", "device": "capacitive"}``."""
    pairs = [part.partition("=") for part in text.split(",") if part]
    if not pairs or any(not k or not v for k, _, v in pairs):
        raise ValueError(f"Appearance request '{text}': expected attribute=value[,attribute=value...].")
    return {k.strip(): v.strip() for k, _, v in pairs}


def load_controller(path: str | Path, gan: str | Path | None = None) -> AttributeController:
    """The controller of an ``FPGANController`` checkpoint (eval mode); with ``gan``, that generator's file must be
    the one the controller was fitted for (its content hash), else an error naming both."""
    ckpt = read_system_checkpoint(
        path,
        CONTROLLER_SYSTEM,
        "an FPGAN-Control controller's",
        "give a model=fpgan_controller run's checkpoint (experiment=fpgan_controller).",
    )
    hp = ckpt["hyper_parameters"]
    if gan is not None and file_hash(gan) != hp["gan_hash"]:
        raise ValueError(f"Controller '{path}' was fitted for the generator '{hp['gan']}', not for '{gan}' (their "
                         "contents differ): fit a controller for this generator.")  # fmt: skip
    controller = AttributeController(hp["values"], hp["appearance_w_dim"], **hp["controller"])
    state = {k.removeprefix("controller."): v for k, v in ckpt["state_dict"].items() if k.startswith("controller.")}
    controller.load_state_dict(state)
    return controller.eval().requires_grad_(False)


def controlled_w(g: FPGANGenerator, z_id: torch.Tensor, w_app: torch.Tensor) -> torch.Tensor:
    """``w = [mapping_id(z_id), w_app]``: an identity's latent with a requested appearance."""
    return torch.cat([g.mapping_id(z_id), w_app.to(z_id.device)], dim=1)


def file_hash(path: str | Path) -> str:
    return content_hash(Path(path).read_bytes())


def content_hash_int(*parts: Any) -> int:
    """A 63-bit integer seed from ``parts`` (stable across runs and platforms)."""
    return int(content_hash(*parts)[:15], 16)


class FPGANController(System):
    """GAN-Control's phase-2 controller for FPGAN-Control (module docstring).

    Args:
        spec: the generated images' :class:`DataSpec` (LatentDataModule: resolution, channels, [-1, 1]).
        gan: an FPGAN-Control checkpoint (its g_ema is the generator).
        attributes: ``{attribute: classifier checkpoint}`` trained with ``data.task=<attribute>`` at the GAN's size.
        controller: ``{hidden, layers}`` of :class:`AttributeController`.
        optimizer: a partial (``params`` missing).
        evaluation: ``{per_value, grid_rows, batch_size}``.
        seed: of every split's latents (offset per split).
        cache_dir: where labelled samples are cached (``None``: not cached).
    """

    data_args = ("spec",)
    metrics = ("train/loss", "val/l1", "test/l1", "test/control_acc", "test/chance_acc")
    checked_hparams = ("values", "controller", "appearance_w_dim")  # not the files: paths may be spelt otherwise
    checkpoint_excluded_prefixes = ("generator.", "predictors.")

    def __init__(
        self,
        spec: DataSpec,
        gan: str,
        attributes: Mapping[str, str],
        controller: Mapping[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        evaluation: Mapping[str, Any] | None = None,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        attributes, controller = dict(to_plain(attributes)), dict(to_plain(controller))
        unknown = sorted(set(attributes) - set(CATEGORIES))
        if not attributes or unknown:
            raise ValueError(
                f"model.attributes must name predictors of {sorted(CATEGORIES)}, got {sorted(attributes)}."
            )
        self.generator = load_generator(gan)
        if (self.generator.resolution, self.generator.img_channels) != (spec.image_size[0], spec.in_chans):
            raise ValueError(f"GAN checkpoint '{gan}' generates {self.generator.resolution} px x "
                             f"{self.generator.img_channels} channels, the data is set for {spec.image_size} x "
                             f"{spec.in_chans}: set data.resolution / data.channels to the GAN's.")  # fmt: skip
        self.predictors = nn.ModuleDict({a: self._predictor(a, p, spec) for a, p in attributes.items()})
        self.exclude_frozen_parts()
        self.save_hyperparameters({
            "gan": str(gan), "gan_hash": file_hash(gan), "attributes": attributes, "controller": controller,
            "appearance_w_dim": self.generator.w_dim - self.generator.identity_w_dim, "seed": int(seed),
            "values": {a: list(CATEGORIES[a]) for a in attributes},
        })  # fmt: skip
        self.controller = AttributeController({a: CATEGORIES[a] for a in attributes},
                                              self.hparams["appearance_w_dim"], **controller)  # fmt: skip
        self.optimizer_factory = optimizer
        self.evaluation = {"per_value": 32, "grid_rows": 4, "batch_size": 64} | dict(to_plain(evaluation or {}))
        self.seed, self.cache_dir = int(seed), None if cache_dir is None else Path(cache_dir)
        self.predictor_hashes = {a: file_hash(p) for a, p in attributes.items()}
        self.samples: dict[str, dict[str, torch.Tensor]] = {}
        self.val_l1, self.test_l1 = MeanMetric(), MeanMetric()

    @staticmethod
    def _predictor(attribute: str, path: str, spec: DataSpec) -> FrozenRecognizer:
        """The classifier checkpoint ``path`` as a predictor of ``attribute`` (its logits; class count checked)."""
        predictor = classifier_recognizer(path, spec, output="logits")
        with torch.no_grad():
            classes = predictor.embed(torch.zeros(1, spec.in_chans, *spec.image_size)).shape[1]
        values = CATEGORIES[attribute]
        if classes != len(values):
            raise ValueError(f"Predictor '{path}' of '{attribute}' has {classes} classes, '{attribute}' has "
                             f"{len(values)} ({', '.join(values)}): train it with data.task={attribute}.")  # fmt: skip
        return predictor

    # -- labelled samples -------------------------------------------------------------------------------------------
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Each attribute's predicted value index ``[N, attributes]`` of generated images (clamped to [-1, 1])."""
        shown = images.clamp(-1, 1)
        return torch.stack([p.embed(shown).argmax(1) for p in self.predictors.values()], dim=1)

    @torch.no_grad()
    def label_samples(self, split: str, n: int) -> dict[str, torch.Tensor]:
        """``n`` generated samples of ``split``: their ``w_app`` and predicted ``labels`` (cached by content)."""
        g, chunk = self.generator, int(self.evaluation["batch_size"])

        def compute() -> dict[str, np.ndarray]:
            w_app, labels = [], []
            for start in tqdm(range(0, n, chunk), desc=f"labelling {split} samples", leave=False):
                rng = torch.Generator().manual_seed(content_hash_int(self.seed, SPLIT_SEEDS[split], start))
                size = min(chunk, n - start)
                z_id, z_app = torch.randn(size, g.identity_dim, generator=rng), torch.randn(size, g.appearance_dim,
                                                                                             generator=rng)  # fmt: skip
                noise = g.make_noise(size, rng)
                w = g.mapping(z_id.to(self.device), z_app.to(self.device))
                images = g.synthesis(w, noise)
                w_app.append(g.split_w(w)[1].cpu().numpy())
                labels.append(self.predict(images).cpu().numpy())
            return {"w_app": np.concatenate(w_app), "labels": np.concatenate(labels)}

        key = (LABEL_VERSION, self.hparams["gan_hash"], self.predictor_hashes, self.seed, split, chunk)
        arrays, _ = cached_arrays(self.cache_dir, "fpgan_controller", key, content_hash(n), n, compute)
        return {k: torch.as_tensor(v, device=self.device) for k, v in arrays.items()}

    def label_split(self, split: str) -> None:
        """Label ``split``'s samples (as many as its loader serves) unless they already are."""
        if split not in self.samples:
            loader = getattr(self.trainer.datamodule, f"{split}_dataloader")()
            self.samples[split] = self.label_samples(split, len(loader.dataset))

    def on_fit_start(self) -> None:
        self.label_split("train")
        self.label_split("val")

    def on_test_start(self) -> None:
        self.label_split("train")  # biobench-eval: the value frequencies come from the training samples
        self.label_split("test")

    # -- fitting ----------------------------------------------------------------------------------------------------
    def l1(self, split: str, index: torch.Tensor) -> torch.Tensor:
        rows = self.samples[split]
        return F.l1_loss(self.controller(rows["labels"][index]), rows["w_app"][index])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.l1("train", batch["index"])
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch["index"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if "val" not in self.samples:  # sanity check before on_fit_start's labelling: nothing to score yet
            return
        self.val_l1.update(self.l1("val", batch["index"]).detach(), weight=len(batch["index"]))

    def on_validation_epoch_end(self) -> None:
        if self.val_l1.update_count:
            self.log("val/l1", self.val_l1.compute(), prog_bar=True)
        self.val_l1.reset()

    def configure_optimizers(self) -> Any:
        return self.optimizer_factory(params=self.controller.parameters())

    # -- control accuracy -------------------------------------------------------------------------------------------
    def value_frequencies(self) -> list[torch.Tensor]:
        """Per attribute, the frequency of each value among the training samples' predictions."""
        labels = self.samples["train"]["labels"]
        return [torch.bincount(labels[:, k], minlength=len(v)).float() / len(labels)
                for k, v in enumerate(self.controller.values.values())]  # fmt: skip

    @torch.no_grad()
    def controlled_images(self, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """One new identity per row of value indices ``labels`` with that appearance requested."""
        g = self.generator
        rng = torch.Generator().manual_seed(seed)
        z_id = torch.randn(len(labels), g.identity_dim, generator=rng).to(self.device)
        noise = g.make_noise(len(labels), rng)
        return g.synthesis(controlled_w(g, z_id, self.controller(labels)), noise)

    @staticmethod
    def requests(
        frequencies: Sequence[torch.Tensor], attribute: int, value: int, n: int, rng: torch.Generator
    ) -> torch.Tensor:
        """``n`` requests of ``value`` for attribute ``attribute``, the others drawn from their ``frequencies``."""
        columns = [torch.full((n,), value) if k == attribute else torch.multinomial(f.cpu(), n, True, generator=rng)
                   for k, f in enumerate(frequencies)]  # fmt: skip
        return torch.stack(columns, dim=1)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.test_l1.update(self.l1("test", batch["index"]).detach(), weight=len(batch["index"]))

    def on_test_epoch_end(self) -> None:
        results = {"l1": self.test_l1.compute()}
        self.test_l1.reset()
        per_value, frequencies = int(self.evaluation["per_value"]), self.value_frequencies()
        rng = torch.Generator().manual_seed(self.seed + 7)
        accuracy, chance = [], []
        for k, (name, values) in enumerate(self.controller.values.items()):
            hits = []
            for v in range(len(values)):
                images = self.controlled_images(
                    self.requests(frequencies, k, v, per_value, rng), self.seed + 100 * k + v
                )
                hits.append((self.predict(images)[:, k] == v).float().mean())
            results[f"control_acc_{name}"] = torch.stack(hits).mean()
            accuracy.append(results[f"control_acc_{name}"])
            chance.append(1.0 / len(values))
        results["control_acc"], results["chance_acc"] = torch.stack(accuracy).mean(), torch.tensor(np.mean(chance))
        self.log_dict({f"test/{k}": v.float() for k, v in results.items()})
        save_figure(self.trainer, "controlled", self.grid_figure([int(f.argmax()) for f in frequencies]))

    def grid_figure(self, modes: Sequence[int]) -> Figure:
        """Rows = identities, columns = each attribute's values requested (the others at their most frequent)."""
        rows = int(self.evaluation["grid_rows"])
        columns = [(k, v, f"{name}={value}") for k, (name, values) in enumerate(self.controller.values.items())
                   for v, value in enumerate(values)]  # fmt: skip
        fig = Figure(figsize=(1.5 * len(columns), 1.5 * rows + 0.4), layout="constrained")
        axes = fig.subplots(rows, len(columns), squeeze=False)
        for c, (k, v, title) in enumerate(columns):
            labels = torch.tensor([modes] * rows)
            labels[:, k] = v
            images = self.controlled_images(labels, self.seed + 999)  # the same identities in every column
            for r, image in enumerate(images.clamp(-1, 1).float().cpu()):
                axes[r, c].imshow(image[0].numpy(), cmap="gray", vmin=-1, vmax=1)
                axes[r, c].set_axis_off()
            axes[0, c].set_title(title, fontsize=7)
        fig.suptitle("rows: identity, columns: requested appearance", fontsize=9)
        return fig

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["system"] = CONTROLLER_SYSTEM
