"""Synthetic fingerprints (SFinGe-style masters and impressions) and readers for real fingerprint folders."""

from biobench.data.fingerprints.datamodule import FingerprintDataModule
from biobench.data.fingerprints.dataset import SyntheticFingerprints
from biobench.data.fingerprints.generator import FingerprintGenerator
from biobench.data.fingerprints.impression import PRESETS, Impression, ImpressionParams, ImpressionRanges
from biobench.data.fingerprints.master import MasterFingerprint
from biobench.data.fingerprints.minutiae import Minutiae
from biobench.data.fingerprints.orientation import HENRY_CLASSES
from biobench.data.fingerprints.readers import FingerprintRecords, read_fingerprint_folder

__all__ = [
    "HENRY_CLASSES",
    "PRESETS",
    "FingerprintDataModule",
    "FingerprintGenerator",
    "FingerprintRecords",
    "Impression",
    "ImpressionParams",
    "ImpressionRanges",
    "MasterFingerprint",
    "Minutiae",
    "SyntheticFingerprints",
    "read_fingerprint_folder",
]
