"""Minutiae: ground truth extracted from a master's ridge skeleton, and carried through impressions.

Extraction: binarise the ridge map, thin it to a one-pixel skeleton (Zhang-Suen, vectorised), and take
skeleton pixels with crossing number 1 (ridge ending) or 3 (bifurcation). Detections closer than 3 px of the
same type are merged; pairs closer than ``min_distance`` (spurs, bridges, short breaks: artefacts of thinning,
not of the pattern) are removed, as are points near the area's border.

Direction convention (radians, image coordinates, x right / y down): the ridge direction at the point, oriented
away from the ridge pixels around it. For an ending this points out of the ridge end; for a bifurcation (two
branches on one side, the stem on the other) it points along the stem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

ENDING, BIFURCATION = 0, 1
KIND_NAMES = ("ending", "bifurcation")


@dataclass(frozen=True)
class Minutiae:
    """``xy [N, 2]`` pixels, ``angle [N]`` radians in ``[0, 2 pi)``, ``kind [N]`` (ENDING or BIFURCATION)."""

    xy: np.ndarray
    angle: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.angle)

    def select(self, keep: np.ndarray) -> Minutiae:
        return Minutiae(self.xy[keep], self.angle[keep], self.kind[keep])

    def scaled(self, factor: float) -> Minutiae:
        """The minutiae of the image resized by ``factor`` in x and y (angles unchanged: the scaling is isotropic).

        Pixel centres sit at integer coordinates, as in PIL's and torch's (``align_corners=False``) resizing, so a
        point moves to ``(x + 0.5) * factor - 0.5``.
        """
        return Minutiae((self.xy + 0.5) * factor - 0.5, self.angle, self.kind)

    def to_array(self) -> np.ndarray:
        """``[N, 4]`` float32 rows ``(x, y, angle, kind)``."""
        return np.column_stack([self.xy, self.angle, self.kind]).astype(np.float32).reshape(-1, 4)


def depth(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest pixel outside ``mask`` (the image border counts as outside)."""
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


def _neighbours(img: np.ndarray) -> list[np.ndarray]:
    """The 8 neighbours P2..P9 (N, NE, E, SE, S, SW, W, NW) of every pixel, zero outside the image."""
    p = np.pad(img, 1)
    h, w = img.shape
    offsets = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    return [p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets]


def thin(binary: np.ndarray, max_iters: int = 50) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to a one-pixel-wide skeleton (whole-image vectorised passes)."""
    img = binary.astype(np.uint8)
    for _ in range(max_iters):
        changed = False
        for step in (0, 1):
            n = _neighbours(img)
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            count = sum(n)
            cyc = [*n, p2]
            transitions = sum((cyc[i] == 0) & (cyc[i + 1] == 1) for i in range(8))
            if step == 0:
                c1, c2 = p2 * p4 * p6, p4 * p6 * p8
            else:
                c1, c2 = p2 * p4 * p8, p2 * p6 * p8
            remove = (img == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & (c1 == 0) & (c2 == 0)
            if remove.any():
                img[remove] = 0
                changed = True
        if not changed:
            break
    return img.astype(bool)


def crossing_number(skeleton: np.ndarray) -> np.ndarray:
    """Half the number of 0/1 changes around each pixel's 8-neighbourhood (1 = ending, 3 = bifurcation)."""
    n = [x.astype(np.int8) for x in _neighbours(skeleton.astype(np.uint8))]
    return sum(np.abs(n[i] - n[(i + 1) % 8]) for i in range(8)) // 2


def _merge_close(xy: np.ndarray, radius: float) -> np.ndarray:
    """Indices of one representative per group of points chained within ``radius`` (the first of each group)."""
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray")
    labels = np.arange(len(xy))
    for _ in range(len(xy)):  # propagate the smallest label along the pairs until stable
        if len(pairs) == 0:
            break
        lo = np.minimum(labels[pairs[:, 0]], labels[pairs[:, 1]])
        new = labels.copy()
        np.minimum.at(new, pairs[:, 0], lo)
        np.minimum.at(new, pairs[:, 1], lo)
        if np.array_equal(new, labels):
            break
        labels = new
    return np.unique(labels)


def _directions(skeleton: np.ndarray, xy: np.ndarray, theta: np.ndarray, radius: int) -> np.ndarray:
    """Ridge direction at each point, oriented away from the mean position of nearby skeleton pixels."""
    padded = np.pad(skeleton.astype(np.float32), radius)
    offs = np.arange(-radius, radius + 1)
    x, y = xy[:, 0].astype(int), xy[:, 1].astype(int)
    patches = padded[
        (y + radius)[:, None, None] + offs[None, :, None], (x + radius)[:, None, None] + offs[None, None, :]
    ]
    mean_dx = (patches * offs[None, None, :]).sum(axis=(1, 2))
    mean_dy = (patches * offs[None, :, None]).sum(axis=(1, 2))
    t = theta[y, x].astype(np.float64)
    flip = np.cos(t) * mean_dx + np.sin(t) * mean_dy > 0  # the axis points into the ridge mass: turn it round
    return np.mod(t + np.pi * flip, 2 * np.pi).astype(np.float32)


def extract_minutiae(
    ridges: np.ndarray, mask: np.ndarray, theta: np.ndarray, period: float, border: float = 12.0
) -> Minutiae:
    """Ground-truth minutiae of a ridge map (``> 0`` = ridge) inside ``mask``; see the module docstring."""
    skeleton = thin((ridges > 0) & mask)
    cn = crossing_number(skeleton)
    ys, xs = np.nonzero(skeleton & ((cn == 1) | (cn == 3)))
    kinds = np.where(cn[ys, xs] == 1, ENDING, BIFURCATION).astype(np.int8)
    xy = np.column_stack([xs, ys]).astype(np.float32)
    keep = []
    for kind in (ENDING, BIFURCATION):
        idx = np.flatnonzero(kinds == kind)
        keep.append(idx[_merge_close(xy[idx], 3.0)])
    keep = np.sort(np.concatenate(keep))
    xy, kinds = xy[keep], kinds[keep]
    inner = depth(mask)[xy[:, 1].astype(int), xy[:, 0].astype(int)] >= border
    close = cKDTree(xy).query_pairs(0.6 * period, output_type="ndarray") if len(xy) else np.zeros((0, 2), int)
    isolated = np.ones(len(xy), dtype=bool)
    isolated[close.ravel()] = False
    xy, kinds = xy[inner & isolated], kinds[inner & isolated]
    angles = _directions(skeleton, xy, theta, radius=max(2, round(period / 2)))
    return Minutiae(xy, angles, kinds)
