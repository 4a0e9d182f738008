"""Where image pixels come from: an in-memory uint8 array or a list of files on disk.

A source returns one image as a ``uint8`` tensor ``[C, H, W]``; datasets add labels, indices and transforms.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


class ArraySource:
    """Images held in memory as one ``uint8`` tensor ``[N, C, H, W]``."""

    def __init__(self, images: torch.Tensor | np.ndarray) -> None:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"ArraySource expects uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}.")
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> torch.Tensor:
        return self.images[i]


def read_image(path: str | Path, channels: int = 3, size: int | None = None) -> torch.Tensor:
    """Decode one image file to ``uint8 [C, H, W]``; an unreadable file raises an error naming it."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return TF.pil_to_tensor(img)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"Cannot decode image '{path}': {err}. Remove or replace the file.") from err


def image_hw(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file, from its header (nothing decoded); an unreadable file raises an error naming it."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"Cannot read image '{path}': {err}. Remove or replace the file.") from err


class FileSource:
    """Images decoded from files on demand (optionally resized to a square ``size``)."""

    def __init__(self, paths: Sequence[str | Path], channels: int = 3, size: int | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.channels = channels
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> torch.Tensor:
        return read_image(self.paths[i], self.channels, self.size)

    def preload(self, desc: str = "decoding images") -> ArraySource:
        """Decode every file once into memory (all images must share one size)."""
        images = [self.load(i) for i in tqdm(range(len(self)), desc=desc, leave=False)]
        shapes = {tuple(im.shape) for im in images}
        if len(shapes) > 1:
            raise ValueError(
                f"Cannot preload images of different sizes {sorted(shapes)[:3]}...; set data.image_size "
                "to resize them to one size, or preload=false."
            )
        return ArraySource(torch.stack(images))
