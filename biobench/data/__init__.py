"""LightningDataModules and datasets: the image base (:mod:`.base`), classification on it (:mod:`.classification`)
and the datasets (digits, image folders, CIFAR, fingerprints)."""

from biobench.data.base import ImageDataModule, ImageSamples
from biobench.data.cifar import CIFARDataModule
from biobench.data.classification import ClassificationDataModule
from biobench.data.digits import DigitsDataModule
from biobench.data.fingerprints import FingerprintDataModule
from biobench.data.image_folder import ImageFolderDataModule

__all__ = [
    "CIFARDataModule",
    "ClassificationDataModule",
    "DigitsDataModule",
    "FingerprintDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageSamples",
]
