"""Fingerprint embedders: margin losses in the units we set, the minutiae guidance learns, a checkpoint round-trips
as a Recognizer with the same verification result, fusion of two identical embedders is either one, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from biobench.data.fingerprints import FingerprintDataModule
from biobench.data.fingerprints.minutiae_map import minutiae_maps
from biobench.eval import evaluate
from biobench.models.fingerprint_embedder import FingerprintEmbedder
from biobench.models.margin_loss import margin_loss
from biobench.recognizers import FusedRecognizer, embedder_recognizer
from biobench.train import train

TINY_DATA = ["data.n_fingers=16", "data.impressions=3", "data.generator.size=128", "data.image_size=64",
             "data.gen_workers=0", "data.val_fraction=0.25", "data.batch_size=16"]  # fmt: skip
TINY_VIT = ["model.net.patch_size=8", "model.net.depth=1", "model.embedding_dim=32", "model.minutiae.map_size=32"]


def two_class_loss(kind: str, margin: float, scale: float, theta: float) -> float:
    """The loss of one embedding at angle ``theta`` from its class centre (class 0) in a 2-D, 2-class problem whose
    centres are orthogonal, so the other class is at angle pi/2 - theta."""
    loss = margin_loss(kind, num_classes=2, embedding_dim=2, margin=margin, scale=scale)
    with torch.no_grad():
        loss.W.copy_(torch.eye(2))  # W [D, classes]: centre of class k = e_k
    embedding = torch.tensor([[math.cos(theta), math.sin(theta)]])
    return float(loss(embedding, torch.tensor([0])).detach())


@pytest.mark.parametrize("margin", [0.2, 0.5])
def test_arcface_margin_is_an_angle_in_radians(margin: float) -> None:
    theta, scale = 0.4, 16.0
    logits = torch.tensor([scale * math.cos(theta + margin), scale * math.sin(theta)])
    expected = float(-F.log_softmax(logits, 0)[0])
    assert two_class_loss("arcface", margin, scale, theta) == pytest.approx(expected, rel=1e-5)


def test_cosface_margin_is_subtracted_from_the_cosine() -> None:
    theta, scale, margin = 0.4, 16.0, 0.35
    logits = torch.tensor([scale * (math.cos(theta) - margin), scale * math.sin(theta)])
    expected = float(-F.log_softmax(logits, 0)[0])
    assert two_class_loss("cosface", margin, scale, theta) == pytest.approx(expected, rel=1e-5)


def test_margin_loss_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        margin_loss("sphereface", 10, 8, 0.5, 30.0)
    with pytest.raises(ValueError, match=">= 2 training identities"):
        margin_loss("arcface", 1, 8, 0.5, 30.0)


def tiny_embedder(weight: float, num_identities: int) -> FingerprintEmbedder:
    return FingerprintEmbedder(
        net={"model_name": "vit_tiny_patch16_224", "img_size": 64, "patch_size": 8, "depth": 2},
        embedding_dim=32,
        loss={"kind": "cosface", "margin": 0.2, "scale": 16.0},
        minutiae={"weight": weight, "map_size": 32, "channels": 6, "sigma": 1.5, "truncate": 2.0},
        pose={"max_rotation": 0.0, "max_translation": 0.0, "crop_prob": 0.0},
        num_identities=num_identities,
        in_chans=1,
        mean=[0.55],
        std=[0.25],
        optimizer=lambda params: torch.optim.AdamW(params, lr=2e-3),
    )


def fingerprint_batch(tmp_path: Path, n: int = 8) -> dict[str, torch.Tensor]:
    """``n`` synthetic training prints at 64 px (generator canvas 160 px) with their minutiae."""
    dm = FingerprintDataModule(n_fingers=6, impressions=2, task="finger", image_size=64, gen_workers=0,
                               generator={"size": 160}, cache_dir=str(tmp_path), batch_size=n)  # fmt: skip
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def test_minutiae_loss_decreases_on_a_tiny_overfit_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    batch = fingerprint_batch(tmp_path)
    assert int(batch["n_minutiae"].sum()) > 0
    model = tiny_embedder(weight=1.0, num_identities=int(batch["label"].max()) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    target = minutiae_maps(batch["minutiae"], batch["n_minutiae"], (64, 64), (32, 32))
    assert target.amax() > 0.9  # blobs drawn at the minutiae, not an empty target
    losses = []
    for _ in range(40):
        _, feature_map = model.net(batch["image"])
        loss = model.minutiae_loss(feature_map, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert losses[-1] < 0.5 * float((target**2).mean())  # well below predicting an empty map
    with torch.no_grad():
        predicted = model.minutiae_head(model.net(batch["image"])[1])
    assert predicted[target > 0.5].mean() > 3 * predicted[target == 0].mean()  # lit where the minutiae are


def test_no_guidance_builds_no_minutiae_head_and_identities_are_required() -> None:
    assert tiny_embedder(weight=0.0, num_identities=4).minutiae_head is None
    with pytest.raises(ValueError, match="data reports none"):
        tiny_embedder(weight=0.0, num_identities=0)


@pytest.fixture(scope="module")
def trained_vit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A ViT embedder (with guidance) trained for 2 short epochs through the entrypoint, and its metrics."""
    from conftest import compose_config
    from hydra.core.global_hydra import GlobalHydra

    out = tmp_path_factory.mktemp("fp_vit")
    overrides = ["experiment=fp_vit_minutiae", *TINY_DATA, *TINY_VIT, "trainer.max_epochs=2",
                 f"paths.cache_dir={out / 'cache'}"]  # fmt: skip
    cfg = compose_config("train", overrides, out / "run")
    GlobalHydra.instance().clear()
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), {k: float(v) for k, v in metrics.items()}


def test_training_logs_both_losses_and_verification(trained_vit: tuple[Path, dict]) -> None:
    run, _ = trained_vit
    written = json.loads((run / "metrics.json").read_text())
    for key in ("train/margin_loss", "train/minutiae_loss", "val/eer", "test/eer", "test/tar@far=1e-3"):
        assert key in written
    assert written["test/impostor_pairs"] > written["test/genuine_pairs"] > 0  # impostors: all cross-finger pairs
    assert (run / "artifacts" / "verification_roc.png").is_file()


def test_checkpoint_round_trips_as_a_recognizer(trained_vit: tuple[Path, dict], compose_eval, tmp_path) -> None:
    """The Recognizer gives the system's own embeddings, and biobench-eval through it reproduces the run's test
    verification exactly (same fingers, pairs and protocol)."""
    run, metrics = trained_vit
    ckpt = run / "checkpoints" / "best.ckpt"
    model = FingerprintEmbedder.load_from_checkpoint(ckpt, map_location="cpu", optimizer=torch.optim.AdamW).eval()
    dm = FingerprintDataModule(n_fingers=16, impressions=3, task="finger", image_size=64, gen_workers=0,
                               generator={"size": 128}, val_fraction=0.25, cache_dir=str(run.parent / "cache"),
                               mean=[0.55], std=[0.25])  # as data=fingerprints serves them  # fmt: skip
    dm.setup("test")
    images = next(iter(dm.test_dataloader()))["image"]
    recognizer = embedder_recognizer(ckpt, dm.spec)
    with torch.no_grad():
        torch.testing.assert_close(recognizer.embed(images), model.embed(images), atol=1e-5, rtol=1e-4)
    paths = [f"recognizer.first.path={ckpt}", f"recognizer.second.path={ckpt}", "recognizer.weight=0.3"]
    cfg = compose_eval("experiment=fp_fusion", *TINY_DATA, f"paths.cache_dir={run.parent / 'cache'}", *paths)
    fused = {k: float(v) for k, v in evaluate(cfg).items()}
    for key in ("test/eer", "test/tar@far=1e-2", "test/rank1", "test/impostor_pairs"):
        assert fused[key] == pytest.approx(metrics[key], abs=1e-6)  # fusion of one embedder with itself = itself


def test_fusion_scores_are_the_weighted_sum_of_cosines() -> None:
    torch.manual_seed(0)
    a, b = torch.nn.Linear(5, 4), torch.nn.Linear(5, 3)

    class Fixed(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def embed(self, x: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.net(x), dim=1)

    x = torch.randn(6, 5)
    fused = FusedRecognizer(Fixed(a), Fixed(b), weight=0.3).embed(x)
    cos_a, cos_b = Fixed(a).embed(x) @ Fixed(a).embed(x).T, Fixed(b).embed(x) @ Fixed(b).embed(x).T
    torch.testing.assert_close(fused @ fused.T, 0.3 * cos_a + 0.7 * cos_b)
    torch.testing.assert_close(fused.norm(dim=1), torch.ones(6))
    with pytest.raises(ValueError, match="Fusion weight"):
        FusedRecognizer(Fixed(a), Fixed(b), weight=1.5)


def test_a_classifier_checkpoint_is_not_an_embedder(tmp_path: Path) -> None:
    path = tmp_path / "classifier.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": {"name": "small_cnn"}}}, path)
    dm_spec = FingerprintDataModule(n_fingers=4, impressions=2, task="finger", image_size=32, gen_workers=0,
                                    generator={"size": 96}, cache_dir=str(tmp_path)).spec  # fmt: skip
    with pytest.raises(ValueError, match="is not a fingerprint embedder's"):
        embedder_recognizer(path, dm_spec)
