"""Master fingerprints: the noise-free ridge pattern of one finger, from which all its impressions are taken."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biobench.data.fingerprints.minutiae import Minutiae, extract_minutiae
from biobench.data.fingerprints.orientation import (
    HENRY_PRIORS,
    Area,
    SingularPoints,
    check_priors,
    orientation_field,
    sample_henry_class,
    sample_singular_points,
)
from biobench.data.fingerprints.ridges import density_map, grow_ridges


@dataclass(frozen=True)
class MasterFingerprint:
    """One finger: ridge map ``[H, W]`` in ``[-1, 1]`` (``> 0`` = ridge), its area, class and ground truth."""

    henry: int
    ridges: np.ndarray
    mask: np.ndarray
    theta: np.ndarray
    period: float
    area: Area
    singular: SingularPoints
    minutiae: Minutiae


def check_master_args(period_range: tuple[float, float], henry_priors: tuple[float, ...]) -> None:
    """Clear errors for settings that would otherwise fail deep inside generation."""
    lo, hi = period_range
    if not 3.0 <= lo <= hi:
        raise ValueError(f"Fingerprint period_range must satisfy 3 <= low <= high (pixels), got {list(period_range)}.")
    check_priors(henry_priors)


def make_master(
    rng: np.random.Generator,
    size: int = 320,
    period_range: tuple[float, float] = (9.0, 11.0),
    n_seeds: int = 48,
    henry_priors: tuple[float, ...] = HENRY_PRIORS,
    henry: int | None = None,
) -> MasterFingerprint:
    """Sample a master: area -> Henry class -> singular points -> orientation -> density -> ridges -> minutiae.

    ``period_range`` is the finger's mean ridge period in pixels (9-11 px matches 500 dpi); ``henry`` forces a
    class instead of drawing it from ``henry_priors``.
    """
    check_master_args(period_range, henry_priors)
    shape = (size, size)
    s = size / 320.0
    area = Area(
        cx=size / 2 + rng.uniform(-8, 8) * s,
        cy=size / 2 + rng.uniform(-4, 8) * s,
        a=rng.uniform(122, 140) * s,
        b=rng.uniform(148, 160) * s,
    )
    mask = area.mask(shape, rng)
    henry = sample_henry_class(rng, henry_priors) if henry is None else int(henry)
    singular = sample_singular_points(rng, henry, area)
    theta = orientation_field(shape, singular, area, rng)
    mean_period = rng.uniform(*period_range)
    period = density_map(rng, shape, mean_period)
    ridges = grow_ridges(theta, period, mask, rng, n_seeds=n_seeds)
    minutiae = extract_minutiae(ridges, mask, theta, mean_period)
    return MasterFingerprint(
        henry, ridges.astype(np.float16), mask, theta.astype(np.float16), float(mean_period), area, singular, minutiae
    )
