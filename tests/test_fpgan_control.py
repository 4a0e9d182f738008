"""FPGAN-Control's training system: the disentanglement hinges and their pair batches, appearance thumbnails, the
generation metrics, one manual G + D step, recognizer checks, and a tiny run through the entrypoint that resumes
exactly."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from biobench.contracts import DataSpec
from biobench.metrics.generation import frechet_distance, knn_precision_recall, shared_factor_ratio
from biobench.models.fpgan_control import FPGANControl, SampleSet, identity_verification
from biobench.models.fpgan_export import load_generator
from biobench.models.fpgan_losses import (
    appearance_distances,
    appearance_thumbnails,
    clamp_straight_through,
    contrastive_hinge,
    hinge_thresholds,
    identity_distances,
    pair_batch,
)
from biobench.recognizers import FrozenRecognizer

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = DataSpec(1, (32, 32), (0.5,), (0.5,))
TINY_G = {"identity_dim": 8, "appearance_dim": 6, "identity_w_dim": 8, "appearance_w_dim": 8, "n_mlp": 2,
          "channel_base": 256, "channel_max": 16}  # fmt: skip
TINY_D = {"channel_base": 256, "channel_max": 16}
LOSSES = {"w_id": 1.0, "w_app": 5.0, "tau_id": [0.1, 1.0], "tau_app": [0.001, 0.01], "blur_sigma": 1.5,
          "thumb_size": 8}  # fmt: skip


def adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))


def tiny_recognizer(spec: DataSpec = SPEC, in_chans: int = 1, size: int = 32) -> FrozenRecognizer:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(in_chans, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return FrozenRecognizer(net, spec, in_chans=in_chans, mean=[0.5] * in_chans, std=[0.25] * in_chans,
                            input_size=size)  # fmt: skip


def tiny_gan(spec: DataSpec = SPEC, recognizer: FrozenRecognizer | None = None, **losses) -> FPGANControl:
    torch.manual_seed(0)
    return FPGANControl(spec, TINY_G, TINY_D, LOSSES | losses, {"r1_every": 2, "pl_every": 2}, adam, adam,
                        recognizer=recognizer if recognizer is not None else tiny_recognizer(spec))  # fmt: skip


def test_hinge_is_zero_in_its_defining_case_and_positive_otherwise() -> None:
    same, diff = torch.tensor([0.1, 0.3]), torch.tensor([1.9, 2.5])
    assert float(contrastive_hinge(same, diff, 0.5, 1.8)) == 0.0
    assert float(contrastive_hinge(same, diff, 0.2, 1.8)) == pytest.approx(0.05)  # one same pair 0.1 too far
    assert float(contrastive_hinge(same, diff, 0.5, 2.0)) == pytest.approx(0.05)  # one different pair 0.1 too close
    assert hinge_thresholds(np.arange(11.0), np.arange(101.0), 0.5, 0.1) == (5.0, 10.0)
    with pytest.raises(ValueError, match="needs same and different pairs"):
        hinge_thresholds(np.zeros(0), np.ones(3), 0.5, 0.1)


def test_straight_through_clamp_shows_the_clamped_image_and_passes_every_gradient() -> None:
    x = torch.tensor([-1.5, 0.2, 1.7], requires_grad=True)
    y = clamp_straight_through(x)
    assert y.tolist() == pytest.approx([-1.0, 0.2, 1.0])
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]  # a plain clamp would give [0, 2, 0]


def test_pair_batch_shares_only_the_intended_latent() -> None:
    g = tiny_gan().generator
    batch = pair_batch(g, 8, torch.Generator().manual_seed(0))
    assert len(batch.pairs) == 28 and batch.same_id.sum() == 2 and batch.same_app.sum() == 2
    assert batch.pairs[batch.same_id].tolist() == [[0, 1], [2, 3]]
    assert batch.pairs[batch.same_app].tolist() == [[4, 5], [6, 7]]
    for a, b in batch.pairs[batch.same_id].tolist():  # identity pairs: z_id and every noise map, nothing else
        assert torch.equal(batch.z_id[a], batch.z_id[b]) and not torch.allclose(batch.z_app[a], batch.z_app[b])
        assert all(torch.equal(n[a], n[b]) for n in batch.noise)
    for a, b in batch.pairs[batch.same_app].tolist():  # appearance pairs: z_app only
        assert torch.equal(batch.z_app[a], batch.z_app[b]) and not torch.allclose(batch.z_id[a], batch.z_id[b])
        assert not any(torch.allclose(n[a], n[b]) for n in batch.noise)
    others = [(a, b) for a, b in batch.pairs.tolist() if [a, b] not in [[0, 1], [2, 3], [4, 5], [6, 7]]]
    assert not any(torch.allclose(batch.z_id[a], batch.z_id[b]) for a, b in others)
    with pytest.raises(ValueError, match="multiple of 4"):
        pair_batch(g, 6)


def ridges(period: float, size: int = 64, phase: float = 0.0) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32)
    return torch.sin(2 * math.pi * (x[None, :] + 0.6 * x[:, None]) / period + phase).expand(1, 1, size, size)


def test_thumbnails_remove_ridges_but_keep_brightness() -> None:
    prints = torch.cat([ridges(5.0), ridges(5.0, phase=2.0), ridges(5.0) + 0.3])  # other ridges, then brighter
    thumbs = appearance_thumbnails(prints, sigma=2.0, size=8)
    assert thumbs.shape == (3, 1, 8, 8)
    assert float(prints[0].std()) > 0.7 and float(thumbs[0].std()) < 0.01  # the ridge sinusoid is ~flat
    d = appearance_distances(thumbs, torch.tensor([[0, 1], [0, 2]]))
    assert float(d[0]) < 1e-4 and float(d[1]) == pytest.approx(0.09, rel=0.02)  # brightness kept: 0.3^2


def test_losses_have_gradients_into_g_only_and_the_recognizer_is_kept_out() -> None:
    model = tiny_gan()
    g, recognizer = model.generator, model.recognizer
    batch = pair_batch(g, 8)
    for which in ("identity", "appearance"):
        g.zero_grad(set_to_none=True)
        fake = g(batch.z_id, batch.z_app, batch.noise)
        if which == "identity":
            d = identity_distances(recognizer, clamp_straight_through(fake), batch.pairs)
            loss = contrastive_hinge(d[batch.same_id], d[~batch.same_id], 0.0, 4.0)
        else:
            d = appearance_distances(appearance_thumbnails(fake, 1.5, 8), batch.pairs)
            loss = contrastive_hinge(d[batch.same_app], d[~batch.same_app], 0.0, 10.0)
        assert loss.item() > 0
        loss.backward()
        assert g.const.grad is not None and g.mapping_id[1].weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in recognizer.parameters())
        assert all(p.grad is None for p in model.discriminator.parameters())
    g_opt, d_opt = model.configure_optimizers()
    optimised = [p for opt in (g_opt, d_opt) for group in opt.param_groups for p in group["params"]]
    assert {id(p) for p in optimised} == {id(p) for p in [*g.parameters(), *model.discriminator.parameters()]}
    state = model.state_dict()
    assert not [k for k in state if k.startswith("recognizer.")] and any(k.startswith("g_ema.") for k in state)
    # StyleGAN2's lazy-regularisation correction: c = 2 / 3 for both (regularised every 2 iterations)
    assert g_opt.param_groups[0]["lr"] == pytest.approx(0.002 * 2 / 3)
    assert d_opt.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (2 / 3)))


def fit_one_step(model: FPGANControl) -> pl.Trainer:
    """One training iteration of ``model`` on 8 random [-1, 1] images of 4 fingers."""
    torch.manual_seed(0)
    data = [{"image": torch.rand(1, 32, 32) * 2 - 1, "finger": torch.tensor(i // 2)} for i in range(8)]
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, train_dataloaders=DataLoader(data, batch_size=8))
    return trainer


def test_one_manual_training_step_changes_g_d_and_the_ema_copy() -> None:
    model = tiny_gan()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = fit_one_step(model)
    after = model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"generator", "discriminator", "g_ema", "iteration", "mean_path_length"}
    assert not torch.equal(before["generator.w_avg"], after["generator.w_avg"]) and int(model.iteration) == 1
    logged = trainer.callback_metrics
    assert {"train/loss", "train/d_loss", "train/id_loss", "train/app_loss", "train/r1_loss", "train/pl_loss"} <= set(
        logged
    )
    total = logged["train/adv_loss"] + 1.0 * logged["train/id_loss"] + 5.0 * logged["train/app_loss"]
    assert float(logged["train/loss"]) == pytest.approx(float(total), rel=1e-5)


def test_ema_rampup_lets_the_first_steps_ema_follow_the_generator() -> None:
    fixed = tiny_gan()
    torch.manual_seed(0)
    ramped = FPGANControl(SPEC, TINY_G, TINY_D, LOSSES, {"r1_every": 2, "pl_every": 2}, adam, adam,
                          recognizer=tiny_recognizer(SPEC), ema_rampup=0.05)  # fmt: skip
    for model in (fixed, ramped):
        fit_one_step(model)
    gaps = [max(float((e - p).abs().max()) for e, p in zip(m.g_ema.parameters(), m.generator.parameters(),
                                                           strict=True)) for m in (fixed, ramped)]  # fmt: skip
    assert gaps[1] < 1e-4 < gaps[0]  # half-life 0.05 x 8 images: g_ema = G; 10k images: g_ema ~ the initial G
    with pytest.raises(ValueError, match="ema_rampup must be > 0"):
        FPGANControl(SPEC, TINY_G, TINY_D, LOSSES, {}, adam, adam, recognizer=tiny_recognizer(SPEC), ema_rampup=0)


def test_bad_data_or_recognizer_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"trained on 1-channel images of 64 x 64 px, but the GAN generates 1-channel "
                                         r"32 x 32 px.*experiment=fpgan_recognizer"):  # fmt: skip
        tiny_gan(recognizer=tiny_recognizer(size=64))
    with pytest.raises(ValueError, match="trained on 3-channel images"):
        tiny_gan(recognizer=tiny_recognizer(in_chans=3))
    unit = DataSpec(1, (32, 32), (0.0,), (1.0,))
    with pytest.raises(ValueError, match=r"served in \[-1, 1\].*range \[0, 1\]"):
        tiny_gan(unit, recognizer=tiny_recognizer(unit))
    with pytest.raises(ValueError, match="needs a recognizer"):
        FPGANControl(SPEC, TINY_G, TINY_D, LOSSES, {}, adam, adam)
    with pytest.raises(ValueError, match=r"tau_app must be \[low, high\]"):
        tiny_gan(tau_app=[0.1, 0.01])


def test_frechet_distance_and_knn_precision_recall() -> None:
    x = torch.randn(300, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0, 0.0], dtype=torch.float64)
    assert float(frechet_distance(x, x)) == pytest.approx(0.0, abs=1e-9)
    assert float(frechet_distance(x, x + shift)) == pytest.approx(float(shift.square().sum()), rel=1e-9)
    assert float(frechet_distance(x, 2 * x)) > 1.0  # a wider spread costs too
    few = frechet_distance(x[:10], x[10:20] + 1)  # fewer samples than twice the dimension: singular covariances
    assert math.isfinite(float(few)) and float(few) > 0
    assert knn_precision_recall(x, x) == (1.0, 1.0)
    assert knn_precision_recall(x, x + 100) == (0.0, 0.0)
    precision, recall = knn_precision_recall(x, x[:100] * 0.3)  # a collapsed generator: precise, low recall
    assert precision > 0.9 and recall < 0.5


def test_shared_factor_ratio_is_zero_when_the_factor_fixes_the_features_and_one_when_it_is_ignored() -> None:
    rng = torch.Generator().manual_seed(0)
    appearance, identity = torch.arange(4).repeat(50), torch.arange(50).repeat_interleave(4)  # 50 x 4, shared z_app
    looks, faces = torch.randn(4, 8, generator=rng), torch.randn(50, 8, generator=rng)
    assert shared_factor_ratio(looks[appearance], appearance, identity) == pytest.approx(0.0, abs=1e-12)
    assert shared_factor_ratio(faces[identity], appearance, identity) == pytest.approx(1.0, abs=0.05)
    mixed = shared_factor_ratio(looks[appearance] + faces[identity], appearance, identity)
    assert 0.2 < mixed < 0.8  # half of the variance from each factor
    with pytest.raises(ValueError, match="share nothing"):
        shared_factor_ratio(looks[appearance][:4], appearance[:4], identity[:4])  # one identity: no pair apart


def test_identity_verification_and_fixed_samples() -> None:
    g = tiny_gan().g_ema
    samples = SampleSet.draw(g, 3, 4, seed=5)
    assert samples.identity.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and len(samples.noise[0]) == 3
    again = SampleSet.draw(g, 3, 4, seed=5)
    rows = torch.arange(12)
    assert torch.equal(samples.images(g, rows), again.images(g, rows))  # fixed latents: epochs compare
    grid = SampleSet.draw(g, 2, 3, seed=5, shared_appearance=True)
    assert torch.equal(grid.z_app[:3], grid.z_app[3:]) and torch.equal(grid.z_id[0], grid.z_id[2])
    separable = torch.eye(3).repeat_interleave(4, dim=0) + 0.01 * torch.randn(12, 3)
    result = identity_verification(separable, samples.identity, samples.impression)
    assert result["id_eer"] == 0.0 and result["id_tar@far=1e-3"] == 1.0


# -- through the entrypoint -----------------------------------------------------------------------------------------
TINY_DATA = ["data.n_fingers=16", "data.impressions=2", "data.generator.size=128", "data.image_size=64",
             "data.gen_workers=0", "data.val_fraction=0.25"]  # fmt: skip
TINY_RUN = ["model.generator.channel_base=256", "model.generator.channel_max=16", "model.generator.n_mlp=2",
            "model.evaluation.val=[4,2]", "model.evaluation.test=[8,2]", "model.evaluation.grid=[2,3]",
            "logger=csv"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_recognizer_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An embedder trained for two batches through the entrypoint on the GAN's tiny data (and its data cache)."""
    from conftest import compose_config
    from hydra.core.global_hydra import GlobalHydra

    from biobench.train import train

    out = tmp_path_factory.mktemp("fpgan")
    overrides = ["experiment=fpgan_recognizer", *TINY_DATA, "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
                 "model.embedding_dim=32", "logger=csv", "test=false", f"paths.cache_dir={out / 'cache'}"]  # fmt: skip
    cfg = compose_config("train", overrides, out / "recognizer")
    GlobalHydra.instance().clear()
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt", out / "cache"


def test_a_gan_run_resumes_exactly_and_writes_its_artifacts(tiny_recognizer_ckpt, compose_train, compose_eval) -> None:
    from conftest import train_crash_and_resume

    from biobench.eval import evaluate

    ckpt, cache = tiny_recognizer_ckpt
    overrides = ["experiment=fpgan_fingerprint", *TINY_DATA, *TINY_RUN, f"recognizer.path={ckpt}",
                 f"paths.cache_dir={cache}", "trainer.max_epochs=3", "seed=4",
                 "model.regularization.r1_every=4"]  # fmt: skip
    full, resumed = train_crash_and_resume(compose_train, overrides)
    a, b = (torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for run in (full, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["iteration"]) == 6 and not any(k.startswith("recognizer.") for k in a)  # 2 batches x 3 epochs
    metrics, reference = (json.loads((run / "metrics.json").read_text()) for run in (resumed, full))
    evaluated = [m for m in FPGANControl.metrics if m.startswith(("val/", "test/"))]
    assert [metrics[m] for m in evaluated] == pytest.approx([reference[m] for m in evaluated], rel=1e-6)
    assert (resumed / "artifacts" / "samples.png").is_file()
    rows = {r["threshold"]: r for r in csv.DictReader((full / "artifacts" / "hinge_thresholds.csv").open())}
    assert set(rows) == {"tau_id", "tau_app"}  # calibrated on training reals, kept in the checkpoint
    assert float(rows["tau_app"]["high"]) == pytest.approx(float(a["tau_app"][1]))
    g = load_generator(full / "checkpoints" / "best.ckpt")  # an export's loader takes the run's checkpoint
    best = torch.load(full / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, best[f"g_ema.{k}"]) for k, v in g.state_dict().items())
    export = full.parent / "exported"
    tested = evaluate(compose_eval(*overrides, f"ckpt_path={full / 'checkpoints' / 'best.ckpt'}",
                                   f"model.export.dir={export}", "model.export.identities=3",
                                   "model.export.impressions=2"))  # fmt: skip
    test_metrics = [m for m in evaluated if m.startswith("test/")]
    assert [float(tested[m]) for m in test_metrics] == pytest.approx([reference[m] for m in test_metrics], rel=1e-6)
    assert sorted(p.name for p in export.glob("*_*.png")) == [f"{i}_{j}.png" for i in (1, 2, 3) for j in (1, 2)]
    assert Path(json.loads((export / "export.json").read_text())["source"]).exists()


def identity_distances_of_samples(cfg, identities: int = 16, impressions: int = 4) -> tuple[float, float]:
    """Mean squared Recognizer distance of same- and of different-identity g_ema samples of a finished run (fresh
    latents: each identity one z_id + noise, each sample its own z_app)."""
    from hydra.utils import instantiate

    from biobench.utils.checkpoint import read_checkpoint
    from biobench.utils.systems import build_system

    model = build_system(cfg.model, instantiate(cfg.data).spec)
    model.load_weights(read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"))
    samples = SampleSet.draw(model.g_ema, identities, impressions, seed=123)
    with torch.no_grad():
        e = model.sample_embeddings(samples)
    d = torch.cdist(e, e).square()
    same = torch.as_tensor(samples.identity[:, None] == samples.identity[None, :]) & ~torch.eye(len(e), dtype=bool)
    different = torch.as_tensor(samples.identity[:, None] != samples.identity[None, :])
    return float(d[same].mean()), float(d[different].mean())


@pytest.mark.slow
def test_identity_latents_give_closer_embeddings_after_a_short_run(tmp_path: Path, compose_train) -> None:
    """A GAN trained briefly (64 iterations) with the identity hinge (w_id 5) against its twin without it (w_id 0),
    through an embedder trained on the same 64 px prints: samples of one identity are closer in the Recognizer's eyes
    than samples of different identities, and more so than in the twin (measured: distance ratio 1.31 vs 1.21). The
    thresholds are fixed at [0, 2]: an embedder of 30 fingers separates unseen ones too weakly for calibrated ones."""
    from conftest import compose_config
    from hydra.core.global_hydra import GlobalHydra

    from biobench.train import train

    data = ["data.n_fingers=48", "data.impressions=4", "data.generator.size=128", "data.image_size=64",
            "data.gen_workers=0", "data.val_fraction=0.2", f"paths.cache_dir={tmp_path}"]  # fmt: skip
    steady = ["model.pose.max_rotation=0", "model.pose.max_translation=0", "model.pose.crop_prob=0"]  # 30 fingers
    recognizer = compose_config("train", ["experiment=fpgan_recognizer", *data, *steady, "data.batch_size=16",
                                          "model.embedding_dim=64", "trainer.max_epochs=15", "test=false"],
                                tmp_path / "recognizer")  # fmt: skip
    GlobalHydra.instance().clear()
    train(recognizer)
    ckpt = Path(recognizer.paths.output_dir) / "checkpoints" / "best.ckpt"
    gaps = {}
    for w_id in (0.0, 5.0):
        cfg = compose_train("experiment=fpgan_fingerprint", *data, *TINY_RUN, f"recognizer.path={ckpt}",
                            f"model.losses.w_id={w_id}", "model.losses.tau_id=[0.0,2.0]",
                            "model.ema_half_life_images=200",  # 1,024 images in all
                            "model.generator.channel_base=1024", "model.generator.channel_max=32",
                            "trainer.max_epochs=8", "test=false", out=f"gan_{w_id}")  # fmt: skip
        train(cfg)
        gaps[w_id] = identity_distances_of_samples(cfg)
    same, different = gaps[5.0]
    assert same < different, gaps
    assert different / same > gaps[0.0][1] / gaps[0.0][0], gaps
