"""Every datamodule's data spec: known before any setup where cheap, and equal to what its loaders serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_cifar_folder, make_image_folder

from biobench.contracts import DataSpec, SubsetDataModule
from biobench.data import CIFARDataModule, DigitsDataModule, FingerprintDataModule, ImageFolderDataModule
from biobench.data.base import ImageDataModule

TINY_PRINTS = dict(n_fingers=10, impressions=2, generator={"size": 128}, cache_dir=None, val_fraction=0.25)


def _check_served(dm: ImageDataModule, spec: DataSpec) -> None:
    """The spec (asked before any setup) matches a served batch of every split."""
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        assert tuple(batch["image"].shape[1:]) == (spec.in_chans, *spec.image_size)
        lo, hi = spec.value_range
        assert lo - 1e-5 <= batch["image"].min() and batch["image"].max() <= hi + 1e-5
    if spec.num_classes is not None:
        assert dm.train_labels.max() < spec.num_classes and isinstance(dm, SubsetDataModule)
    assert dm.spec == spec


def test_digits_and_cifar_specs_need_no_data(tmp_path: Path) -> None:
    digits = DigitsDataModule(mean=(0.0,), std=(1.0,))
    spec = digits.spec
    assert spec == DataSpec(1, (8, 8), (0.0,), (1.0,), num_classes=10) and digits.train_set is None
    _check_served(digits, spec)

    cifar = CIFARDataModule(data_dir=str(make_cifar_folder(tmp_path, variant=100)), variant=100, batch_size=8)
    spec = cifar.spec
    assert (spec.in_chans, spec.image_size, spec.num_classes) == (3, (32, 32), 100)
    assert "_data" not in cifar.__dict__  # only the meta file was read
    _check_served(cifar, spec)


@pytest.mark.parametrize("image_size", [None, 12])
def test_image_folder_spec_reads_one_header_at_most(tmp_path: Path, image_size: int | None) -> None:
    dm = ImageFolderDataModule(data_dir=str(make_image_folder(tmp_path)), image_size=image_size, batch_size=8)
    spec = dm.spec
    side = image_size or 16
    assert (spec.in_chans, spec.image_size, spec.num_classes, spec.num_identities) == (3, (side, side), 3, None)
    assert dm.train_set is None and spec.mean == (0.5,) and spec.value_range == (-1.0, 1.0)
    _check_served(dm, spec)


@pytest.mark.parametrize(("task", "classes"), [("henry", 5), ("finger", 6)])
def test_fingerprint_spec_renders_nothing(task: str, classes: int) -> None:
    dm = FingerprintDataModule(task=task, image_size=64, test_fraction=0.2, batch_size=4, **TINY_PRINTS)
    spec = dm.spec  # 10 fingers: 2 test, 2 of the 8 others validation, 6 training
    assert (spec.in_chans, spec.image_size, spec.num_classes, spec.num_identities) == (1, (64, 64), classes, 6)
    assert "_all" not in dm.__dict__
    _check_served(dm, spec)
    assert FingerprintDataModule(image_size=None, **TINY_PRINTS).spec.image_size == (128, 128)
