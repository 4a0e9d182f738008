"""Fingerprint folders, the FingerprintDataModule (synthetic and real) and the FVC verification protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_curve

import biobench.data.fingerprints.datamodule as fp_datamodule
from biobench.data.fingerprints import FingerprintDataModule, FingerprintGenerator, read_fingerprint_folder
from biobench.data.fingerprints.export import export_fingerprints
from biobench.metrics.verification import equal_error_rate, fvc_pairs, roc, tar_at_far

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "fingerprints-real"
TINY = {"size": 128}


def _write(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 24), value, np.uint8)).save(path)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/fingerprints-real is not present")
def test_real_prints_load_through_the_fvc_reader() -> None:
    records = read_fingerprint_folder(REAL)
    assert [p.name for p in records.paths] == ["101_2.tif", "102_1.tif", "102_2.tif", "199_1.png"]
    assert records.finger_names == ["101", "102", "199"] and records.finger.tolist() == [0, 1, 1, 2]
    assert records.impression == ["2", "1", "2", "1"] and records.henry is None
    dm = FingerprintDataModule(data_dir=str(REAL), task="finger", image_size=None, test_fraction=0.34, val_fraction=0)
    genuine, impostor = fvc_pairs(records.finger, np.array([0, 0, 1, 0]))
    assert genuine.tolist() == [[1, 2]] and len(impostor) == 3
    dm.setup("test")
    image = dm.test_set[0]["image"]
    assert image.shape[0] == 1 and min(image.shape[1:]) >= 300  # 388 x 374 optical prints, grey


def test_layouts_are_detected(tmp_path: Path) -> None:
    for name in ("1_1.png", "1_2.png", "10_1.png"):
        _write(tmp_path / "fvc" / name)
    for name in ("alice/a.png", "alice/b.png", "bob/a.png"):
        _write(tmp_path / "nested" / name)
    for name in ("00002302_A_500_roll_01.png", "00002302_B_500_plain_01.png", "00002302_A_500_roll_02.png"):
        _write(tmp_path / "sd302" / "images" / name)
    fvc = read_fingerprint_folder(tmp_path / "fvc")
    assert fvc.finger_names == ["1", "10"] and fvc.finger.tolist() == [0, 0, 1]  # natural order: 1_1, 1_2, 10_1
    nested = read_fingerprint_folder(tmp_path / "nested")
    assert nested.finger_names == ["alice", "bob"] and nested.impression == ["a", "b", "a"]
    sd302 = read_fingerprint_folder(tmp_path / "sd302")
    assert sd302.finger_names == ["00002302_01", "00002302_02"]
    assert sorted(sd302.impression) == ["A_500_roll", "A_500_roll", "B_500_plain"]
    custom = read_fingerprint_folder(tmp_path / "fvc", pattern=r"(?P<finger>\d+)_(?P<impression>\d+)\.png")
    assert custom.finger.tolist() == fvc.finger.tolist()


def test_bad_fingerprint_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        read_fingerprint_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        read_fingerprint_folder(tmp_path / "empty")
    _write(tmp_path / "odd" / "1_1.png")
    _write(tmp_path / "odd" / "scan.png")
    with pytest.raises(ValueError, match="layout"):
        read_fingerprint_folder(tmp_path / "odd")
    with pytest.raises(ValueError, match=r"scan\.png"):
        read_fingerprint_folder(tmp_path / "odd", layout="fvc")
    with pytest.raises(ValueError, match="named groups"):
        read_fingerprint_folder(tmp_path / "odd", pattern=r"(\d+)")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "1_1.png").write_bytes(b"not a png")
    dm = FingerprintDataModule(data_dir=str(tmp_path / "broken"), task="finger", image_size=None)
    with pytest.raises(ValueError, match=r"1_1\.png"):
        dm.setup("fit")
    dm = FingerprintDataModule(data_dir=str(tmp_path / "fvc_only"), task="henry")
    for finger in (1, 2, 3):
        _write(tmp_path / "fvc_only" / f"{finger}_1.png")
    with pytest.raises(ValueError, match="Henry classes"):
        dm.setup("fit")


def test_fvc_protocol_pair_counts() -> None:
    fingers, impressions = 7, 5
    finger = np.repeat(np.arange(fingers), impressions)[::-1].copy()  # any sample order
    impression = np.tile(np.arange(impressions), fingers)[::-1].copy()
    genuine, impostor = fvc_pairs(finger, impression)
    assert len(genuine) == fingers * impressions * (impressions - 1) // 2
    assert len(impostor) == fingers * (fingers - 1) // 2
    assert (finger[genuine[:, 0]] == finger[genuine[:, 1]]).all()
    assert (finger[impostor[:, 0]] != finger[impostor[:, 1]]).all() and (impression[impostor] == 0).all()
    assert len({tuple(sorted(p)) for p in genuine.tolist()}) == len(genuine)  # no pair twice
    single = fvc_pairs(np.arange(4), np.zeros(4))  # one impression per finger: no genuine pair
    assert single[0].shape == (0, 2) and len(single[1]) == 6
    assert all(p.shape == (0, 2) for p in fvc_pairs(np.zeros(0), np.zeros(0)))


def test_verification_metrics_match_a_reference() -> None:
    rng = np.random.default_rng(0)
    genuine, impostor = rng.normal(2.0, 1.0, 3000), rng.normal(0.0, 1.0, 6000)
    far, tar, _ = roc(genuine, impostor)
    fpr, tpr, _ = roc_curve(np.r_[np.ones(3000), np.zeros(6000)], np.r_[genuine, impostor], drop_intermediate=False)
    np.testing.assert_allclose(far, fpr, atol=1e-12)
    np.testing.assert_allclose(tar, tpr, atol=1e-12)
    k = np.argmin(np.abs((1 - tpr) - fpr))
    assert abs(equal_error_rate(genuine, impostor) - (1 - tpr[k] + fpr[k]) / 2) < 2e-3
    for far_target in (0.001, 0.01, 0.1, 0.4):
        threshold = np.sort(impostor)[::-1][int(far_target * len(impostor))]
        assert np.mean(impostor > threshold) <= far_target  # the achieved FAR never exceeds the target
        assert tar_at_far(genuine, impostor, far_target) == pytest.approx(np.mean(genuine > threshold))
    assert tar_at_far(np.array([0.5, 2.0]), np.array([0.0, 1.0]), 0.4) == 0.5  # 1 of 2 impostors would be 50 % > 40 %
    assert equal_error_rate(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    with pytest.raises(ValueError, match="far"):
        tar_at_far(genuine, impostor, 1.5)


def test_synthetic_datamodule_splits_by_finger_and_caches(tmp_path: Path, monkeypatch) -> None:
    kwargs = dict(n_fingers=12, impressions=3, generator=TINY, image_size=64, cache_dir=str(tmp_path), gen_workers=0)
    dm = FingerprintDataModule(task="henry", val_fraction=0.2, test_fraction=0.25, **kwargs)
    dm.setup("test")
    fingers = {s: set(dm.split_labels(s)["finger"].tolist()) for s in ("train", "val", "test")}
    assert len(fingers["test"]) == 3 and len(fingers["val"]) == 2 and len(fingers["train"]) == 7
    assert not (fingers["train"] & fingers["test"]) and not (fingers["train"] & fingers["val"])
    assert len(dm.train_set) == 21 and tuple(dm.train_set[0]["image"].shape) == (1, 64, 64)
    genuine, impostor = dm.verification_pairs("test")
    assert (len(genuine), len(impostor)) == (3 * 3, 3)
    assert len(list(tmp_path.glob("fingerprints/*.npz"))) == 1

    def no_rendering(*args, **kw):
        raise AssertionError("the cached prints should have been used")

    monkeypatch.setattr(fp_datamodule, "render_fingerprints", no_rendering)
    again = FingerprintDataModule(task="finger", val_fraction=0.2, test_fraction=0.25, **kwargs)
    again.setup("fit")
    assert again.num_classes == 9 and again.data_hash() != dm.data_hash()  # other task, same images
    same = FingerprintDataModule(task="henry", val_fraction=0.2, test_fraction=0.25, **kwargs)
    assert same.data_hash() == dm.data_hash()
    monkeypatch.undo()
    more = FingerprintDataModule(task="henry", val_fraction=0.2, test_fraction=0.25, **(kwargs | {"impressions": 2}))
    assert more.data_hash() != dm.data_hash()  # other images, other split: caches and teachers must not mix


def test_bad_synthetic_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        FingerprintDataModule(n_fingers=4, impressions=1, generator=TINY, val_fraction=0.9, cache_dir=None).setup("fit")
    with pytest.raises(ValueError, match="period_range"):
        FingerprintDataModule(generator={"period_range": [12, 9]}).setup("fit")
    with pytest.raises(ValueError, match=r"generator\.impression keys"):
        FingerprintDataModule(generator={"impression": {"tilt": 3}}).setup("fit")
    with pytest.raises(ValueError, match="test_fraction"):
        FingerprintDataModule(test_fraction=1.0)


def test_exported_set_reads_back_with_labels(tmp_path: Path) -> None:
    metadata = export_fingerprints(tmp_path / "set", {"seed": 1, **TINY}, n_fingers=3, n_impressions=2)
    records = read_fingerprint_folder(tmp_path / "set")
    assert [p.name for p in records.paths] == ["1_1.png", "1_2.png", "2_1.png", "2_2.png", "3_1.png", "3_2.png"]
    generator = FingerprintGenerator(seed=1, **TINY)
    assert records.henry.tolist() == [generator.master(f).henry for f in (0, 0, 1, 1, 2, 2)]
    rows = metadata.read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("file,finger,impression,henry")
    minutiae = (tmp_path / "set" / "1_1.minutiae.csv").read_text().splitlines()
    assert minutiae[0] == "x,y,angle_deg,type" and len(minutiae) > 1
    with pytest.raises(FileExistsError, match="already holds"):
        export_fingerprints(tmp_path / "set", {"seed": 1, **TINY}, n_fingers=1, n_impressions=1)
    export_fingerprints(tmp_path / "set", {"seed": 1, **TINY}, n_fingers=1, n_impressions=1, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["1_1.minutiae.csv", "1_1.png", "metadata.csv"]
