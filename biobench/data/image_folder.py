"""Any dataset in ImageFolder layout: ``<data_dir>/train/<class>/*`` and ``<data_dir>/test/<class>/*``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from biobench.data.classification import ClassificationDataModule
from biobench.data.sources import IMAGE_EXTENSIONS, ArraySource, FileSource, image_hw


def scan_split(split_dir: Path, kind: str = "class") -> dict[str, list[Path]]:
    """``{<kind> name: sorted image files}`` of one split folder (one sub-folder per class or identity); empty
    sub-folders are an error."""
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"Image folder split '{split_dir}' not found: expected '{split_dir.parent}/{{train,test}}/<class>/<image>'."
        )
    classes = sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"'{split_dir}' has no {kind} folders: expected '{split_dir}/<{kind}>/<image>'.")
    files = {}
    for d in classes:
        images = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise ValueError(
                f"{kind.capitalize()} folder '{d}' holds no images (extensions {', '.join(IMAGE_EXTENSIONS)})."
            )
        files[d.name] = images
    return files


class ImageFolderDataModule(ClassificationDataModule):
    """Class = sub-folder name. Test classes must be a subset of train classes.

    ``image_size`` resizes every image to a square (needed when sizes differ and for random crops); without it the
    spec reports the size of the first training file (images of different sizes cannot be batched). ``preload``
    decodes all images once into memory (fast epochs for small images such as CIFAR).
    """

    def __init__(
        self, data_dir: str, channels: int = 3, image_size: int | None = None, preload: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3, got {channels}.")
        self.channels = channels
        self._image_size = image_size
        self.preload = preload

    @property
    def image_size(self) -> int | None:
        return self._image_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self._image_size is not None:
            return (self.channels, self._image_size, self._image_size)
        return (self.channels, *image_hw(self._listing("train")[0][0]))

    @cached_property
    def _files(self) -> dict[str, dict[str, list[Path]]]:
        if not self.data_dir.is_dir():
            raise FileNotFoundError(
                f"data.data_dir='{self.data_dir}' does not exist: expected an ImageFolder dataset with "
                "'train/<class>/<image>' and 'test/<class>/<image>'."
            )
        files = {split: scan_split(self.data_dir / split) for split in ("train", "test")}
        unknown = sorted(set(files["test"]) - set(files["train"]))
        if unknown:
            raise ValueError(
                f"'{self.data_dir / 'test'}' has classes with no training folder: {unknown}; every test class "
                f"needs '{self.data_dir / 'train'}/<class>/'."
            )
        return files

    @property
    def classes(self) -> list[str]:
        return list(self._files["train"])

    def _listing(self, split: str) -> tuple[list[Path], np.ndarray]:
        index = {c: i for i, c in enumerate(self.classes)}
        pairs = [(f, index[c]) for c, fs in self._files[split].items() for f in fs]
        return [p for p, _ in pairs], np.array([y for _, y in pairs], dtype=np.int64)

    def load_split(self, split: str) -> tuple[FileSource | ArraySource, dict[str, np.ndarray]]:
        paths, labels = self._listing(split)
        source = FileSource(paths, self.channels, self._image_size)
        if self.preload:
            source = source.preload(desc=f"decoding {self.data_dir.name}/{split}")
        return source, {"label": labels}

    def describe_content(self) -> Any:
        out = {"channels": self.channels, "image_size": self._image_size}
        for split in ("train", "test"):
            paths, labels = self._listing(split)
            rel = [str(p.relative_to(self.data_dir)) for p in paths]
            sizes = [p.stat().st_size for p in paths]
            out[split] = [rel, labels.tolist(), sizes]
        return out
