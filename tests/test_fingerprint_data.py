"""Fingerprint folders, the FingerprintDataModule (synthetic and real) and the FVC verification protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_curve

import biobench.data.fingerprints.datamodule as fp_datamodule
from biobench.data.fingerprints import FingerprintDataModule, FingerprintGenerator, read_fingerprint_folder
from biobench.data.fingerprints.export import export_fingerprints
from biobench.data.fingerprints.impression import CONDITIONS, DEVICES
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
    assert again.num_classes == again.num_identities == 7  # training fingers only
    assert again.data_hash() != dm.data_hash()  # other task, same images
    same = FingerprintDataModule(task="henry", val_fraction=0.2, test_fraction=0.25, **kwargs)
    assert same.data_hash() == dm.data_hash() == "a3c613b3f23a4670"  # the value before the data-layer split
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
        FingerprintDataModule(test_fraction=1.5)


def test_test_fraction_one_serves_every_finger_for_evaluation_only() -> None:
    dm = FingerprintDataModule(n_fingers=4, impressions=2, generator={"seed": 1, **TINY}, task="finger",
                               test_fraction=1.0)  # fmt: skip
    dm.setup("test")
    assert len(dm.test_set) == 8 and sorted(set(dm.test_set.fields["finger"].tolist())) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="evaluation only"):
        dm.setup("fit")


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


SETTINGS = dict(n_fingers=8, impressions=2, generator={"seed": 2, **TINY}, val_fraction=0.34, test_fraction=0.25)
SAMPLE_KEYS = {"image", "index", "label", "finger", "impression", "minutiae", "n_minutiae"}
ATTRIBUTE_KEYS = {"henry", "device", "condition", "pressure", "rotation", "dx", "dy", "contact", "distortion"}


@pytest.fixture(scope="module")
def render_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def finger_data(render_dir: str) -> FingerprintDataModule:
    """Synthetic task=finger prints rendered at 128 px, served at 96 px (8 fingers: 4 train, 2 val, 2 test)."""
    dm = FingerprintDataModule(task="finger", image_size=96, cache_dir=render_dir, batch_size=4, **SETTINGS)
    assert dm.spec.num_identities == 4 and dm.train_set is None and "_all" not in dm.__dict__  # spec renders nothing
    dm.setup("test")
    return dm


def _impression(finger: int, impression: int):
    return FingerprintGenerator(seed=2, **TINY).impression(finger, impression)


def test_served_minutiae_are_the_generators_ground_truth_at_the_served_size(finger_data, render_dir, monkeypatch):
    for dataset in (finger_data.train_set, finger_data.val_set, finger_data.test_set):
        for i in (0, len(dataset) - 1):
            sample = dataset[i]
            imp = _impression(int(sample["finger"]), int(sample["impression"]))
            expected = imp.minutiae.to_array()
            expected[:, :2] = (expected[:, :2] + 0.5) * (96 / TINY["size"]) - 0.5  # pixel centres, as PIL resizes
            n = int(sample["n_minutiae"])
            assert n == len(expected) > 0 and sample["minutiae"].shape == (128, 4)
            np.testing.assert_allclose(sample["minutiae"][:n].numpy(), expected, atol=1e-4)
            assert not sample["minutiae"][n:].any()  # zero padding
            assert int(sample["device"]) == DEVICES.index(imp.params.device)
            assert int(sample["condition"]) == CONDITIONS.index(imp.params.condition)
            assert float(sample["pressure"]) == pytest.approx(imp.params.pressure, rel=1e-6)

    monkeypatch.setattr(fp_datamodule, "render_fingerprints", lambda *a, **k: pytest.fail("the cache holds it all"))
    cached = FingerprintDataModule(task="henry", image_size=96, cache_dir=render_dir, **SETTINGS)
    cached.setup("fit")
    for key in ("minutiae", "n_minutiae", "finger", "rotation"):
        np.testing.assert_array_equal(cached.train_set[3][key], finger_data.train_set[3][key])


def test_unresized_prints_serve_the_ground_truth_unchanged(tmp_path: Path) -> None:
    dm = FingerprintDataModule(task="finger", image_size=None, cache_dir=None, max_minutiae=96, **SETTINGS)
    assert dm.spec.image_size == (TINY["size"], TINY["size"])
    dm.setup("fit")
    sample = dm.train_set[1]
    expected = _impression(int(sample["finger"]), int(sample["impression"])).minutiae.to_array()
    assert sample["minutiae"].shape == (96, 4) and tuple(sample["image"].shape) == (1, 128, 128)
    np.testing.assert_array_equal(sample["minutiae"][: len(expected)].numpy(), expected)
    with pytest.raises(ValueError, match=r"max_minutiae=3.*data\.max_minutiae"):
        FingerprintDataModule(task="finger", image_size=None, cache_dir=None, max_minutiae=3, **SETTINGS).setup("fit")


def test_identities_are_the_training_fingers_and_label_them_densely(finger_data) -> None:
    fingers = {s: finger_data.split_labels(s)["finger"] for s in ("train", "val", "test")}
    train_fingers = np.unique(fingers["train"])
    assert finger_data.num_identities == len(train_fingers) == 4 == finger_data.num_classes
    assert not set(train_fingers) & (set(fingers["val"]) | set(fingers["test"]))
    np.testing.assert_array_equal(finger_data.train_labels, np.searchsorted(train_fingers, fingers["train"]))
    assert finger_data.spec.num_identities == 4 and finger_data.spec.num_classes == 4
    henry = FingerprintDataModule(task="henry", image_size=96, cache_dir=None, **SETTINGS)
    assert henry.spec.num_classes == 5 and henry.spec.num_identities == 4


@pytest.mark.parametrize("task, values", [("device", DEVICES), ("condition", CONDITIONS)])
def test_appearance_attribute_tasks_label_every_print_by_its_attribute(task: str, values: tuple[str, ...]) -> None:
    dm = FingerprintDataModule(task=task, image_size=96, cache_dir=None, **SETTINGS)
    assert dm.classes == list(values) and dm.spec.num_classes == len(values)
    batch = next(iter(dm.train_eval_dataloader()))
    assert torch.equal(batch["label"], batch[task])  # the generator's ground truth, as served beside it


def test_attribute_tasks_need_synthetic_prints(tmp_path: Path) -> None:
    for finger in range(1, 7):
        _write(tmp_path / "fvc" / f"{finger}_1.png")
    dm = FingerprintDataModule(data_dir=str(tmp_path / "fvc"), task="condition", image_size=None, test_fraction=0.34)
    with pytest.raises(ValueError, match="task=condition needs the generator's appearance labels"):
        dm.setup("fit")


def test_every_sample_has_the_keys_and_batches(finger_data) -> None:
    loaders = (finger_data.train_dataloader(), finger_data.val_dataloader(), finger_data.test_dataloader())
    for loader in loaders:
        batch = next(iter(loader))
        assert set(batch) >= SAMPLE_KEYS | ATTRIBUTE_KEYS
        b = len(batch["index"])
        assert batch["image"].shape == (b, 1, 96, 96) and batch["minutiae"].shape == (b, 128, 4)
        assert batch["device"].dtype == torch.int64 and batch["pressure"].dtype == torch.float32
        assert all(len(v) == b for v in batch.values())


def test_real_folders_serve_no_minutiae_and_no_attributes(tmp_path: Path) -> None:
    for finger in range(1, 7):
        for impression in (1, 2):
            _write(tmp_path / "fvc" / f"{finger}_{impression}.png", value=20 * finger)
    dm = FingerprintDataModule(data_dir=str(tmp_path / "fvc"), task="finger", image_size=None, batch_size=16,
                               val_fraction=0.25, test_fraction=0.34)  # fmt: skip
    spec = dm.spec
    assert (spec.in_chans, spec.image_size, spec.num_identities) == (1, (20, 24), 3) and dm.train_set is None
    batch = next(iter(dm.train_eval_dataloader()))  # in index order
    assert set(batch) == SAMPLE_KEYS and batch["image"].shape == (6, 1, 20, 24)
    assert not batch["n_minutiae"].any() and not batch["minutiae"].any()
    assert batch["finger"].tolist() == dm.split_labels("train")["finger"].tolist()
