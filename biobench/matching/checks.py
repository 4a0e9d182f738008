"""Input checks of the matchers: every bad template array fails here with one message naming what and expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

DTYPES = ("fp32", "bf16", "int8")
_FINITE_BLOCK = 1 << 24  # elements per min/max pass


def as_templates(x: Any, name: str, *, allow_empty: bool = True) -> Tensor:
    """``x`` as a 2-D floating tensor ``[N, D]`` of finite templates (numpy arrays are wrapped, not copied)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch tensor or numpy array [N, D], got {type(x).__name__}.")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, D] (one template per row), got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise ValueError(f"{name} must hold floating-point templates, got dtype {x.dtype}.")
    if x.shape[1] == 0:
        raise ValueError(f"{name} have dimension 0 (shape {tuple(x.shape)}); templates need D >= 1.")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} are empty (shape {tuple(x.shape)}): enrol at least one template before searching.")
    check_finite(x, name)
    return x


def check_finite(x: Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN or inf, naming how many rows and the first one."""
    rows = max(1, _FINITE_BLOCK // max(1, x.shape[1]))
    for start in range(0, x.shape[0], rows):
        low, high = torch.aminmax(x[start : start + rows])  # NaN propagates; no temporary like isfinite's
        if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
            bad = (~torch.isfinite(x).all(dim=1)).nonzero().flatten()
            raise ValueError(
                f"{name} hold non-finite values (NaN or inf) in {bad.numel()} of {x.shape[0]} rows (first: row "
                f"{int(bad[0])}); templates must be finite: check the embedder's output (e.g. a zero vector "
                "normalised to NaN)."
            )


def check_pair_dims(queries: Tensor, gallery: Tensor, query_name: str = "queries") -> None:
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"{query_name} have dimension D={queries.shape[1]} but the gallery has D={gallery.shape[1]}: probe and "
            "gallery templates must come from the same embedder."
        )


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (the number of matches per query) must be an integer >= 1, got {k!r}.")
    return int(k)


def check_positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} (the template precision of the matmul), got {dtype!r}.")
    return dtype


def check_exact(dtype: str, exact: bool) -> bool:
    """Whether ``exact`` asks for fp32 re-scoring (bf16); fp32 is exact already, int8 has no exact mode."""
    if exact and dtype == "int8":
        raise ValueError("exact=True re-scores bf16 candidates in fp32; dtype='int8' has no exact mode.")
    return bool(exact) and dtype == "bf16"


def as_ids(ids: Any, n: int, device: torch.device) -> Tensor | None:
    """Gallery identifiers as an int64 tensor ``[n]`` (``None`` keeps row indices as the ids)."""
    if ids is None:
        return None
    if isinstance(ids, Tensor):
        integral = not (ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool)
        kind = str(ids.dtype)
    else:
        ids = np.asarray(ids)
        integral, kind = ids.dtype.kind in "iu", str(ids.dtype)
    if not integral:
        raise ValueError(
            f"ids must be integers (got dtype {kind}); keep other labels in a list and index it with the returned ids."
        )
    arr = ids if isinstance(ids, Tensor) else torch.from_numpy(ids.astype(np.int64))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"ids must be 1-D with one entry per gallery template ({n}), got shape {tuple(arr.shape)}.")
    return arr.to(device=device, dtype=torch.int64)
