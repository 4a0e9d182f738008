"""Faces as aligned chips from identity folders, split identity-disjoint (the IPR codec's face domain).

Layout: ``<data_dir>/<identity>/<photo>.<ext>`` (one folder per person, hidden folders ignored). Every photo is
aligned once as dlib's face descriptor expects its input (:class:`biobench.recognizers.FaceAligner`: dlib's frontal
detector, the largest face, 5 landmarks and ``dlib.get_face_chip``'s ``image_size`` x ``image_size`` chip with
``padding``), rounded to ``uint8`` and cached under ``cache_dir``, keyed by the photos' content (relative paths and
the SHA-256 of their bytes), the aligner's settings and :data:`ALIGN_VERSION`. A cache hit needs no dlib.

Photos in which dlib finds no face are skipped: they are named in a warning (on every setup) and in
:attr:`FaceDataModule.skipped`, never served. Splits are identity-disjoint (:mod:`biobench.data.identities`), and an
identity needs 2 chips (a genuine pair) to validate or test: the test and validation identities are the first such
identities of the seeded order; identities left with 1 chip train (a codec or a classifier still learns from one
photo), identities with none are gone. So every evaluation identity has >= 2 chips, and a photo that fails to align
never breaks a run or forces another ``split_seed``; the split depends on which photos align, which the data hash
covers.

Every sample is ``{"image", "index", "label", "identity", "impression"}``: ``identity`` is the global identity id
(the rank of its folder name), ``impression`` the photo's rank within its identity folder (file names sorted;
skipped photos keep their rank), and ``label`` the dense training-identity id (within its own split for validation /
test identities). Images are served as ``(chip - mean) / std``; the default 0 / 1 serves [0, 1] (codecs).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from biobench.data.identities import IdentityDataModule
from biobench.data.image_folder import scan_split
from biobench.data.sources import ArraySource, read_image
from biobench.utils.cache import cached_arrays
from biobench.utils.hashing import content_hash

if TYPE_CHECKING:
    from biobench.recognizers.dlib_face import FaceAligner

ALIGN_VERSION = 1  # bump when the chips of the same photos and settings change
log = logging.getLogger(__name__)


class FaceDataModule(IdentityDataModule):
    """Aligned face chips of ``<data_dir>/<identity>/<photo>`` (module docstring).

    Args:
        data_dir: the folder of identity folders.
        image_size, padding: the chip's side and dlib's margin around the landmarks (150 / 0.25: what dlib's face
            descriptor was trained on).
        upsample: times dlib's detector upsamples a photo (1 finds faces down to ~40 px).
        landmarks: dlib's ``shape_predictor_5_face_landmarks.dat`` (default: face_recognition_models').
        test_fraction: fraction of the identities held out for testing.
        cache_dir: where the chips are cached (``None``: align on every setup).
        kwargs: :class:`~biobench.data.base.ImageDataModule`'s (batch size, ``val_fraction``, ``split_seed``, ...).

    After the chips are loaded (setup, the spec or the hash), :attr:`skipped` lists the photos (relative paths) in
    which dlib found no face.
    """

    identity_key = "identity"
    min_eval_images = 2

    def __init__(
        self,
        data_dir: str,
        image_size: int = 150,
        padding: float = 0.25,
        upsample: int = 1,
        landmarks: str | None = None,
        test_fraction: float = 0.4,
        cache_dir: str | None = None,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(test_fraction=test_fraction, mean=mean, std=std, **kwargs)
        if image_size < 1 or padding < 0 or upsample < 0:
            raise ValueError(
                f"data.image_size must be >= 1, data.padding >= 0 and data.upsample >= 0, got {image_size}, "
                f"{padding}, {upsample}."
            )
        self.data_dir = Path(data_dir)
        self._image_size = image_size
        self.padding, self.upsample, self.landmarks = padding, upsample, landmarks
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.skipped: list[str] = []

    # -- the photos and their chips ----------------------------------------------------------------------
    @cached_property
    def _folders(self) -> dict[str, list[Path]]:
        """``{identity name: sorted photo files}``."""
        if not self.data_dir.is_dir():
            raise FileNotFoundError(
                f"data.data_dir='{self.data_dir}' does not exist: expected face photos in identity folders, "
                "'<data_dir>/<identity>/<photo>.jpg'."
            )
        return scan_split(self.data_dir, kind="identity")

    @cached_property
    def _content_key(self) -> str:
        """Hash of the photos' relative paths and bytes."""
        photos = [p for ps in self._folders.values() for p in ps]
        return content_hash(
            [str(p.relative_to(self.data_dir)) for p in photos],
            [hashlib.sha256(p.read_bytes()).hexdigest() for p in photos],
        )

    @property
    def aligner_settings(self) -> dict[str, Any]:
        return {"size": self._image_size, "padding": self.padding, "upsample": self.upsample,
                "landmarks": self.landmarks}  # fmt: skip

    def build_aligner(self) -> FaceAligner:
        """dlib's aligner at these settings (a missing ``faces`` extra is named)."""
        needed = ("dlib",) if self.landmarks is not None else ("dlib", "face_recognition_models")
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(
                f"FaceDataModule aligns the photos of '{self.data_dir}' with dlib's face detector and landmarks, "
                f"which need {' and '.join(missing)} (not installed): pip install 'biobench[faces]'."
            )
        from biobench.recognizers.dlib_face import FaceAligner  # only on a cache miss: data does not load recognizers

        return FaceAligner(self.landmarks, self._image_size, self.padding, self.upsample)

    def align_photos(self, photos: list[Path]) -> dict[str, np.ndarray]:
        """``chips`` (uint8 ``[N, 3, S, S]``, zeros where no face was found) and ``found`` ``[N]`` of the photos."""
        aligner = self.build_aligner()
        size = self._image_size
        chips, found = np.zeros((len(photos), 3, size, size), dtype=np.uint8), np.zeros(len(photos), dtype=bool)
        for i, path in enumerate(tqdm(photos, desc=f"aligning faces in {self.data_dir.name}", leave=False)):
            pixels = read_image(path, channels=3)
            details = aligner.chip_details(np.ascontiguousarray(pixels.permute(1, 2, 0).numpy()))
            if details is not None:
                chip = aligner.align(pixels.float() / 255, details)
                chips[i], found[i] = (chip.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), True
        return {"chips": chips, "found": found}

    @cached_property
    def _all(self) -> tuple[ArraySource, dict[str, np.ndarray]]:
        """The chips of the photos with a face and their fields (aligned once, then read from the cache)."""
        folders = self._folders
        photos = [p for ps in folders.values() for p in ps]
        identity = np.concatenate([np.full(len(ps), k, dtype=np.int64) for k, ps in enumerate(folders.values())])
        rank = np.concatenate([np.arange(len(ps), dtype=np.int64) for ps in folders.values()])
        arrays, _ = cached_arrays(
            self.cache_dir, "faces", (ALIGN_VERSION, self.aligner_settings), self._content_key, len(photos),
            lambda: self.align_photos(photos),
        )  # fmt: skip
        found = arrays["found"]
        self.skipped = [str(p.relative_to(self.data_dir)) for p, ok in zip(photos, found, strict=True) if not ok]
        if self.skipped:
            log.warning(
                "dlib found no face in %d of %d photos of '%s'; they are skipped: %s.",
                len(self.skipped), len(photos), self.data_dir, ", ".join(self.skipped),
            )  # fmt: skip
        fields = {"identity": identity[found], "impression": rank[found]}
        return ArraySource(arrays["chips"][found]), fields

    # -- IdentityDataModule ------------------------------------------------------------------------------
    @property
    def identities(self) -> np.ndarray:
        return self._all[1]["identity"]

    def load_all(self) -> tuple[ArraySource, dict[str, np.ndarray]]:
        return self._all

    def identity_names(self, ids: np.ndarray) -> list[str]:
        names = list(self._folders)
        return [names[i] for i in ids]

    @property
    def image_size(self) -> int:
        return self._image_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self._image_size, self._image_size)

    def describe_content(self) -> Any:
        return {"photos": self._content_key, "aligner": self.aligner_settings, "version": ALIGN_VERSION,
                "test_fraction": self.test_fraction}  # fmt: skip
