"""Datamodules: stable indices, subsets, content hashes, and clear errors on bad folders and images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_folder

from biobench.data import CIFARDataModule, DigitsDataModule, ImageFolderDataModule


def test_digits_indices_labels_and_subset() -> None:
    dm = DigitsDataModule(val_fraction=0.1, batch_size=50)
    dm.setup("fit")
    n = len(dm.train_set)
    assert dm.num_classes == 10 and dm.in_chans == 1
    assert [dm.train_set[i]["index"] for i in (0, 5, n - 1)] == [0, 5, n - 1]
    assert len(dm.train_labels) == n and set(np.unique(dm.train_labels)) == set(range(10))

    keep = np.arange(0, n, 7)
    dm.set_train_subset(keep)
    seen = np.concatenate([b["index"].numpy() for b in dm.train_dataloader()])
    assert np.array_equal(np.sort(seen), keep)
    labels = np.concatenate([b["label"].numpy() for b in dm.train_dataloader()])
    assert np.array_equal(np.sort(labels), np.sort(dm.train_labels[keep]))  # labels travel with indices
    with pytest.raises(ValueError, match=r"indices must lie in \[0, "):
        dm.set_train_subset([0, n])
    with pytest.raises(ValueError, match="duplicates"):
        dm.set_train_subset([1, 1])


def test_shuffle_depends_only_on_seed_and_epoch() -> None:
    def order(seed: int, epoch: int) -> np.ndarray:
        dm = DigitsDataModule(seed=seed)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return np.concatenate([b["index"].numpy() for b in loader])

    assert np.array_equal(order(0, 3), order(0, 3))
    assert not np.array_equal(order(0, 3), order(0, 4))
    assert not np.array_equal(order(0, 3), order(1, 3))


def test_data_hash_tracks_content_and_split() -> None:
    base = DigitsDataModule().data_hash()
    assert base == DigitsDataModule(seed=5, batch_size=7).data_hash()  # training knobs do not matter
    assert base != DigitsDataModule(split_seed=1).data_hash()
    assert base != DigitsDataModule(val_fraction=0.2).data_hash()


def test_image_folder_reads_classes_and_hashes_files(image_folder: Path) -> None:
    dm = ImageFolderDataModule(data_dir=str(image_folder), val_fraction=0.25, batch_size=8)
    dm.setup("test")
    assert dm.classes == ["class_0", "class_1", "class_2"]
    assert dm.spec.in_chans == 3 and dm.spec.image_size == (16, 16)
    assert len(dm.train_set) + len(dm.val_set) == 36 and len(dm.test_set) == 12
    fp = dm.data_hash()
    (image_folder / "train" / "class_0" / "0000.png").unlink()
    assert ImageFolderDataModule(data_dir=str(image_folder), val_fraction=0.25).data_hash() != fp


def test_image_folder_preload_matches_lazy_decoding(image_folder: Path) -> None:
    lazy = ImageFolderDataModule(data_dir=str(image_folder))
    eager = ImageFolderDataModule(data_dir=str(image_folder), preload=True)
    lazy.setup("fit"), eager.setup("fit")
    for i in (0, 7, len(lazy.train_set) - 1):
        assert np.allclose(lazy.train_set[i]["image"], eager.train_set[i]["image"])


def test_image_folder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataModule(data_dir=str(tmp_path / "missing")).setup("fit")

    root = make_image_folder(tmp_path / "ds")
    (root / "train" / "class_9").mkdir()
    with pytest.raises(ValueError, match=r"class_9.*holds no images"):
        ImageFolderDataModule(data_dir=str(root)).setup("fit")
    (root / "train" / "class_9").rmdir()

    (root / "test" / "class_7").mkdir()
    (root / "test" / "class_0" / "0000.png").rename(root / "test" / "class_7" / "0000.png")
    with pytest.raises(ValueError, match=r"no training folder: \['class_7'\]"):
        ImageFolderDataModule(data_dir=str(root)).setup("fit")


def test_undecodable_image_is_reported_with_its_path(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "ds")
    bad = root / "train" / "class_1" / "0003.png"
    bad.write_bytes(b"not an image")
    dm = ImageFolderDataModule(data_dir=str(root), val_fraction=0.0)
    with pytest.raises(ValueError, match=r"Cannot decode image '.*class_1/0003\.png'"):
        [dm.train_set[i] for i in range(len(dm.train_set))] if dm.setup("fit") is None else None
    with pytest.raises(ValueError, match=r"0003\.png"):
        ImageFolderDataModule(data_dir=str(root), preload=True).setup("fit")


def test_cifar_missing_folder_says_where_and_what(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 not found under data\.data_dir=.*cifar-10-batches-py"):
        CIFARDataModule(data_dir=str(tmp_path)).setup("fit")
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        CIFARDataModule(data_dir=str(tmp_path), variant=100).setup("fit")


def test_real_cifar10_subset_loads_as_image_folder(cifar10_mini: Path) -> None:
    dm = ImageFolderDataModule(data_dir=str(cifar10_mini), val_fraction=0.1, preload=True)
    dm.setup("test")
    assert dm.num_classes == 10 and dm.spec.image_size == (32, 32)
    assert len(dm.train_set) == 9000 and len(dm.val_set) == 1000 and len(dm.test_set) == 2000
    assert np.bincount(dm.train_labels).min() > 850


def test_label_noise_flips_exactly_the_requested_training_labels() -> None:
    clean, noisy = DigitsDataModule(), DigitsDataModule(label_noise=0.3)
    flipped = np.flatnonzero(clean.train_labels != noisy.train_labels)
    assert np.array_equal(flipped, noisy.noisy_indices)
    assert len(flipped) == round(0.3 * len(clean.train_labels))
    clean.setup("test"), noisy.setup("test")
    assert np.array_equal(clean.val_set.values("label"), noisy.val_set.values("label"))  # evaluation labels stay clean
    assert np.array_equal(clean.test_set.values("label"), noisy.test_set.values("label"))
    assert clean.data_hash() != noisy.data_hash() and clean.data_hash() == DigitsDataModule().data_hash()
    with pytest.raises(ValueError, match=r"data\.label_noise"):
        DigitsDataModule(label_noise=1.0)
