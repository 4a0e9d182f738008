"""On-disk cache of computed arrays (proxy records, scores, teacher logits), keyed by content, verified on load.

A file is only used when its stored data_hash and sample count match the data at hand; a corrupt or
foreign file is reported and recomputed, never used silently. Writes are atomic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from biobench.utils.hashing import content_hash
from biobench.utils.io import atomic_write

log = logging.getLogger(__name__)


def cache_path(cache_dir: Path, kind: str, *key_parts: Any) -> Path:
    """``<cache_dir>/<kind>/<hash of key_parts>.npz``."""
    return Path(cache_dir) / kind / f"{content_hash(*key_parts)}.npz"


def save_arrays(path: Path, arrays: dict[str, np.ndarray], data_hash: str) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, _data_hash=np.array(data_hash), **arrays)

    return atomic_write(path, write)


def load_arrays(path: Path, data_hash: str, num_samples: int) -> dict[str, np.ndarray] | None:
    """The cached arrays, or ``None`` (with a warning) when the file is missing, corrupt or for other data."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # a truncated or foreign file: recompute
        log.warning("Ignoring unreadable cache file %s (%s); recomputing.", path, err)
        return None
    stored = str(arrays.pop("_data_hash", ""))
    sizes = {len(a) for a in arrays.values() if a.ndim > 0}
    if stored != data_hash or sizes != {num_samples}:
        log.warning(
            "Ignoring cache file %s: made for data %s with %s samples, not %s with %d; recomputing.",
            path,
            stored,
            sizes,
            data_hash,
            num_samples,
        )
        return None
    return arrays


def cached_arrays(
    cache_dir: Path | None,
    kind: str,
    key: tuple,
    data_hash: str,
    num_samples: int,
    compute: Callable[[], dict[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], bool]:
    """``(arrays, hit)``: load from the cache or compute and store. ``cache_dir=None`` disables caching."""
    if cache_dir is None:
        return compute(), False
    path = cache_path(cache_dir, kind, data_hash, *key)
    arrays = load_arrays(path, data_hash, num_samples)
    if arrays is not None:
        log.info("Cache hit: %s", path)
        return arrays, True
    arrays = compute()
    save_arrays(path, arrays, data_hash)
    return arrays, False
