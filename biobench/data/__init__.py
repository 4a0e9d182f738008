"""LightningDataModules and datasets."""

from biobench.data.base import ClassificationDataModule
from biobench.data.cifar import CIFARDataModule
from biobench.data.digits import DigitsDataModule
from biobench.data.fingerprints import FingerprintDataModule
from biobench.data.image_folder import ImageFolderDataModule

__all__ = [
    "CIFARDataModule",
    "ClassificationDataModule",
    "DigitsDataModule",
    "FingerprintDataModule",
    "ImageFolderDataModule",
]
