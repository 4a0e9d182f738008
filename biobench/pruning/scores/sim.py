"""SIM: separability, integrity and model uncertainty (Grosz et al., "Data Pruning via Separability, Integrity,
and Model Uncertainty-Aware Importance Sampling", ICPR 2024). The exact formulas are not public; this is our
reading of the published description (see docs/pruning.md), with every term switchable for ablations.

Per expert, with L2-normalised penultimate features f^ and class centres c_k = mean of f^ over class k, and
d_P = ||f^ - c_y||, d_N = min_{k != y} ||f^ - c_k|| (the Recognizability-Index idea), three terms in [0, 1]:
- separability: d_N / (d_N + d_P), a bounded monotone form of the ratio d_N / d_P (0.5 = on the border);
- integrity: the raw feature norm ||f|| over its 99th percentile, clipped to 1;
- model uncertainty term: 1 - JSD among the K experts' final predictions (generalised JSD / log K).
Separability and integrity are averaged over experts, then combined into a quality q (``product``: a sample bad
in any term is bad, or weighted ``sum``): high q = separable, intact, agreed upon. biobench scores are hardness
(higher = harder), so the score is ``1 - q``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biobench.pruning.scores.base import Score, ScoreContext

TERMS = ("separability", "integrity", "uncertainty")


def rank_normalize(x: np.ndarray) -> np.ndarray:
    """Map values to (0, 1] by their rank (ties share the mean rank)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ranks = np.bincount(inverse, weights=ranks) / counts  # mean rank per distinct value
    return ranks[inverse] / len(x)


def separability(features: np.ndarray, labels: np.ndarray, num_classes: int, eps: float = 1e-8) -> np.ndarray:
    """d_N / (d_N + d_P) on L2-normalised features against per-class mean centres."""
    f = features / (np.linalg.norm(features, axis=1, keepdims=True) + eps)
    onehot = np.eye(num_classes, dtype=f.dtype)[labels]  # [N, C]
    counts = onehot.sum(0)
    centres = (onehot.T @ f) / np.maximum(counts, 1)[:, None]
    sq = (f**2).sum(1)[:, None] - 2 * f @ centres.T + (centres**2).sum(1)[None]
    dist = np.sqrt(np.maximum(sq, 0))
    dist[:, counts == 0] = np.inf
    rows = np.arange(len(labels))
    d_pos = dist[rows, labels]
    dist[rows, labels] = np.inf
    d_neg = dist.min(1)
    return d_neg / (d_neg + d_pos + eps)


def integrity(features: np.ndarray) -> np.ndarray:
    """Feature norm relative to the 99th percentile of norms, clipped to [0, 1]."""
    norms = np.linalg.norm(features, axis=1)
    return np.clip(norms / max(np.percentile(norms, 99), 1e-12), 0.0, 1.0)


def expert_agreement(probs: Sequence[np.ndarray], eps: float = 1e-12) -> np.ndarray:
    """1 - generalised Jensen-Shannon divergence of the experts' predictions, normalised by log K."""
    p = np.stack(probs).astype(np.float64)  # [K, N, C]
    if len(p) < 2:
        return np.ones(p.shape[1])

    def entropy(q: np.ndarray) -> np.ndarray:
        return -(q * np.log(q + eps)).sum(-1)

    jsd = entropy(p.mean(0)) - entropy(p).mean(0)
    return 1.0 - np.clip(jsd / np.log(len(p)), 0.0, 1.0)


class SIMScore(Score):
    """Hardness ``1 - q`` with q the combination of the enabled SIM terms (see module docstring)."""

    version = 1

    def __init__(
        self,
        separability: bool = True,
        integrity: bool = True,
        uncertainty: bool = True,
        combine: str = "product",
        weights: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> None:
        if combine not in ("product", "sum"):
            raise ValueError(f"pruning.score.combine must be 'product' or 'sum', got '{combine}'.")
        if not (separability or integrity or uncertainty):
            raise ValueError("pruning.score: enable at least one of separability, integrity, uncertainty.")
        if len(weights) != 3 or min(weights) < 0:
            raise ValueError(f"pruning.score.weights must be 3 non-negative numbers, got {list(weights)}.")
        self.separability, self.integrity, self.uncertainty = separability, integrity, uncertainty
        self.combine = combine
        self.weights = [float(w) for w in weights]

    def terms(self, ctx: ScoreContext) -> dict[str, np.ndarray]:
        """The enabled terms, each ``[N]`` in [0, 1]; higher = better quality."""
        experts = ctx.proxies()
        labels = np.asarray(ctx.datamodule.train_labels)
        num_classes = experts[0].probs.shape[1]
        out = {}
        if self.separability:
            out["separability"] = np.mean([separability(e.features, labels, num_classes) for e in experts], 0)
        if self.integrity:
            out["integrity"] = np.mean([integrity(e.features) for e in experts], 0)
        if self.uncertainty:
            out["uncertainty"] = expert_agreement([e.probs for e in experts])
        return out

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        terms = self.terms(ctx)
        w = dict(zip(TERMS, self.weights, strict=True))
        if self.combine == "product":
            quality = np.prod([t ** w[k] for k, t in terms.items()], axis=0)
        else:
            total = sum(w[k] for k in terms) or 1.0
            quality = sum(w[k] * t for k, t in terms.items()) / total
        return 1.0 - quality
