"""FPGAN-Control's phase 2: the attribute controller (encoding, determinism, learning an attribute -> w_app map), the
controller system's labelled samples and checks, and controlled export."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_fpgan_export import checkpoint as gan_checkpoint  # noqa: F401 (a fixture)

from biobench.contracts import DataSpec
from biobench.data.fingerprints.fields import CATEGORIES
from biobench.models.fpgan_controller import (
    CONTROLLER_SYSTEM,
    SPLIT_SEEDS,
    AttributeController,
    FPGANController,
    content_hash_int,
    load_controller,
    parse_request,
)
from biobench.models.fpgan_export import RequestedAppearance, export_generated, load_generator
from biobench.models.nets.loading import TRAINING_SPEC_KEY
from biobench.models.pruned_classifier import PrunedClassifier

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = DataSpec(1, (32, 32), (0.5,), (0.5,))
VALUES = {"condition": CATEGORIES["condition"], "device": CATEGORIES["device"]}


def predictor_checkpoint(path: Path, classes: int, seed: int) -> Path:
    """An (untrained) biobench classifier checkpoint of ``classes`` classes on the GAN's 32 px [-1, 1] images."""
    torch.manual_seed(seed)
    model = PrunedClassifier({"name": "small_cnn", "width": 8}, classes, 1, partial(torch.optim.SGD, lr=0.1))
    torch.save({"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict(),
                TRAINING_SPEC_KEY: SPEC.as_dict()}, path)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def predictors(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predictors")
    return {name: predictor_checkpoint(root / f"{name}.ckpt", 3, seed) for seed, name in enumerate(VALUES)}


def controller_system(gan: Path, predictors: dict[str, Path], cache: Path | None = None, **kw) -> FPGANController:
    torch.manual_seed(0)
    return FPGANController(SPEC, str(gan), {k: str(v) for k, v in predictors.items()}, {"hidden": 16, "layers": 2},
                           partial(torch.optim.Adam, lr=1e-2), {"batch_size": 8}, cache_dir=cache, **kw)  # fmt: skip


def test_requests_are_encoded_one_hot_and_the_controller_is_deterministic() -> None:
    torch.manual_seed(0)
    controller = AttributeController(VALUES, out_dim=5, hidden=8, layers=2)
    labels = controller.indices(
        [{"condition": "wet", "device": "optical"}, parse_request("device=rolled_ink,condition=dry")]
    )
    assert labels.tolist() == [[2, 0], [0, 2]]
    assert controller.one_hot(labels).tolist() == [[0, 0, 1, 1, 0, 0], [1, 0, 0, 0, 0, 1]]
    torch.manual_seed(0)
    twin = AttributeController(VALUES, out_dim=5, hidden=8, layers=2)
    assert torch.equal(controller(labels), controller(labels)) and torch.equal(controller(labels), twin(labels))


def test_requests_the_controller_was_not_trained_on_are_refused() -> None:
    controller = AttributeController(VALUES, out_dim=5)
    with pytest.raises(ValueError, match=r"'soaked' is not a value of 'condition' the controller knows \(dry, normal"):
        controller.indices([{"condition": "soaked", "device": "optical"}])
    with pytest.raises(ValueError, match=r"unknown \['pressure'\], missing \['device'\]"):
        controller.indices([{"condition": "wet", "pressure": "high"}])
    with pytest.raises(ValueError, match="expected attribute=value"):
        parse_request("wet")


def test_the_controller_learns_each_values_appearance() -> None:
    """Samples whose w_app is a per-(condition, device) code plus noise: fitted with L1, the controller's output for a
    request lands on that request's code, far closer than the codes' mean does."""
    gen = torch.Generator().manual_seed(0)
    codes = torch.randn(3, 3, 6, generator=gen)
    labels = torch.randint(0, 3, (600, 2), generator=gen)
    w_app = codes[labels[:, 0], labels[:, 1]] + 0.05 * torch.randn(600, 6, generator=gen)
    torch.manual_seed(0)
    controller = AttributeController(VALUES, out_dim=6, hidden=32, layers=2)
    optimizer = torch.optim.Adam(controller.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.l1_loss(controller(labels), w_app).backward()
        optimizer.step()
    grid = torch.cartesian_prod(torch.arange(3), torch.arange(3))
    with torch.no_grad():
        error = (controller(grid) - codes[grid[:, 0], grid[:, 1]]).abs().mean()
    mean_error = (codes.reshape(9, 6).mean(0) - codes.reshape(9, 6)).abs().mean()
    assert error < 0.1 * mean_error, (float(error), float(mean_error))


def test_the_system_labels_generated_samples_once_and_checks_its_parts(gan_checkpoint, predictors, tmp_path) -> None:  # noqa: F811
    model = controller_system(gan_checkpoint, predictors, tmp_path / "cache")
    samples = model.label_samples("train", 20)
    assert samples["w_app"].shape == (20, 8) and samples["labels"].shape == (20, 2)
    assert int(samples["labels"].max()) < 3 and len(list((tmp_path / "cache").rglob("*.npz"))) == 1
    again = controller_system(gan_checkpoint, predictors, tmp_path / "cache").label_samples("train", 20)  # cached
    assert all(torch.equal(samples[k], again[k]) for k in samples)
    assert not torch.equal(samples["w_app"], model.label_samples("val", 20)["w_app"])  # each split its own latents

    g = load_generator(gan_checkpoint)  # the first chunk again: labels are the predictors' verdicts on its images
    rng = torch.Generator().manual_seed(content_hash_int(0, SPLIT_SEEDS["train"], 0))
    z_id, z_app = torch.randn(8, g.identity_dim, generator=rng), torch.randn(8, g.appearance_dim, generator=rng)
    with torch.no_grad():
        w = g.mapping(z_id, z_app)
        verdicts = model.predict(g.synthesis(w, g.make_noise(8, rng)))
    assert torch.equal(verdicts, samples["labels"][:8]) and torch.allclose(g.split_w(w)[1], samples["w_app"][:8])

    two_class = predictor_checkpoint(tmp_path / "two.ckpt", 2, 5)
    with pytest.raises(ValueError, match=r"two\.ckpt' of 'device' has 2 classes, 'device' has 3"):
        controller_system(gan_checkpoint, {**predictors, "device": two_class})
    with pytest.raises(ValueError, match="must name predictors of"):
        controller_system(gan_checkpoint, {"pressure": predictors["device"]})
    with pytest.raises(ValueError, match=r"generates 32 px x 1 channels, the data is set for \(64, 64\)"):
        FPGANController(DataSpec(1, (64, 64), (0.5,), (0.5,)), str(gan_checkpoint),
                        {k: str(v) for k, v in predictors.items()}, {}, partial(torch.optim.Adam))  # fmt: skip


def test_a_controlled_export_shows_the_requested_appearance(gan_checkpoint, predictors, tmp_path) -> None:  # noqa: F811
    model = controller_system(gan_checkpoint, predictors)
    path = tmp_path / "controller.ckpt"
    state = {k: v for k, v in model.state_dict().items() if k.startswith("controller.")}
    torch.save({"system": CONTROLLER_SYSTEM, "hyper_parameters": dict(model.hparams), "state_dict": state}, path)
    controller = load_controller(path, gan=gan_checkpoint)
    assert all(torch.equal(v, state[f"controller.{k}"]) for k, v in controller.state_dict().items())

    asked = ["condition=wet,device=optical", "condition=wet,device=optical", "condition=dry,device=capacitive"]
    with torch.no_grad():
        w_app = controller(controller.indices([parse_request(a) for a in asked]))
    g = load_generator(gan_checkpoint)
    out = export_generated(g, tmp_path / "set", 2, 3, requested=RequestedAppearance(w_app, tuple(asked))).parent
    pixels = {p.name: np.asarray(Image.open(p), np.int16) for p in out.glob("*_*.png")}
    for identity in (1, 2):  # the same request twice: the same print; another request: another print
        assert np.array_equal(pixels[f"{identity}_1.png"], pixels[f"{identity}_2.png"])
        assert not np.array_equal(pixels[f"{identity}_1.png"], pixels[f"{identity}_3.png"])
    with open(out / "metadata.csv", newline="") as f:
        assert [r["requested"] for r in csv.DictReader(f)] == asked * 2

    other = tmp_path / "other_gan.ckpt"
    other.write_bytes(gan_checkpoint.read_bytes() + b"x")
    with pytest.raises(ValueError, match="was fitted for the generator"):
        load_controller(path, gan=other)
    with pytest.raises(ValueError, match="is not an FPGAN-Control controller's"):
        load_controller(gan_checkpoint)
