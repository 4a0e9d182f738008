"""The PyTorch port of dlib's face descriptor: dlib's numbers on real photos, its alignment, the Recognizer contract and
the errors on bad files."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from biobench.contracts import DataSpec
from biobench.recognizers.dlib_face import (
    DESCRIPTOR_FILE,
    LANDMARKS_FILE,
    DlibFaceNet,
    DlibFaceRecognizer,
    FaceAligner,
    dlib_face_recognizer,
    face_model_path,
)
from biobench.recognizers.dlib_format import DlibFormatError, read_dlib_metric_net

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-real"
SPEC = DataSpec(in_chans=3, image_size=None, mean=(0.0,), std=(1.0,))
HAVE_MODELS = importlib.util.find_spec("face_recognition_models") is not None
HAVE_DLIB = importlib.util.find_spec("dlib") is not None

needs_models = pytest.mark.skipif(
    not HAVE_MODELS, reason="face_recognition_models (dlib's weight files) is not installed"
)
needs_dlib = pytest.mark.skipif(
    not (HAVE_MODELS and HAVE_DLIB and FACES.is_dir()),
    reason="needs dlib, face_recognition_models and ../shared/data/faces-real",
)


pytestmark = pytest.mark.usefixtures("one_thread")  # single images / tiny GEMMs: faster on one thread


@pytest.fixture(scope="module")
def recognizer() -> DlibFaceRecognizer:
    return dlib_face_recognizer(SPEC)


@pytest.fixture(scope="module")
def dlib_side():
    """dlib's own descriptor network and the aligner (dlib's detector + 5 landmarks)."""
    import dlib

    return dlib.face_recognition_model_v1(str(face_model_path(DESCRIPTOR_FILE))), FaceAligner()


def photo(person: int, k: int = 0) -> np.ndarray:
    """The ``k``-th photo (sorted by name) of ``person_<NN>``, H x W x 3 uint8."""
    path = sorted((FACES / f"person_{person:02d}").glob("*.jpg"))[k]
    return np.array(Image.open(path).convert("RGB"))


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255


@needs_dlib
def test_descriptor_reproduces_dlib(recognizer, dlib_side):
    import dlib

    net, aligner = dlib_side
    for person in (0, 4, 9):
        pixels = photo(person)
        chip = dlib.get_face_chip(pixels, aligner.landmarks(pixels), 150, 0.25)  # both see dlib's own chip
        ref = torch.tensor(list(net.compute_face_descriptor(chip)))
        with torch.no_grad():
            ours = recognizer.descriptor(to_tensor(chip)[None])[0].double()
        assert (ours - ref).abs().max() < 1e-5  # measured 2-4e-7 (float32 summation order)


@needs_dlib
@pytest.mark.parametrize(("upscale", "truncations"), [(1, 1), (3, 2)])  # x3: a face over 2x the chip, one halving
def test_torch_chip_matches_dlib_chip(recognizer, dlib_side, upscale, truncations):
    import dlib

    net, aligner = dlib_side
    image = Image.fromarray(photo(2))
    pixels = np.array(image.resize((image.width * upscale, image.height * upscale), Image.BICUBIC))
    shape = aligner.landmarks(pixels)
    details = dlib.get_face_chip_details(shape, 150, 0.25)
    ref_chip = torch.from_numpy(dlib.get_face_chip(pixels, shape, 150, 0.25)).permute(2, 0, 1).float()
    chip = aligner.align(to_tensor(pixels), details)
    diff = chip * 255 - ref_chip  # dlib truncates the chip (and each pyramid level) to integers, this does not
    assert diff.min() > -0.01 and diff.max() < truncations + 0.01
    assert abs(diff.mean() - 0.5 * truncations) < 0.1
    with torch.no_grad():
        ours = recognizer.descriptor(chip[None])[0].double()
    ref = torch.tensor(list(net.compute_face_descriptor(pixels, shape)))
    assert torch.linalg.vector_norm(ours - ref) < 0.02  # measured 0.003-0.007, against dlib's threshold 0.6


@needs_dlib
def test_same_person_closer_than_different_persons(recognizer, dlib_side):
    _, aligner = dlib_side
    persons = (0, 1, 2)
    with torch.no_grad():
        desc = torch.cat(
            [recognizer.descriptor(aligner.align(to_tensor(photo(p, k)))[None]) for p in persons for k in (0, 1)]
        )
    dist = torch.cdist(desc, desc)
    ids = torch.tensor(persons).repeat_interleave(2)
    same = (ids[:, None] == ids[None]) & ~torch.eye(len(ids), dtype=torch.bool)
    different = ids[:, None] != ids[None]
    assert dist[same].max() < recognizer.threshold < dist[different].min()  # measured 0.35-0.45 vs >= 0.66


@needs_models
def test_recognizer_is_frozen_and_differentiable(recognizer):
    chips = torch.rand(2, 3, 150, 150, requires_grad=True)
    recognizer.train()
    emb = recognizer.embed(chips)
    assert emb.shape == (2, 128) and torch.allclose(emb.norm(dim=1), torch.ones(2))
    assert not recognizer.training and not any(p.requires_grad for p in recognizer.parameters())
    assert recognizer.threshold == pytest.approx(0.6)
    emb[0].sum().backward()
    assert chips.grad[0].abs().sum() > 0 and torch.isfinite(chips.grad).all()
    assert chips.grad[1].abs().sum() == 0


@needs_dlib
def test_aligned_chip_is_differentiable_wrt_the_photo(dlib_side):
    _, aligner = dlib_side
    image = to_tensor(photo(5)).requires_grad_()
    aligner.align(image).mean().backward()
    assert image.grad.abs().sum() > 0 and torch.isfinite(image.grad).all()


@needs_models
def test_bad_weight_files_get_clear_errors(tmp_path):
    path = face_model_path(DESCRIPTOR_FILE)
    with pytest.raises(FileNotFoundError, match=r"missing\.dat"):
        dlib_face_recognizer(SPEC, tmp_path / "missing.dat")
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(path.read_bytes()[:1_000_000])
    for bad in (garbage, truncated, face_model_path(LANDMARKS_FILE)):
        with pytest.raises(DlibFormatError, match="is not a dlib metric network file as expected") as err:
            dlib_face_recognizer(SPEC, bad)
        assert str(bad) in str(err.value)
    with pytest.raises(DlibFormatError, match="truncated at byte"):
        dlib_face_recognizer(SPEC, truncated)
    parsed = read_dlib_metric_net(path)
    with pytest.raises(DlibFormatError, match="expected avg_pool fc"):
        DlibFaceNet(replace(parsed, layers=parsed.layers[:-1]))


def test_missing_packages_get_clear_errors(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install face-recognition-models"):
        face_model_path(DESCRIPTOR_FILE)
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(ImportError, match="dlib-bin"):
        FaceAligner(landmarks="unused.dat")
