"""Generate many fingers x impressions in parallel: into memory (datamodules) or to disk in FVC naming.

In memory (:func:`render_fingerprints`): images resized to the served size, with each print's ground truth in the
same coordinates (minutiae scaled by :meth:`Minutiae.scaled`) and its appearance attributes as numbers
(:mod:`biobench.data.fingerprints.fields`). Work is split by finger (one master, then its impressions) over
``workers`` processes, each with one torch thread; ``workers=0`` runs in this process. Files on disk:
``<finger>_<impression>.png`` (1-based, as FVC), ``<finger>_<impression>.minutiae.csv`` (``x,y,angle_deg,type``;
angle and position as in :mod:`biobench.data.fingerprints.minutiae`) and one ``metadata.csv`` with every image's
labels and attributes.
"""

from __future__ import annotations

import csv
import io
import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from biobench.data.fingerprints.fields import encode_attributes, stack_minutiae
from biobench.data.fingerprints.generator import FingerprintGenerator
from biobench.data.fingerprints.impression import Impression, ImpressionParams
from biobench.data.fingerprints.minutiae import KIND_NAMES
from biobench.data.fingerprints.orientation import HENRY_CLASSES
from biobench.utils.io import atomic_write, write_text

# Bumped whenever the arrays render_fingerprints returns change (its images: GENERATOR_VERSION), so render caches
# of an older layout are not reused (1: images and labels only; 2: with minutiae and attributes).
RENDER_VERSION = 2

METADATA_FIELDS = (
    "file", "finger", "impression", "henry", "henry_name", "period", "n_minutiae", "device", "condition",
    "pressure", "dx", "dy", "rotation", "contact", "contact_dx", "contact_dy", "distortion", "noise", "blur",
)  # fmt: skip

_worker_generator: FingerprintGenerator | None = None


def _init_worker(generator_kwargs: dict[str, Any]) -> None:
    global _worker_generator
    torch.set_num_threads(1)
    _worker_generator = FingerprintGenerator(**generator_kwargs)


def _impressions(finger: int, n_impressions: int) -> Iterator[tuple[int, Impression]]:
    for i in range(n_impressions):
        yield i, _worker_generator.impression(finger, i)


def _resized(impression: Impression, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The impression's image resized to a ``size`` square (the generator's are square) and its minutiae rows
    ``[n, 4]`` in the resized image's coordinates."""
    image = impression.image
    if size is None or image.shape == (size, size):
        return image, impression.minutiae.to_array()
    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return resized, impression.minutiae.scaled(size / image.shape[1]).to_array()


def _render_finger(
    finger: int, n_impressions: int, size: int | None
) -> tuple[np.ndarray, int, list[np.ndarray], list[ImpressionParams]]:
    """One finger's impressions: images ``[n, H, W]``, Henry class, minutiae rows and parameters per impression."""
    impressions = [imp for _, imp in _impressions(finger, n_impressions)]
    images, minutiae = zip(*(_resized(imp, size) for imp in impressions), strict=True)
    return np.stack(images), _worker_generator.master(finger).henry, list(minutiae), [i.params for i in impressions]


def _export_finger(finger: int, n_impressions: int, out_dir: str) -> list[dict[str, Any]]:
    master = _worker_generator.master(finger)
    rows = []
    for i, imp in _impressions(finger, n_impressions):
        name = f"{finger + 1}_{i + 1}"
        atomic_write(Path(out_dir) / f"{name}.png", lambda tmp, im=imp.image: Image.fromarray(im).save(tmp, "PNG"))
        write_text(Path(out_dir) / f"{name}.minutiae.csv", minutiae_csv(imp))
        rows.append(
            {"file": f"{name}.png", "finger": finger + 1, "impression": i + 1, "henry": master.henry,
             "henry_name": HENRY_CLASSES[master.henry], "period": round(master.period, 3),
             "n_minutiae": len(imp.minutiae)}
            | {k: round(v, 4) if isinstance(v, float) else v for k, v in imp.params.as_dict().items()}
        )  # fmt: skip
    return rows


def minutiae_csv(impression: Impression) -> str:
    """The impression's minutiae as CSV text: ``x,y,angle_deg,type``."""
    m = impression.minutiae
    lines = ["x,y,angle_deg,type"] + [
        f"{x:.2f},{y:.2f},{np.rad2deg(a):.2f},{KIND_NAMES[k]}"
        for (x, y), a, k in zip(m.xy, m.angle, m.kind, strict=True)
    ]
    return "\n".join(lines) + "\n"


def _map_fingers(
    task: Callable, fingers: Sequence[int], args: tuple, generator_kwargs: dict[str, Any], workers: int, desc: str
) -> list[Any]:
    """``task(finger, *args)`` for every finger, in order, over ``workers`` processes, with a progress bar."""
    fingers = [int(f) for f in fingers]
    if workers <= 0:
        _init_worker(generator_kwargs)
        threads = torch.get_num_threads()
        try:
            return [task(f, *args) for f in tqdm(fingers, desc=desc, leave=False)]
        finally:
            torch.set_num_threads(threads)
    ctx = mp.get_context("spawn")  # no torch state shared with forked children
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(generator_kwargs,)) as pool:
        jobs = pool.map(
            task, fingers, *([a] * len(fingers) for a in args), chunksize=max(1, len(fingers) // (8 * workers))
        )
        return list(tqdm(jobs, total=len(fingers), desc=desc, leave=False))


def render_fingerprints(
    generator_kwargs: dict[str, Any],
    fingers: Sequence[int],
    n_impressions: int,
    image_size: int | None = None,
    workers: int = 0,
) -> dict[str, np.ndarray]:
    """Per image, in finger-major order: ``images [N, H, W]`` uint8 (resized to ``image_size``), ``finger``,
    ``impression``, ``henry``, ``minutiae [N, M, 4]`` zero-padded to the most any print has with ``n_minutiae``,
    in the resized images' coordinates, and every appearance attribute (:data:`fields.ATTRIBUTES`)."""
    results = _map_fingers(_render_finger, fingers, (n_impressions, image_size), generator_kwargs, workers,
                           "generating fingerprints")  # fmt: skip
    images, henry, minutiae, params = zip(*results, strict=True)
    padded, counts = stack_minutiae([rows for finger_rows in minutiae for rows in finger_rows])
    return {
        "images": np.concatenate(images),
        "finger": np.repeat(np.asarray(fingers, dtype=np.int64), n_impressions),
        "impression": np.tile(np.arange(n_impressions, dtype=np.int64), len(results)),
        "henry": np.repeat(np.asarray(henry, dtype=np.int64), n_impressions),
        "minutiae": padded,
        "n_minutiae": counts,
    } | encode_attributes([p for finger_params in params for p in finger_params])


def export_fingerprints(
    out_dir: str | Path,
    generator_kwargs: dict[str, Any],
    n_fingers: int,
    n_impressions: int,
    first_finger: int = 0,
    workers: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write ``n_fingers x n_impressions`` prints to ``out_dir`` (FVC naming); returns the metadata CSV path.

    An existing export there is refused unless ``overwrite``, which first deletes the files its metadata lists.
    """
    out = Path(out_dir)
    metadata = out / "metadata.csv"
    if metadata.exists() and not overwrite:
        raise FileExistsError(f"{out} already holds an exported set ({metadata}); choose another folder or overwrite.")
    if n_fingers < 1 or n_impressions < 1:
        raise ValueError(f"Need at least one finger and one impression, got {n_fingers} x {n_impressions}.")
    out.mkdir(parents=True, exist_ok=True)
    if metadata.exists():  # overwrite: remove the previous set's files, so no stale print outlives it
        with open(metadata, newline="") as f:
            for row in csv.DictReader(f):
                (out / row["file"]).unlink(missing_ok=True)
                (out / row["file"]).with_suffix(".minutiae.csv").unlink(missing_ok=True)
        metadata.unlink()
    fingers = range(first_finger, first_finger + n_fingers)
    rows = _map_fingers(_export_finger, fingers, (n_impressions, str(out)), generator_kwargs, workers,
                        f"exporting to {out}")  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METADATA_FIELDS)
    writer.writeheader()
    writer.writerows(row for finger_rows in rows for row in finger_rows)
    return write_text(metadata, buffer.getvalue())
