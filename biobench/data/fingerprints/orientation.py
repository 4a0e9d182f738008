"""Henry classes, singular points and the orientation field of a master fingerprint.

Orientation follows the zero-pole model (Sherlock & Monro) used by SFinGe: with cores ``c_i`` as poles and
deltas ``d_j`` as zeros, the ridge direction at ``z`` is

    theta(z) = 1/2 [ sum_i g_i(arg(z - c_i)) - sum_j g_j(arg(z - d_j)) ]

where ``g(a) = a + sum_k b_k sin(k a + phi_k)`` is the correction term (Vizcaya & Gerhardt's idea, here as a
small random Fourier series): it bends loops and whorls per finger while ``g(a + 2 pi) = g(a) + 2 pi`` keeps the
Poincare index of every singular point (+1/2 core, -1/2 delta). Plain arches have no singular points; their
field is the slope of a family of arched ridges whose height fades towards the bottom of the print. Angles are
ridge directions in radians, in image coordinates (x right, y down), defined modulo pi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from biobench.data.fingerprints.noise import smooth_noise

HENRY_CLASSES: tuple[str, ...] = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")
# Natural frequencies of the five classes (REFERENCES.md): arch, tented arch, left loop, right loop, whorl.
HENRY_PRIORS: tuple[float, ...] = (0.037, 0.029, 0.338, 0.317, 0.279)


@dataclass(frozen=True)
class Area:
    """Elliptic fingerprint area: centre ``(cx, cy)`` and semi-axes ``(a, b)`` in pixels."""

    cx: float
    cy: float
    a: float
    b: float

    def mask(self, shape: tuple[int, int], rng: np.random.Generator | None = None) -> np.ndarray:
        """Boolean silhouette: the ellipse, its bottom flattened like a fingertip, its edge made slightly irregular."""
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        u, v = (xx - self.cx) / self.a, (yy - self.cy) / self.b
        v = np.where(v > 0, v * 0.8, v)  # fuller lower half (the finger continues towards the palm)
        r = np.sqrt(u**2 + v**2)
        if rng is not None:
            r = r + 0.03 * smooth_noise(rng, shape, cell=40)
        return r <= 1.0


@dataclass(frozen=True)
class SingularPoints:
    """Cores and deltas as ``[K, 2]`` arrays of ``(x, y)`` pixels."""

    cores: np.ndarray
    deltas: np.ndarray


def check_priors(priors: tuple[float, ...]) -> None:
    """Henry class priors must be one non-negative weight per class, not all zero."""
    p = np.asarray(priors, dtype=np.float64)
    if p.shape != (len(HENRY_CLASSES),) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"Henry class priors must be {len(HENRY_CLASSES)} non-negative weights, got {list(priors)}.")


def sample_henry_class(rng: np.random.Generator, priors: tuple[float, ...] = HENRY_PRIORS) -> int:
    """A class index drawn with the given priors (natural frequencies by default)."""
    p = np.asarray(priors, dtype=np.float64)
    return int(rng.choice(len(HENRY_CLASSES), p=p / p.sum()))


def sample_singular_points(rng: np.random.Generator, henry: int, area: Area) -> SingularPoints:
    """Cores and deltas placed where the class puts them, relative to the fingerprint area."""
    a, b, cx, cy = area.a, area.b, area.cx, area.cy
    u = rng.uniform
    name = HENRY_CLASSES[henry]
    if name == "arch":
        return SingularPoints(np.zeros((0, 2)), np.zeros((0, 2)))
    if name == "tented_arch":
        core = np.array([cx + u(-0.1, 0.1) * a, cy + u(-0.2, 0.0) * b])
        delta = core + np.array([u(-0.05, 0.05) * a, u(0.3, 0.45) * b])
        return SingularPoints(core[None], delta[None])
    if name in ("left_loop", "right_loop"):
        side = 1.0 if name == "left_loop" else -1.0  # a left loop opens to the left: its delta lies to the right
        core = np.array([cx + side * u(-0.2, 0.05) * a, cy + u(-0.3, 0.0) * b])
        delta = core + np.array([side * u(0.45, 0.75) * a, u(0.5, 0.8) * b])
        return SingularPoints(core[None], delta[None])
    centre = np.array([cx + u(-0.1, 0.1) * a, cy + u(-0.15, 0.05) * b])
    offset = np.array([u(-0.08, 0.08) * a, u(0.05, 0.12) * b])
    cores = np.stack([centre - offset, centre + offset])
    deltas = centre + np.array([[-u(0.5, 0.7) * a, u(0.5, 0.7) * b], [u(0.5, 0.7) * a, u(0.5, 0.7) * b]])
    return SingularPoints(cores, deltas)


def _corrected(angle: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """``g(a) = a + sum_k b_k sin(k a + phi_k)`` with ``coeffs[k-1] = (b_k, phi_k)``."""
    out = angle.copy()
    for k, (b_k, phi_k) in enumerate(coeffs, start=1):
        out += b_k * np.sin(k * angle + phi_k)
    return out


def orientation_field(
    shape: tuple[int, int],
    points: SingularPoints,
    area: Area,
    rng: np.random.Generator,
    correction: float = 0.15,
    wobble: float = 0.08,
) -> np.ndarray:
    """Ridge direction ``theta [H, W]`` (radians, modulo pi) of the zero-pole model with correction.

    ``correction`` bounds the Fourier coefficients of ``g``; ``wobble`` is the amplitude (radians) of a smooth
    single-valued perturbation, which changes no Poincare index.
    """
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    if len(points.cores) == 0:  # plain arch: slope of ridges y = y0 - h(y0) exp(-x^2 / 2 s^2)
        s = rng.uniform(0.35, 0.55) * area.a
        height = rng.uniform(0.25, 0.45) * area.b * np.clip((area.cy + 0.9 * area.b - yy) / (1.6 * area.b), 0, 1)
        dx = xx - area.cx - rng.uniform(-0.1, 0.1) * area.a
        theta = np.arctan(height * dx / s**2 * np.exp(-(dx**2) / (2 * s**2)))
    else:
        theta = np.zeros(shape)
        for sign, pts in ((1.0, points.cores), (-1.0, points.deltas)):
            for x, y in pts:
                coeffs = np.stack([rng.uniform(-correction, correction, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1)
                coeffs[:, 0] /= np.arange(1, 4)  # weaker higher harmonics
                theta += sign * 0.5 * _corrected(np.arctan2(yy - y, xx - x), coeffs)
    theta += wobble * smooth_noise(rng, shape, cell=80)
    return np.mod(theta, np.pi).astype(np.float32)


def poincare_index(theta: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float = 6.0, steps: int = 24) -> np.ndarray:
    """Poincare index (in turns: +0.5 core, -0.5 delta, 0 regular) of the field on circles around ``(x, y)``.

    Orientation differences between neighbouring circle samples are wrapped into ``[-pi/2, pi/2)``.
    """
    x, y = np.atleast_1d(np.asarray(x, dtype=np.float64)), np.atleast_1d(np.asarray(y, dtype=np.float64))
    phi = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    px = np.clip(np.rint(x[:, None] + radius * np.cos(phi)), 0, theta.shape[1] - 1).astype(int)
    py = np.clip(np.rint(y[:, None] + radius * np.sin(phi)), 0, theta.shape[0] - 1).astype(int)
    t = theta[py, px]
    d = np.diff(np.concatenate([t, t[:, :1]], axis=1), axis=1)
    d = (d + np.pi / 2) % np.pi - np.pi / 2
    return np.round(d.sum(axis=1) / (2 * np.pi) * 2) / 2


def detect_singular_points(theta: np.ndarray, mask: np.ndarray, step: int = 4, radius: float = 6.0) -> SingularPoints:
    """Cores and deltas found by the Poincare index on a grid inside ``mask``, merged within ``3 * radius``."""
    ys, xs = np.mgrid[step // 2 : theta.shape[0] : step, step // 2 : theta.shape[1] : step]
    inside = mask[ys, xs]
    xs, ys = xs[inside].astype(np.float64), ys[inside].astype(np.float64)
    index = poincare_index(theta, xs, ys, radius)
    found = []
    for value in (0.5, -0.5):
        pts = np.stack([xs[index == value], ys[index == value]], axis=1)
        found.append(_merge(pts, 3 * radius))
    return SingularPoints(*found)


def _merge(points: np.ndarray, distance: float) -> np.ndarray:
    """Greedy clustering: each cluster of points closer than ``distance`` becomes its centroid."""
    merged = []
    remaining = points
    while len(remaining):
        near = np.hypot(*(remaining - remaining[0]).T) < distance
        merged.append(remaining[near].mean(axis=0))
        remaining = remaining[~near]
    return np.asarray(merged).reshape(-1, 2)


def henry_class_of(points: SingularPoints) -> int:
    """Henry class from singular points: 0 cores -> arch; 2 -> whorl; 1 core -> tented arch when the delta lies
    (nearly) straight below the core, else a left loop (delta to the right) or right loop (delta to the left)."""
    n_cores = len(points.cores)
    if n_cores == 0:
        return HENRY_CLASSES.index("arch")
    if n_cores >= 2:
        return HENRY_CLASSES.index("whorl")
    if len(points.deltas) == 0:
        raise ValueError("henry_class_of: a single core needs a delta to tell a loop from a tented arch.")
    dx, dy = points.deltas[0] - points.cores[0]
    if abs(dx) < 0.35 * abs(dy):
        return HENRY_CLASSES.index("tented_arch")
    return HENRY_CLASSES.index("left_loop" if dx > 0 else "right_loop")


def estimate_orientation(image: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """Ridge direction ``[H, W]`` (radians, modulo pi) of an image, from its Gaussian-smoothed structure tensor.

    The dominant gradient direction is across the ridges; the ridge direction is perpendicular to it.
    """
    img = np.asarray(image, dtype=np.float64)
    gy, gx = np.gradient(img)
    gxx, gyy, gxy = (ndimage.gaussian_filter(a, sigma) for a in (gx * gx, gy * gy, gx * gy))
    return np.mod(0.5 * np.arctan2(2 * gxy, gxx - gyy) + np.pi / 2, np.pi).astype(np.float32)
