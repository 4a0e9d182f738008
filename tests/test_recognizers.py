"""Recognizers: frozen but differentiable, eval mode locked against a host's train(), served images mapped to the
network's input; the classifier-checkpoint, TorchScript and timm loaders on real files, and their errors."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import timm
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset

from biobench.contracts import DataSpec
from biobench.models.nets.loading import TRAINING_SPEC_KEY
from biobench.models.pruned_classifier import PrunedClassifier
from biobench.models.recognizer_verification import RecognizerVerification
from biobench.recognizers import (
    FrozenRecognizer,
    classifier_recognizer,
    timm_recognizer,
    torchscript_recognizer,
)

GRAY01 = DataSpec(1, (12, 12), (0.0,), (1.0,))  # served as [0, 1]
GRAY11 = DataSpec(1, (12, 12), (0.5,), (0.5,))  # served as [-1, 1]


def feature_net(in_chans: int = 1) -> nn.Module:
    """Conv -> BatchNorm -> Dropout -> pooled features, with non-trivial running statistics."""
    net = nn.Sequential(
        nn.Conv2d(in_chans, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    net.train()
    with torch.no_grad():
        net(torch.rand(16, in_chans, 12, 12) * 3)  # running stats away from (0, 1)
    return net


def frozen(net: nn.Module | None = None, spec: DataSpec = GRAY01, **kwargs) -> FrozenRecognizer:
    args = {"in_chans": 1, "mean": (0.4,), "std": (0.2,), **kwargs}
    return FrozenRecognizer(net or feature_net(args["in_chans"]), spec, **args)


def bn_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


def test_loss_through_it_reaches_the_images_but_no_parameter() -> None:
    recognizer = frozen()
    images = torch.rand(4, 1, 12, 12, requires_grad=True)
    emb = recognizer.embed(images)
    assert emb.shape == (4, 6) and torch.allclose(emb.norm(dim=1), torch.ones(4))
    (emb - torch.randn(4, 6)).pow(2).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in recognizer.parameters())


class Host(nn.Module):
    """A model trained through a recognizer (as the IPR codec or FPGAN's identity loss are)."""

    def __init__(self, recognizer: FrozenRecognizer) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.BatchNorm2d(1), nn.Sigmoid())
        self.recognizer = recognizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.recognizer.embed(self.generator(x))


def test_a_host_training_step_leaves_the_recognizer_untouched() -> None:
    host = Host(frozen())
    before, weights = bn_state(host.recognizer), [p.clone() for p in host.recognizer.parameters()]
    generator = [p.clone() for p in host.generator.parameters()]
    host.train()
    assert host.generator.training and not any(m.training for m in host.recognizer.modules())
    optimizer = torch.optim.SGD(host.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)  # all of the host's
    x = torch.rand(8, 1, 12, 12)
    target = host(x).detach().roll(1, 0)
    for _ in range(2):
        optimizer.zero_grad()
        (host(x) - target).pow(2).sum().backward()
        optimizer.step()
    assert all(torch.equal(bn_state(host.recognizer)[k], v) for k, v in before.items())
    assert all(torch.equal(p, q) for p, q in zip(host.recognizer.parameters(), weights, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(host.generator.parameters(), generator, strict=True))
    host.recognizer.model.train()  # even switched directly, embed runs (and leaves) the network in eval mode
    assert torch.equal(host(x), host(x))  # no Dropout, no batch statistics
    assert not any(m.training for m in host.recognizer.modules())
    assert all(torch.equal(bn_state(host.recognizer)[k], v) for k, v in before.items())


def test_served_value_range_channels_and_size_are_mapped_to_the_network_input() -> None:
    net = feature_net(in_chans=3)
    pixels = torch.rand(3, 1, 12, 12)
    args = {"in_chans": 3, "mean": (0.4, 0.5, 0.6), "std": (0.2, 0.3, 0.25), "input_size": 8}
    from_01 = frozen(net, GRAY01, **args).embed(pixels)
    assert torch.allclose(from_01, frozen(net, GRAY11, **args).embed(GRAY11.from_unit(pixels)), atol=1e-6)
    mean, std = torch.tensor(args["mean"]).view(1, 3, 1, 1), torch.tensor(args["std"]).view(1, 3, 1, 1)
    resized = F.interpolate(pixels, size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.allclose(from_01, F.normalize(net((resized.expand(-1, 3, -1, -1) - mean) / std)), atol=1e-6)
    rgb = DataSpec(3, (12, 12), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    colour = torch.rand(3, 3, 12, 12)
    gray = (colour * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    gray_net = feature_net()
    assert torch.allclose(frozen(gray_net, rgb).embed(rgb.from_unit(colour)), frozen(gray_net).embed(gray), atol=1e-6)
    with pytest.raises(ValueError, match=r"expects served images \[N, 1, H, W\]"):
        frozen().embed(colour)


class Samples(Dataset):
    """Labelled 12 x 12 gray images (two classes by brightness), served as [-1, 1]."""

    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.label = torch.arange(n) % 2
        self.image = GRAY11.from_unit((torch.rand(n, 1, 12, 12, generator=g) + self.label.view(-1, 1, 1, 1)) / 2)

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        return {"image": self.image[i], "label": self.label[i], "index": i}


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Lightning checkpoint of a biobench classifier after one short training epoch."""
    model = PrunedClassifier({"name": "small_cnn", "width": 8}, 2, 1, partial(torch.optim.SGD, lr=0.1))
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, DataLoader(Samples(), batch_size=8))
    path = tmp_path_factory.mktemp("classifier") / "best.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_classifier_checkpoint_gives_its_penultimate_features(classifier_ckpt: Path) -> None:
    ckpt = torch.load(classifier_ckpt, weights_only=True)
    model = PrunedClassifier(**{k: ckpt["hyper_parameters"][k] for k in ("net", "num_classes", "in_chans")},
                             optimizer=None).eval()  # fmt: skip
    model.load_state_dict(ckpt["state_dict"])
    served = DataSpec(1, (16, 16), (0.55,), (0.25,))
    recognizer = classifier_recognizer(classifier_ckpt, served, input_size=12, mean=[0.5], std=[0.5])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in recognizer.modules())  # folded into the convolutions
    images = served.from_unit(torch.rand(5, 1, 16, 16))
    resized = F.interpolate(served.to_unit(images), size=(12, 12), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = model.embed(GRAY11.from_unit(resized))
    assert torch.allclose(recognizer.embed(images), expected, atol=1e-5)
    unfolded = classifier_recognizer(classifier_ckpt, served, input_size=12, mean=[0.5], std=[0.5], fold_bn=False)
    assert torch.allclose(unfolded.embed(images), expected, atol=1e-6)

    ckpt[TRAINING_SPEC_KEY] = GRAY11.as_dict()  # a checkpoint that records its training data
    torch.save(ckpt, classifier_ckpt.parent / "with_spec.ckpt")
    stored = classifier_recognizer(classifier_ckpt.parent / "with_spec.ckpt", served)
    assert stored.input_size == (12, 12) and torch.allclose(stored.embed(images), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"recognizer.mean=\[0.3\] contradicts the mean \[0.5\].*with_spec\.ckpt"):
        classifier_recognizer(classifier_ckpt.parent / "with_spec.ckpt", served, mean=[0.3])
    with pytest.raises(ValueError, match=r"best\.ckpt' does not record the normalisation.*recognizer\.mean"):
        classifier_recognizer(classifier_ckpt, served)


def test_classifier_loader_rejects_wrong_files(classifier_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        classifier_recognizer(tmp_path / "missing.ckpt", GRAY01, mean=[0.5], std=[0.5])
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.ckpt' cannot be read safely"):
        classifier_recognizer(tmp_path / "garbage.ckpt", GRAY01, mean=[0.5], std=[0.5])
    torch.save({"state_dict": nn.Linear(2, 2).state_dict()}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match=r"foreign\.ckpt' does not come from a biobench classifier"):
        classifier_recognizer(tmp_path / "foreign.ckpt", GRAY01, mean=[0.5], std=[0.5])


def test_torchscript_file_is_a_recognizer(tmp_path: Path) -> None:
    net = feature_net().eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    recognizer = torchscript_recognizer(tmp_path / "net.pt", GRAY11, in_chans=1, mean=[0.4], std=[0.2])
    pixels = torch.rand(3, 1, 12, 12, requires_grad=True)
    emb = recognizer.embed(GRAY11.from_unit(pixels))
    with torch.no_grad():
        assert torch.allclose(emb, F.normalize(net((pixels - 0.4) / 0.2)), atol=1e-6)
    emb.sum().backward()
    assert pixels.grad.abs().sum() > 0 and all(p.grad is None for p in recognizer.parameters())
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        torchscript_recognizer(tmp_path / "missing.pt", GRAY11, 1, [0.4], [0.2])
    torch.save(net.state_dict(), tmp_path / "state.pt")  # a state dict is no TorchScript program
    with pytest.raises(ValueError, match=r"state\.pt' is not a TorchScript file"):
        torchscript_recognizer(tmp_path / "state.pt", GRAY11, 1, [0.4], [0.2])


@pytest.mark.parametrize("suffix", ["safetensors", "pth"])
def test_timm_model_with_local_weights_is_a_recognizer(tmp_path: Path, suffix: str) -> None:
    trained = timm.create_model("test_resnet", pretrained=False, num_classes=7).eval()  # head in the file: dropped
    path = tmp_path / f"weights.{suffix}"
    if suffix == "safetensors":
        save_file(trained.state_dict(), path)
    else:
        torch.save(trained.state_dict(), path)
    recognizer = timm_recognizer("test_resnet", path, GRAY01)  # input size / mean / std from its pretrained_cfg
    assert recognizer.input_size == (160, 160) and recognizer.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    pixels = torch.rand(2, 1, 96, 96)
    x = F.interpolate(pixels, size=(160, 160), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    with torch.no_grad():
        expected = F.normalize(trained.forward_head(trained.forward_features((x - 0.5) / 0.5), pre_logits=True))
    assert torch.allclose(recognizer.embed(pixels), expected, atol=1e-5)


def test_timm_loader_rejects_wrong_weights(tmp_path: Path) -> None:
    save_file(timm.create_model("test_efficientnet", pretrained=False).state_dict(), tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match=r"other\.safetensors' does not fit timm model 'test_resnet'"):
        timm_recognizer("test_resnet", tmp_path / "other.safetensors", GRAY01)
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match=r"broken\.safetensors' cannot be read safely"):
        timm_recognizer("test_resnet", tmp_path / "broken.safetensors", GRAY01)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        timm_recognizer("test_resnet", tmp_path / "missing.pth", GRAY01)
    with pytest.raises(ValueError, match="'no_such_net' is not a timm model"):
        timm_recognizer("no_such_net", tmp_path / "missing.pth", GRAY01)


def test_recognizer_configs_build_the_verification_system(compose_eval, tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(feature_net(3).eval()), tmp_path / "net.pt")
    cfg = compose_eval("experiment=verify_fingerprints", "recognizer=torchscript", f"recognizer.path={tmp_path}/net.pt")
    assert (cfg.data.task, cfg.data.image_size, cfg.ckpt_path) == ("finger", 256, None)
    spec = DataSpec(1, (256, 256), (0.55,), (0.25,))
    system = instantiate(cfg.model, _partial_=True)(spec=spec)  # spec as itself (instantiate kwargs become configs)
    assert isinstance(system, RecognizerVerification) and system.recognizer.in_chans == 3
    assert system.recognizer.embed(torch.zeros(2, 1, 256, 256)).shape == (2, 6)
    cfg = compose_eval("experiment=verify_fingerprints", "recognizer.path=/runs/best.ckpt")
    assert cfg.recognizer._target_ == "biobench.recognizers.classifier_recognizer"
