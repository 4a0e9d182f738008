"""The training workload the benchmarks share: the folder experiments' ResNet-9 on the real CIFAR-10 subset when
../shared/data has it, otherwise the small CNN on scikit-learn's digits."""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path
from typing import Any

from biobench.data import ClassificationDataModule, DigitsDataModule, ImageFolderDataModule

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-mini.tar"


def bench_workload(tmp: str | Path, augment: bool = True) -> tuple[ClassificationDataModule, dict[str, Any]]:
    """``(datamodule, net spec)``; the CIFAR subset is extracted into ``tmp``."""
    if not SHARED_CIFAR.is_file():
        return DigitsDataModule(batch_size=64), {"name": "small_cnn"}
    with tarfile.open(SHARED_CIFAR) as tf:
        tf.extractall(tmp, filter="data")
    dm = ImageFolderDataModule(
        data_dir=f"{tmp}/cifar10-mini",
        image_size=32,
        preload=True,
        batch_size=128,
        crop_padding=4 if augment else 0,
        hflip=augment,
    )
    return dm, {"name": "resnet9", "width": 16}


def bench_args(doc: str | None, epochs: int = 2, repeats: int = 2) -> argparse.Namespace:
    """``--epochs`` and ``--repeats`` of the training benchmarks (the script's docstring as help)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--repeats", type=int, default=repeats)
    return parser.parse_args()
