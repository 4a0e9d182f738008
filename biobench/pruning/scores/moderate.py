"""Moderate-DS (Xia et al., ICLR 2023, "Moderate Coreset").

d_i = L2 distance of sample i's penultimate feature (final eval pass) to the coordinate-wise median feature of its
class, averaged over the K experts. Moderate-DS keeps the samples whose distance is closest to the median distance;
here per class (as DeepCore's class-wise variant), so score = -|d_i - median_{j in class(i)} d_j|: 0 for the most
moderate samples, so keeping the top-scoring ("hard") samples keeps the moderate ones.
"""

from __future__ import annotations

import numpy as np

from biobench.pruning.scores.base import Score, ScoreContext


def median_distances(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance of each feature ``[N, D]`` to the coordinate-wise median feature of its class ``[N]``."""
    features = features.astype(np.float64)
    centres = np.empty_like(features)
    for c in np.unique(labels):
        members = labels == c
        centres[members] = np.median(features[members], axis=0)
    return np.linalg.norm(features - centres, axis=1)


def class_median(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Median of ``values`` over each sample's class ``[N]``."""
    out = np.empty_like(values)
    for c in np.unique(labels):
        members = labels == c
        out[members] = np.median(values[members])
    return out


class ModerateScore(Score):
    version = 1

    def __call__(self, ctx: ScoreContext) -> np.ndarray:
        labels = np.asarray(ctx.datamodule.train_labels)
        dist = np.mean([median_distances(r.features, labels) for r in ctx.proxies()], axis=0, dtype=np.float64)
        return -np.abs(dist - class_median(dist, labels))
