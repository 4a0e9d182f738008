"""Agreement of an approximate search (IVF-PQ, bf16, int8) with exact search, from their index lists."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def _indices(x: Any, name: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [Q, k] gallery indices, got shape {tuple(x.shape)}.")
    return x.long().cpu()


def recall_at_k(approx_indices: Any, exact_indices: Any, k: int = 1) -> float:
    """Share of queries whose exact nearest gallery row is among the first ``k`` approximate ones (faiss' R@k)."""
    approx, exact = _indices(approx_indices, "approx_indices"), _indices(exact_indices, "exact_indices")
    if approx.shape[0] != exact.shape[0] or exact.shape[1] < 1 or not 1 <= k <= approx.shape[1]:
        raise ValueError(f"recall@{k}: need the same queries and k <= approx columns, got approx {tuple(approx.shape)} "
                         f"and exact {tuple(exact.shape)}.")  # fmt: skip
    if approx.shape[0] == 0:
        return float("nan")
    return float((approx[:, :k] == exact[:, :1]).any(dim=1).float().mean())


def recall_at_1(approx_indices: Any, exact_indices: Any) -> float:
    """Share of queries whose approximate best match is the exact best match."""
    return recall_at_k(approx_indices, exact_indices, 1)


def topk_agreement(approx_indices: Any, exact_indices: Any) -> float:
    """Mean share of the exact top-k that the approximate top-k holds (k-recall@k; order ignored)."""
    approx, exact = _indices(approx_indices, "approx_indices"), _indices(exact_indices, "exact_indices")
    if approx.shape != exact.shape:
        raise ValueError(f"topk_agreement needs equal shapes, got {tuple(approx.shape)} and {tuple(exact.shape)}.")
    if approx.numel() == 0:
        return float("nan")
    hits = (approx[:, :, None] == exact[:, None, :]).any(dim=2)
    return float(hits.float().mean())
