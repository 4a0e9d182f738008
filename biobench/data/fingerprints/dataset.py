"""``SyntheticFingerprints``: a map-style dataset rendering impressions on the fly, with all their labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from biobench.data.fingerprints.generator import FingerprintGenerator


class SyntheticFingerprints(Dataset):
    """``n_fingers x impressions`` prints of a generator, sample ``i`` = finger ``first_finger + i // impressions``.

    Each sample: ``image`` (uint8 ``[1, H, W]``, or ``transform(image)``), ``label`` (= ``finger``), ``finger``,
    ``impression``, ``henry``, ``index``, the appearance ``attributes`` (device, condition, pressure, rotation, ...)
    and ``minutiae`` as a fixed-size ``[max_minutiae, 4]`` float tensor of rows ``(x, y, angle, kind)`` padded with
    zeros, the first ``n_minutiae`` valid, so the default collate batches it. Masters are cached per worker by the
    generator (LRU, ``generator.cache_size``): reading the impressions of a finger in a row renders it once, while
    shuffled access over more fingers than the cache holds re-renders masters (~0.6 s each); for training, render
    once with ``FingerprintDataModule`` (cached on disk) or raise ``cache_size``.
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
        rows = imp.minutiae.to_array()[: self.max_minutiae]
        minutiae = np.zeros((self.max_minutiae, 4), dtype=np.float32)
        minutiae[: len(rows)] = rows
        return {
            "image": self.transform(image) if self.transform else image,
            "label": finger,
            "finger": finger,
            "impression": impression,
            "henry": self.generator.master(finger).henry,
            "index": index,
            "attributes": imp.params.as_dict(),
            "minutiae": torch.from_numpy(minutiae),
            "n_minutiae": len(rows),
        }
