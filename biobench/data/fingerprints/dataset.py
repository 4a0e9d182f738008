"""``SyntheticFingerprints``: a map-style dataset rendering impressions on the fly, with all their labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from biobench.data.fingerprints.fields import encode_attributes, stack_minutiae
from biobench.data.fingerprints.generator import FingerprintGenerator


class SyntheticFingerprints(Dataset):
    """``n_fingers x impressions`` prints of a generator, sample ``i`` = finger ``first_finger + i // impressions``.

    Each sample: ``image`` (uint8 ``[1, H, W]``, or ``transform(image)``), ``label`` (= ``finger``), ``finger``,
    ``impression``, ``henry``, ``index``, ``minutiae`` ``[max_minutiae, 4]`` with ``n_minutiae`` and the appearance
    attributes (device, condition, pressure, rotation, ...) as numbers: the keys and encoding of
    :class:`FingerprintDataModule` samples (:mod:`biobench.data.fingerprints.fields`). Masters are cached per worker
    by the generator (LRU, ``generator.cache_size``): reading the impressions of a finger in a row renders it once,
    while shuffled access over more fingers than the cache holds re-renders masters (~0.6 s each); for training,
    render once with ``FingerprintDataModule`` (cached on disk) or raise ``cache_size``.
    """

    def __init__(
        self,
        generator: FingerprintGenerator | dict[str, Any],
        n_fingers: int,
        impressions: int,
        first_finger: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        max_minutiae: int = 128,
    ) -> None:
        if n_fingers < 1 or impressions < 1:
            raise ValueError(
                f"SyntheticFingerprints needs >= 1 finger and impression, got {n_fingers} x {impressions}."
            )
        self.generator = generator if isinstance(generator, FingerprintGenerator) else FingerprintGenerator(**generator)
        self.n_fingers, self.impressions, self.first_finger = n_fingers, impressions, first_finger
        self.transform = transform
        self.max_minutiae = max_minutiae

    def __len__(self) -> int:
        return self.n_fingers * self.impressions

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"SyntheticFingerprints index {index} out of range [0, {len(self)}).")
        finger, impression = self.first_finger + index // self.impressions, index % self.impressions
        imp = self.generator.impression(finger, impression)
        image = torch.from_numpy(imp.image)[None]
        minutiae, n_minutiae = stack_minutiae([imp.minutiae.to_array()], self.max_minutiae)
        return {
            "image": self.transform(image) if self.transform else image,
            "label": finger,
            "finger": finger,
            "impression": impression,
            "henry": self.generator.master(finger).henry,
            "index": index,
            "minutiae": torch.from_numpy(minutiae[0]),
            "n_minutiae": int(n_minutiae[0]),
        } | {k: torch.as_tensor(v[0]) for k, v in encode_attributes([imp.params]).items()}
