"""FaceDataModule: aligned chips of identity folders, their content-keyed cache, identity-disjoint splits, skipped
photos and the errors; on the real photos of ../shared/data/faces-real (with dlib) and on synthetic folders (without:
a stand-in aligner)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from biobench.data import FaceDataModule
from biobench.data import faces as faces_module

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-real"
HAVE_DLIB = all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))
needs_faces = pytest.mark.skipif(
    not (HAVE_DLIB and FACES.is_dir()), reason="needs dlib, face_recognition_models and ../shared/data/faces-real"
)


class NoAligning(FaceDataModule):
    def build_aligner(self) -> Any:
        raise AssertionError("the cached chips should have been used")


# -- the real photos -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> FaceDataModule:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dm = FaceDataModule(str(FACES), cache_dir=str(tmp_path_factory.mktemp("faces")), batch_size=64)
    dm.setup("test")
    yield dm
    torch.set_num_threads(threads)


@needs_faces
def test_real_photos_are_served_as_aligned_chips_and_cached(real: FaceDataModule) -> None:
    assert real.skipped == []  # dlib finds a face in all 61 photos
    batch = next(iter(real.test_dataloader()))
    assert set(batch) == {"image", "index", "label", "identity", "impression"}
    assert batch["image"].shape == (len(real.test_set), 3, 150, 150) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1 and batch["image"].std() > 0.1
    spec = real.spec
    assert (spec.in_chans, spec.image_size, spec.num_identities, spec.value_range) == (3, (150, 150), 7, (0.0, 1.0))

    files = list((real.cache_dir / "faces").glob("*.npz"))
    assert len(files) == 1
    again = NoAligning(str(FACES), cache_dir=str(real.cache_dir))
    again.setup("test")
    assert torch.equal(again.test_set[0]["image"], real.test_set[0]["image"])
    assert again.describe_content() == real.describe_content()  # the hash's content part (it names the class too)


@needs_faces
def test_real_splits_are_identity_disjoint_with_pairs_to_verify(real: FaceDataModule) -> None:
    identities = {s: real.split_labels(s)["identity"] for s in ("train", "val", "test")}
    assert [len(np.unique(identities[s])) for s in ("train", "val", "test")] == [7, 1, 5]
    assert sum(len(v) for v in identities.values()) == 61
    assert not set(identities["train"]) & (set(identities["val"]) | set(identities["test"]))
    assert not set(identities["val"]) & set(identities["test"])
    for split in ("val", "test"):
        assert np.unique(identities[split], return_counts=True)[1].min() >= 2
    train_ids = np.unique(identities["train"])
    np.testing.assert_array_equal(real.train_labels, np.searchsorted(train_ids, identities["train"]))
    genuine, impostor = real.verification_pairs("test")
    assert len(genuine) > 0 and len(impostor) == 5 * 4 // 2


@needs_faces
def test_chips_are_dlibs_own_chips(real: FaceDataModule) -> None:
    import dlib

    from biobench.recognizers import FaceAligner

    aligner = FaceAligner()
    for k in (0, len(real.test_set) - 1):
        sample = real.test_set[k]
        name = real.identity_names([int(sample["identity"])])[0]
        photo = np.array(Image.open(sorted((FACES / name).iterdir())[int(sample["impression"])]).convert("RGB"))
        chip = dlib.get_face_chip(photo, aligner.landmarks(photo), 150, 0.25)
        served = sample["image"].permute(1, 2, 0).numpy() * 255
        assert np.abs(served - chip).max() <= 1.01  # dlib truncates the chip, we round it


@needs_faces
def test_the_dlib_descriptor_tells_test_identities_apart(real: FaceDataModule) -> None:
    from biobench.recognizers import dlib_face_recognizer

    recognizer = dlib_face_recognizer(spec=real.spec)
    batch = next(iter(real.test_dataloader()))
    with torch.no_grad():
        embeddings = recognizer.embed(batch["image"])
    cosine = embeddings @ embeddings.T
    same = batch["identity"][:, None] == batch["identity"][None, :]
    genuine = cosine[same & ~torch.eye(len(same), dtype=torch.bool)]
    impostor = cosine[~same]
    assert genuine.mean() > impostor.mean() + 0.1  # measured: 0.973 vs 0.827 (dlib's distances 0.26 vs 0.58)


# -- synthetic folders, a stand-in aligner (no dlib) --------------------------------------------------------------
class StandInAligner:
    """A face wherever the photo is not black; the chip is the photo itself."""

    def __init__(self) -> None:
        self.calls = 0

    def chip_details(self, pixels: np.ndarray) -> Any:
        self.calls += 1
        return "face" if pixels.any() else None

    def align(self, image: torch.Tensor, details: Any) -> torch.Tensor:
        return image


class StandInFaces(FaceDataModule):
    def __init__(self, data_dir: Path, **kwargs: Any) -> None:
        super().__init__(str(data_dir), image_size=8, **kwargs)
        self.aligner = StandInAligner()

    def build_aligner(self) -> StandInAligner:
        return self.aligner


def _photo(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


# photos per identity; 0 = black, no face: d keeps 1 chip, e none
PEOPLE = {"a": [10, 20, 30], "b": [40, 50, 60], "c": [70, 80], "d": [0, 90], "e": [0], "f": [100, 110]}


@pytest.fixture
def people(tmp_path: Path) -> Path:
    for name, values in PEOPLE.items():
        for k, value in enumerate(values):
            _photo(tmp_path / "people" / name / f"{k}.png", value)
    return tmp_path / "people"


def test_photos_without_a_face_are_skipped_and_never_evaluated(people: Path, tmp_path: Path, caplog) -> None:
    dm = StandInFaces(people, cache_dir=str(tmp_path / "cache"), test_fraction=0.4, val_fraction=0.34)
    with caplog.at_level(logging.WARNING, logger=faces_module.__name__):
        dm.setup("test")
    assert dm.skipped == ["d/0.png", "e/0.png"] and "2 of 13 photos" in caplog.text and "e/0.png" in caplog.text
    split = {k: dm.identity_names(v) for k, v in dm.identity_split.items()}
    assert "d" in split["train"] and "e" not in {n for names in split.values() for n in names}  # 1 chip: train; 0: gone
    assert (len(split["test"]), len(split["val"])) == (2, 1)
    assert dm.num_identities == len(split["train"]) == 2
    sample = next(s for s in dm.train_set if dm.identity_names([int(s["identity"])]) == ["d"])
    assert int(sample["impression"]) == 1 and int(sample["identity"]) == 3  # rank among d's photos; folder rank
    assert sample["image"].shape == (3, 8, 8) and torch.allclose(sample["image"], torch.tensor(90 / 255))

    again = StandInFaces(people, cache_dir=str(tmp_path / "cache"), test_fraction=0.4, val_fraction=0.34)
    again.setup("test")
    assert again.aligner.calls == 0 and again.skipped == dm.skipped and again.data_hash() == dm.data_hash()
    _photo(people / "a" / "0.png", 11)  # other bytes: other chips
    changed = StandInFaces(people, cache_dir=str(tmp_path / "cache"), test_fraction=0.4, val_fraction=0.34)
    changed.setup("test")
    assert changed.aligner.calls == 13 and changed.data_hash() != dm.data_hash()
    assert len(list((tmp_path / "cache" / "faces").glob("*.npz"))) == 2


def test_too_few_identities_with_pairs_is_a_clear_error(people: Path) -> None:
    for name in ("g", "h"):
        _photo(people / name / "0.png", 120)
    with pytest.raises(ValueError, match=r"test_fraction=0.8 asks for 6 test identities, but only 4 .* >= 2 images"):
        StandInFaces(people, cache_dir=None, test_fraction=0.8).setup("fit")
    evaluation = StandInFaces(people, cache_dir=None, test_fraction=1.0)
    evaluation.setup("test")
    assert evaluation.identity_names(np.unique(evaluation.test_set.values("identity"))) == ["a", "b", "c", "f"]


def test_bad_folders_and_files_are_named(tmp_path: Path, people: Path, monkeypatch) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere.*identity folders"):
        FaceDataModule(str(tmp_path / "nowhere")).setup("fit")
    _photo(tmp_path / "flat" / "x.png", 50)
    with pytest.raises(ValueError, match="no identity folders"):
        FaceDataModule(str(tmp_path / "flat")).setup("fit")
    (people / "c" / "broken.jpg").write_bytes(b"not a photo")
    with pytest.raises(ValueError, match=r"c/broken\.jpg"):
        StandInFaces(people).setup("fit")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dlib" else real_find_spec(name))
    with pytest.raises(ImportError, match=r"dlib .*biobench\[faces\]"):
        FaceDataModule(str(people)).setup("fit")
