"""GraNd: the norm of the loss gradient per sample (Paul et al., NeurIPS 2021).

As in DeepCore, only the last linear layer z = W f + b is used, where the gradient has a closed form: d CE / dW =
(p - onehot(y)) f^T and d CE / db = p - onehot(y), so its norm is ||p - onehot(y)||_2 * sqrt(||f||_2^2 + 1).
Computed from each expert's final eval-mode ``probs`` and penultimate ``features``, averaged over the K experts.
``mode="full"`` uses the norm over all parameters instead, computed per sample with ``torch.func`` by the proxy
stage (``pruning.proxy.full_grad_norm=true``).
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.scores.base import Score, ScoreContext

MODES = ("last_layer", "full")


def last_layer_grad_norm(record: ProxyRecord) -> np.ndarray:
    """||d CE / d (W, b)||_2 of the last linear layer per sample ``[N]``."""
    probs = record.probs.astype(np.float64)
    err = probs.copy()
    err[np.arange(len(err)), record.labels] -= 1
    feat_sq = np.square(record.features.astype(np.float64)).sum(axis=1)
    return np.linalg.norm(err, axis=1) * np.sqrt(feat_sq + 1)


class GraNdScore(Score):
    version = 1

    def __init__(self, mode: str = "last_layer") -> None:
        if mode not in MODES:
            raise ValueError(f"pruning.score.mode must be one of {list(MODES)}, got {mode!r}.")
        self.mode = mode

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        records = ctx.proxies()
        if self.mode == "last_layer":
            return np.mean([last_layer_grad_norm(r) for r in records], axis=0, dtype=np.float64)
        if any(r.grad_norm is None or np.isnan(r.grad_norm).any() for r in records):
            raise ValueError(
                "pruning.score.mode=full needs per-sample gradient norms from the proxies: "
                "set pruning.proxy.full_grad_norm=true."
            )
        return np.mean([r.grad_norm for r in records], axis=0, dtype=np.float64)
