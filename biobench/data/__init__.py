"""LightningDataModules and datasets: the image base (:mod:`.base`), classification on it (:mod:`.classification`)
identity-disjoint data (:mod:`.identities`) and the datasets (digits, image folders, CIFAR, fingerprints, faces)."""

from biobench.data.base import ImageDataModule, ImageSamples
from biobench.data.cifar import CIFARDataModule
from biobench.data.classification import ClassificationDataModule
from biobench.data.digits import DigitsDataModule
from biobench.data.faces import FaceDataModule
from biobench.data.fingerprints import FingerprintDataModule
from biobench.data.identities import IdentityDataModule
from biobench.data.image_folder import ImageFolderDataModule

__all__ = [
    "CIFARDataModule",
    "ClassificationDataModule",
    "DigitsDataModule",
    "FaceDataModule",
    "FingerprintDataModule",
    "IdentityDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageSamples",
]
