"""The IPR codec: CompressAI codecs in gray and RGB, real bitstreams (bpp = 8 bytes / pixels, decode = the forward
pass), reload after update(), the IPR distance, and a tiny run through the entrypoint with an embedder checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from biobench.contracts import DataSpec
from biobench.data.fingerprints.readers import read_fingerprint_folder
from biobench.models.codec_losses import RateDistortionLoss, identity_distance
from biobench.models.ipr_codec import IPRCodec
from biobench.models.nets.bitstream import pack, unpack
from biobench.models.nets.compression import (
    build_codec,
    compress_images,
    crop_padding,
    decompress_images,
    pad_to_stride,
)
from biobench.recognizers import FrozenRecognizer

GRAY = DataSpec(1, (40, 56), (0.0,), (1.0,))
SMALL = {"name": "bmshj2018-hyperprior", "quality": None, "N": 16, "M": 24}


def small_recognizer(spec: DataSpec = GRAY) -> FrozenRecognizer:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return FrozenRecognizer(net, spec, in_chans=1, mean=[0.5], std=[0.25])


def small_codec(weight: float = 0.0, recognizer: FrozenRecognizer | None = None) -> IPRCodec:
    return IPRCodec(
        spec=GRAY,
        codec=SMALL,
        loss={"lmbda": 0.01, "distortion": "mse"},
        ipr={"weight": weight, "distance": "cosine"},
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
        aux_optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
        recognizer=recognizer,
        evaluation="none",
    )


def smooth_images(n: int = 2, h: int = 40, w: int = 56) -> torch.Tensor:
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    phase = torch.rand(n, 1, 1, 1) * 6
    return (0.5 + 0.4 * torch.sin(12 * x + 7 * y + phase)).clamp(0, 1).expand(n, 1, h, w).contiguous()


@pytest.mark.parametrize("name", ["bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "cheng2020-anchor"])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_zoo_codecs_build_in_gray_and_rgb_and_keep_odd_sizes(name: str, in_chans: int) -> None:
    codec = build_codec(name, in_chans=in_chans, quality=None, N=16, M=24)
    x = torch.rand(1, in_chans, 33, 47)
    padded, pad = pad_to_stride(x)
    assert padded.shape[-2] % 64 == 0 and padded.shape[-1] % 64 == 0
    assert torch.equal(crop_padding(padded, pad), x)
    out = codec(padded)
    assert out["x_hat"].shape == padded.shape


def test_codec_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown CompressAI architecture"):
        build_codec("jpeg")
    with pytest.raises(ValueError, match="quality=9 is not one of"):
        build_codec("bmshj2018-hyperprior", quality=9)
    rgb = build_codec("bmshj2018-factorized", in_chans=3, quality=None, N=16, M=24)
    torch.save(rgb.state_dict(), tmp_path / "rgb.pt")
    with pytest.raises(ValueError, match=r"rgb\.pt' do not fit 'bmshj2018-factorized' \(N=16, M=24, 1 channels\)"):
        build_codec("bmshj2018-factorized", in_chans=1, quality=None, N=16, M=24, pretrained_path=tmp_path / "rgb.pt")


@pytest.mark.parametrize("name", ["bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean"])
def test_real_bitstreams_decode_to_the_forward_reconstruction(name: str) -> None:
    codec = build_codec(name, in_chans=1, quality=None, N=16, M=24).eval()
    codec.update(force=True)
    x = smooth_images(h=37, w=45)  # odd sizes: padded to 64 for coding, cropped back
    bitstreams = compress_images(codec, x)
    decoded = decompress_images(codec, bitstreams)
    padded, pad = pad_to_stride(x)
    with torch.no_grad():
        forward = crop_padding(codec(padded)["x_hat"], pad).clamp(0, 1)
    assert decoded.shape == x.shape
    torch.testing.assert_close(decoded, forward, atol=1e-5, rtol=0)
    for b in bitstreams:
        strings, h, w = unpack(b)
        assert (h, w) == (37, 45) and len(b) == len(pack(strings, h, w))


def test_corrupt_bitstreams_are_refused_clearly() -> None:
    data = pack([b"abc", b"de"], 37, 45)
    assert unpack(data) == ([b"abc", b"de"], 37, 45)
    with pytest.raises(ValueError, match="magic bytes"):
        unpack(b"JFIF" + data)
    with pytest.raises(ValueError, match="runs past its end"):
        unpack(data[:-1])
    with pytest.raises(ValueError, match="after the last string"):
        unpack(data + b"x")


def test_test_stage_bpp_is_eight_bytes_per_pixel_of_the_real_bitstream() -> None:
    model = small_codec().eval()
    model.on_test_start()
    x = smooth_images()
    with torch.no_grad():
        model.test_step({"image": x}, 0)
    bitstreams = compress_images(model.codec, x)
    expected = sum(8.0 * len(b) / (40 * 56) for b in bitstreams) / len(bitstreams)
    assert float(model.test_means["bpp"].compute()) == pytest.approx(expected, rel=1e-6)
    assert model._decode_error < 1e-5


def test_checkpoint_reloads_after_update_and_gives_the_same_bitstreams() -> None:
    trained = small_codec()
    trained.codec.update(force=True)
    checkpoint = {"state_dict": trained.state_dict(), "hyper_parameters": dict(trained.hparams)}
    fresh = small_codec()
    fresh.check_checkpoint(checkpoint, "codec.ckpt")  # CDF tables of another shape are accepted
    fresh.load_weights(checkpoint)
    x = smooth_images()
    assert compress_images(fresh.codec.eval(), x) == compress_images(trained.codec.eval(), x)
    other = IPRCodec(spec=GRAY, codec={**SMALL, "N": 8}, loss={"lmbda": 0.01}, ipr={"weight": 0.0},
                     optimizer=torch.optim.Adam, aux_optimizer=torch.optim.Adam, evaluation="none")  # fmt: skip
    with pytest.raises(ValueError, match="different model"):
        other.check_checkpoint(checkpoint, "codec.ckpt")


def test_ipr_is_zero_for_identical_images_and_has_input_gradients() -> None:
    recognizer = small_recognizer()
    x = smooth_images()
    assert float(identity_distance(recognizer, x, x)) == pytest.approx(0.0, abs=1e-6)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    distance = identity_distance(recognizer, noisy, x, "l2")
    assert float(distance) > 0
    distance.backward()
    assert noisy.grad is not None and noisy.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in recognizer.parameters())


def test_the_recognizer_is_in_no_optimiser_and_not_in_the_checkpoint() -> None:
    model = small_codec(weight=1.0, recognizer=small_recognizer())
    model.trainer = type("T", (), {"estimated_stepping_batches": 10})()
    main, aux = model.configure_optimizers()
    in_optimisers = {id(p) for opt in (main, aux) for g in opt.param_groups for p in g["params"]}
    assert not any(id(p) in in_optimisers for p in model.recognizer.parameters())
    assert {id(p) for p in model.codec.parameters()} == in_optimisers
    assert not [k for k in model.state_dict() if k.startswith("recognizer.")]


def test_the_loss_is_rate_plus_lambda_distortion_plus_beta_ipr() -> None:
    model = small_codec(weight=2.0, recognizer=small_recognizer())
    x = smooth_images()
    torch.manual_seed(3)
    parts = model.objective(x)
    expected = parts["bpp"] + 0.01 * 255.0**2 * parts["mse"] + 2.0 * parts["ipr"]
    assert float(parts["loss"]) == pytest.approx(float(expected), rel=1e-5)
    rd = RateDistortionLoss(0.01, "ms-ssim")({"x_hat": x, "likelihoods": {"y": torch.full((1,), 0.5)}}, x)
    assert float(rd["distortion"]) == pytest.approx(0.0, abs=1e-5)  # 1 - MS-SSIM of identical images


def test_a_recognizer_is_required_for_ipr_and_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="needs a recognizer"):
        small_codec(weight=1.0)
    with pytest.raises(ValueError, match=r"model\.loss\.distortion"):
        IPRCodec(spec=GRAY, codec=SMALL, loss={"lmbda": 0.01, "distortion": "ssim"}, ipr={"weight": 0.0},
                 optimizer=torch.optim.Adam, aux_optimizer=torch.optim.Adam, evaluation="none")  # fmt: skip


def test_a_diverging_loss_stops_training_with_a_clear_error() -> None:
    model = small_codec()
    opts = [torch.optim.Adam(model.codec.parameters())] * 2
    model.optimizers = lambda: opts  # type: ignore[method-assign]
    with pytest.raises(FloatingPointError, match="training diverged"):
        model.training_step({"image": torch.full((1, 1, 40, 56), float("nan"))}, 0)


@pytest.fixture(scope="module")
def tiny_embedder_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A CNN fingerprint embedder trained for one short epoch through the entrypoint (the codec's recognizer)."""
    from conftest import compose_config
    from hydra.core.global_hydra import GlobalHydra
    from test_embedder import TINY_DATA

    from biobench.train import train

    out = tmp_path_factory.mktemp("ipr")
    overrides = ["experiment=fp_cnn", *TINY_DATA, "trainer.max_epochs=1", "model.embedding_dim=32",
                 f"paths.cache_dir={out / 'cache'}"]  # fmt: skip
    cfg = compose_config("train", overrides, out / "embedder")
    GlobalHydra.instance().clear()
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt", out


def test_ipr_fingerprint_runs_end_to_end_with_real_bits(tiny_embedder_ckpt, compose_train) -> None:
    from test_embedder import TINY_DATA

    from biobench.train import train

    ckpt, out = tiny_embedder_ckpt
    cfg = compose_train("experiment=ipr_fingerprint", *TINY_DATA, "data.mean=[0.0]", "data.std=[1.0]",
                        "trainer.max_epochs=1", "model.codec.N=16", "model.codec.M=24", f"recognizer.path={ckpt}",
                        f"paths.cache_dir={out / 'cache'}", "model.save_decoded=true")  # fmt: skip
    metrics = {k: float(v) for k, v in train(cfg).items()}
    run = Path(cfg.paths.output_dir)
    written = json.loads((run / "metrics.json").read_text())
    for key in ("test/bpp", "test/psnr", "test/ms_ssim", "test/eer", "test/ref_eer", "test/tar@far=1e-3", "val/ipr"):
        assert key in written
    assert metrics["test/bpp"] > 0 and metrics["test/decode_error"] < 1e-4
    assert (run / "artifacts" / "reconstructions.png").is_file()
    # The decoded test images as an identity folder that the fingerprint reader takes, next to the originals.
    decoded, original = (read_fingerprint_folder(run / "artifacts" / name) for name in ("decoded", "original"))
    assert len(decoded) == len(original) > 0
    assert [p.relative_to(run / "artifacts" / "decoded") for p in decoded.paths] == [
        p.relative_to(run / "artifacts" / "original") for p in original.paths
    ]
    pairs = [(np.asarray(Image.open(a), np.float64), np.asarray(Image.open(b), np.float64))
             for a, b in zip(decoded.paths, original.paths, strict=True)]  # fmt: skip
    folder_psnr = np.mean([10 * np.log10(255**2 / np.mean((a - b) ** 2)) for a, b in pairs])
    assert folder_psnr == pytest.approx(metrics["test/psnr"], abs=0.2)  # the real decodes, rounded to 8 bits


@pytest.mark.slow
def test_raising_beta_keeps_identity_better_at_a_similar_rate(tmp_path: Path, compose_train) -> None:
    """Two codecs at a low rate (lmbda 0.0005), beta 0 and beta 50, through a briefly trained CNN embedder: the IPR
    codec's decoded probes stay closer to their originals in the recognizer's eyes and verify better, at a bpp within
    a third of the twin's."""
    from conftest import compose_config
    from hydra.core.global_hydra import GlobalHydra

    from biobench.train import train

    data = ["data.n_fingers=48", "data.impressions=4", "data.generator.size=160", "data.image_size=64",
            "data.gen_workers=0", "data.val_fraction=0.2", "data.test_fraction=0.3",
            f"paths.cache_dir={tmp_path}"]  # fmt: skip
    embedder_cfg = compose_config("train", ["experiment=fp_cnn", *data, "trainer.max_epochs=12"], tmp_path / "emb")
    GlobalHydra.instance().clear()
    train(embedder_cfg)
    ckpt = Path(embedder_cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    results = {}
    for beta in (0.0, 50.0):
        cfg = compose_train("experiment=ipr_fingerprint", *data, "data.mean=[0.0]", "data.std=[1.0]",
                            f"recognizer.path={ckpt}", f"model.ipr.weight={beta}", "model.loss.lmbda=0.0005",
                            "model.codec.N=32", "model.codec.M=48", "trainer.max_epochs=15",
                            "model.optimizer.lr=1e-3", out=f"codec_{beta}")  # fmt: skip
        results[beta] = {k: float(v) for k, v in train(cfg).items()}
    rd, ipr = results[0.0], results[50.0]
    assert ipr["test/ipr"] < rd["test/ipr"]
    assert ipr["test/eer"] < rd["test/eer"]
    assert abs(ipr["test/bpp"] - rd["test/bpp"]) < rd["test/bpp"] / 3
