"""The image-datamodule base: unlabelled data on it, field checks, and the memoised, pinned content hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from biobench.contracts import DataModule, SubsetDataModule
from biobench.data import DigitsDataModule, ImageDataModule, ImageFolderDataModule
from biobench.data.sources import ArraySource
from biobench.utils.hashing import content_hash


class NoisePatches(ImageDataModule):
    """Unlabelled RGB patches, each served with its mean brightness (a per-sample field that is not a label)."""

    def __init__(self, n: int = 40, fields: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.images = {"train": rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8),
                       "test": rng.integers(0, 256, (n // 4, 3, 8, 8), dtype=np.uint8)}  # fmt: skip
        self.extra = fields

    def load_split(self, split: str) -> tuple[ArraySource, dict[str, np.ndarray]]:
        images = self.images[split]
        fields = {"brightness": images.mean(axis=(1, 2, 3)).astype(np.float32)}
        return ArraySource(images), fields if self.extra is None else self.extra

    def describe_content(self) -> Any:
        return content_hash(self.images["train"], self.images["test"])


def test_unlabelled_data_is_served_by_the_base() -> None:
    dm = NoisePatches(val_fraction=0.25, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), batch_size=8)
    spec = dm.spec
    assert (spec.in_chans, spec.image_size, spec.num_classes, spec.num_identities) == (3, (8, 8), None, None)
    assert spec.value_range == (0.0, 1.0)
    assert isinstance(dm, DataModule) and not isinstance(dm, SubsetDataModule)  # no labels, nothing to prune by

    sample = dm.train_set[4]
    assert set(sample) == {"image", "index", "brightness"} and sample["index"] == 4
    raw = dm.images["train"][dm.train_set.ids[4]]
    torch.testing.assert_close(spec.to_unit(sample["image"][None])[0] * 255, torch.from_numpy(raw).float())
    assert float(sample["brightness"]) == pytest.approx(raw.mean(), rel=1e-6)

    dm.set_train_subset([1, 5, 9])
    batches = list(dm.train_dataloader())
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == [1, 5, 9]
    assert len(dm.val_set) == 10 and len(next(iter(dm.test_dataloader()))["brightness"]) == 8


def test_gan_range_and_bad_fields_are_stated() -> None:
    assert NoisePatches(mean=(0.5,) * 3, std=(0.5,) * 3).spec.value_range == (-1.0, 1.0)
    with pytest.raises(ValueError, match=r"may not be named \['index'\]"):
        NoisePatches(fields={"index": np.zeros(40)}).setup("fit")
    with pytest.raises(ValueError, match=r"'brightness': 3.*one row per image \(40 images\)"):
        NoisePatches(fields={"brightness": np.zeros(3)}).setup("fit")
    with pytest.raises(ValueError, match=r"data\.mean / data\.std"):
        NoisePatches(mean=(0.5, 0.5), std=(0.5,))


def test_digits_hash_and_split_are_those_of_the_code_before_the_base_split() -> None:
    dm = DigitsDataModule()
    assert dm.data_hash() == "ec7dcbb0f1393517"
    dm.setup("test")
    assert content_hash(dm.train_set.ids, dm.val_set.ids, dm.test_set.ids) == "58d67b95c000cb99"
    noisy = DigitsDataModule(label_noise=0.2, split_seed=3)
    assert noisy.data_hash() == "478eb9ce6fa967bd"
    noisy.setup("test")
    labels = [s.values("label") for s in (noisy.train_set, noisy.val_set, noisy.test_set)]
    assert content_hash(*labels) == "9b3b5fddbc8e1038"  # the same noisy training labels, clean evaluation labels


def test_content_hash_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = DigitsDataModule.describe_content
    monkeypatch.setattr(DigitsDataModule, "describe_content", lambda self: calls.append(1) or original(self))
    dm = DigitsDataModule()
    assert dm.data_hash() == dm.data_hash() and len(calls) == 1


def test_image_folder_files_are_statted_once_however_often_the_hash_is_asked(
    image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every checkpoint save asks for the hash; only the first may list and stat the folder's files."""
    stats = []
    original = Path.stat
    monkeypatch.setattr(Path, "stat", lambda self, **kw: stats.append(self) or original(self, **kw))
    dm = ImageFolderDataModule(data_dir=str(image_folder))
    first = dm.data_hash()
    n_first = len(stats)
    assert n_first >= 48  # every one of the 48 images
    assert all(dm.data_hash() == first for _ in range(3)) and len(stats) == n_first
