"""Short, stable content hashes used to key caches and to tie files to a dataset."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def content_hash(*parts: Any, length: int = 16) -> str:
    """Hash strings, JSON-able objects and numpy arrays into a short hex digest."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode())
            h.update(str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:length]
