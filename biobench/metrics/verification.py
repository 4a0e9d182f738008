"""Verification metrics (functional core): FVC comparison pairs, ROC, TAR at a FAR, and the equal error rate.

Scores are similarities (higher = more likely the same finger). Conventions (FVC / NIST):

- genuine pairs: every pair of impressions of the same finger; impostor pairs: the first impression of every
  finger against the first impression of every other finger;
- ``TAR@FAR=x``: the threshold is the ``(1 - x)`` quantile of the impostor scores -- taken as the score of the
  ``floor(x * n) + 1``-th best impostor, so at most a share ``x`` of impostors scores above it -- and TAR is the
  share of genuine scores above it (the achieved FAR never exceeds ``x``);
- EER: the error rate where the false accept rate equals the false reject rate (linear interpolation between
  the two ROC points that bracket the crossing).
"""

from __future__ import annotations

import numpy as np


def fvc_pairs(finger: np.ndarray, impression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(genuine [G, 2], impostor [I, 2])`` of the FVC protocol over samples labelled by finger.

    ``impression`` orders the impressions of a finger; the lowest one is its "first" impression. With F fingers
    of m impressions each, G = F m (m - 1) / 2 and I = F (F - 1) / 2.
    """
    finger, impression = np.asarray(finger), np.asarray(impression)
    if finger.size == 0 and impression.size == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
    if finger.shape != impression.shape or finger.ndim != 1:
        raise ValueError(f"fvc_pairs: finger and impression must be equal-length 1-D arrays, got {finger.shape} "
                         f"and {impression.shape}.")  # fmt: skip
    order = np.lexsort((impression, finger))
    sorted_fingers = finger[order]
    starts = np.flatnonzero(np.r_[True, sorted_fingers[1:] != sorted_fingers[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    genuine = []
    for size in np.unique(sizes[sizes > 1]):
        i, j = np.triu_indices(size, k=1)
        group_starts = starts[sizes == size][:, None]
        genuine.append(np.stack([order[group_starts + i], order[group_starts + j]], axis=-1).reshape(-1, 2))
    firsts = order[starts]
    i, j = np.triu_indices(len(firsts), k=1)
    genuine_pairs = np.concatenate(genuine) if genuine else np.zeros((0, 2), dtype=np.int64)
    return genuine_pairs.astype(np.int64), np.stack([firsts[i], firsts[j]], axis=1).astype(np.int64)


def _check_scores(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    genuine, impostor = np.asarray(genuine, dtype=np.float64).ravel(), np.asarray(impostor, dtype=np.float64).ravel()
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError(f"Verification needs genuine and impostor scores, got {len(genuine)} and {len(impostor)}.")
    return genuine, impostor


def roc(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, tar, thresholds)`` for accepting scores ``>= threshold``, thresholds decreasing (from +inf)."""
    genuine, impostor = _check_scores(genuine, impostor)
    thresholds = np.r_[np.inf, np.unique(np.concatenate([genuine, impostor]))[::-1]]
    g, i = np.sort(genuine), np.sort(impostor)
    tar = 1.0 - np.searchsorted(g, thresholds, side="left") / len(g)
    far = 1.0 - np.searchsorted(i, thresholds, side="left") / len(i)
    return far, tar, thresholds


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    """Share of genuine scores above the threshold that at most a ``far`` share of impostor scores exceed."""
    genuine, impostor = _check_scores(genuine, impostor)
    if not 0.0 < far < 1.0:
        raise ValueError(f"tar_at_far: far must be in (0, 1), got {far}.")
    ranked = np.sort(impostor)[::-1]
    threshold = ranked[min(int(np.floor(far * len(ranked))), len(ranked) - 1)]
    return float(np.mean(genuine > threshold))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Error rate where FAR = FRR along the ROC."""
    far, tar, _ = roc(genuine, impostor)
    frr = 1.0 - tar
    k = int(np.argmax(far >= frr))  # first point where FAR has caught up with the falling FRR
    if k == 0:
        return float(far[0])
    d0, d1 = frr[k - 1] - far[k - 1], frr[k] - far[k]
    w = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(far[k - 1] + w * (far[k] - far[k - 1]))
