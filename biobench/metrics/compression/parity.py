"""Reading rate curves at recognition parity: the bit rate at which a codec's decoded images are recognised as well
as the uncompressed ones, its ratio to an anchor codec's, and the Bjontegaard delta rate between two curves.

A codec's *rate curve* is its points (dicts with ``bpp`` and the metric; :mod:`.rate_recognition`), read in order of
bpp. ``higher_is_better`` is the metric's direction (``False`` for EER).

- :func:`parity_bpp`: the lowest bpp from which on the metric stays within ``tolerance`` of the uncompressed
  ``reference`` (0.005 = half a percentage point of a rate), the metric interpolated linearly in bpp between
  neighbouring points. A non-monotone curve (a dip at a higher rate) counts from the crossing after the *last* point
  outside the tolerance, so every rate above the parity rate is within it, measured points and the segments between
  them alike. A curve already within tolerance at its lowest point gives that point's bpp: an upper bound of the
  true parity rate, which lies below the sweep. ``None`` when the highest-rate point is outside the tolerance.
- :func:`ratio_to`: parity bpp of each codec over the anchor's parity bpp and over the anchor's bpp at one quality.
  The IPR paper's headline, "BPP values ~38% and ~42% of CRF-23 HEVC compression ... while maintaining parity in
  recognition accuracy" (REFERENCES.md), is the latter: a codec's bpp at parity as a fraction of the bpp that HEVC
  spends at CRF 23 on the same images (``to_anchor_quality``), whether or not CRF 23 is itself at parity; that is
  why HEVC's own parity ratio (``to_anchor_parity``) is reported next to it.
- :func:`bd_rate`: the BD-rate (percent; negative = fewer bits for the same metric) of a curve against an anchor
  curve with the ``bjontegaard`` package (log-rate interpolated over the metric, integrated over the overlap of the
  two metric ranges), on each curve's *rate front*: the points that reach a better metric than every cheaper point
  (recognition curves saturate, and the interpolation needs a strictly monotone metric). Each front needs
  ``min_points`` (4) points and the two fronts' metric ranges must overlap; otherwise the value is ``None`` with the
  reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

Point = dict[str, Any]  # one rate point: {codec, quality, bpp, ...metrics} (rate_recognition's module docstring)
BD_METHODS = ("pchip", "akima", "cubic")


def rate_curve(points: Sequence[Point], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(bpp, metric)`` of the points whose metric is finite, sorted by bpp (ties keep their order)."""
    missing = [p for p in points if metric not in p or "bpp" not in p]
    if missing:
        raise KeyError(f"Rate points need 'bpp' and '{metric}'; this one has {sorted(missing[0])}.")
    rows = sorted(((float(p["bpp"]), float(p[metric])) for p in points if np.isfinite(float(p[metric]))),
                  key=lambda r: r[0])  # fmt: skip
    bpp, value = (np.array(c, dtype=float) for c in zip(*rows, strict=True)) if rows else (np.zeros(0), np.zeros(0))
    return bpp, value


def parity_margin(value: np.ndarray | float, reference: float, tolerance: float, higher_is_better: bool) -> Any:
    """How far ``value`` is inside the tolerance around ``reference`` (>= 0: within it, or better than the
    reference)."""
    return (1.0 if higher_is_better else -1.0) * (np.asarray(value, dtype=float) - reference) + tolerance


def parity_bpp(
    points: Sequence[Point], metric: str, reference: float, tolerance: float = 0.005, higher_is_better: bool = True
) -> float | None:
    """The lowest bpp from which on ``metric`` stays within ``tolerance`` of ``reference`` (module docstring)."""
    bpp, value = rate_curve(points, metric)
    margin = parity_margin(value, reference, tolerance, higher_is_better)
    if len(margin) == 0 or margin[-1] < 0:
        return None
    outside = np.flatnonzero(margin < 0)
    if len(outside) == 0:
        return float(bpp[0])
    k = outside[-1]
    w = -margin[k] / (margin[k + 1] - margin[k])
    return float(bpp[k] + w * (bpp[k + 1] - bpp[k]))


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratio_to(
    points_by_codec: Mapping[str, Sequence[Point]],
    metric: str,
    reference: float,
    anchor: str = "hevc",
    anchor_quality: float | None = 23,
    tolerance: float = 0.005,
    higher_is_better: bool = True,
) -> dict[str, dict[str, float | None]]:
    """Per codec ``{"parity_bpp", "to_anchor_parity", "to_anchor_quality"}``: its parity bpp, that over the
    ``anchor`` codec's parity bpp, and over the anchor's bpp at ``anchor_quality`` (the paper's headline ratio,
    module docstring). Ratios are ``None`` where a side is missing (no anchor, never at parity, no such quality)."""
    parity = {
        name: parity_bpp(points, metric, reference, tolerance, higher_is_better)
        for name, points in points_by_codec.items()
    }
    anchor_points = points_by_codec.get(anchor, ())
    anchor_bpp = next((float(p["bpp"]) for p in anchor_points if p.get("quality") == anchor_quality), None)
    return {
        name: {
            "parity_bpp": bpp,
            "to_anchor_parity": _ratio(bpp, parity.get(anchor)),
            "to_anchor_quality": _ratio(bpp, anchor_bpp),
        }
        for name, bpp in parity.items()
    }


def rate_front(points: Sequence[Point], metric: str, higher_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(bpp, metric)`` of the points that reach a strictly better metric than every cheaper point."""
    bpp, value = rate_curve(points, metric)
    sign = 1.0 if higher_is_better else -1.0
    order = np.lexsort((-sign * value, bpp))  # by bpp, the best metric first among equal rates
    keep, best = [], -np.inf
    for i in order:
        if sign * value[i] > best:
            keep.append(i)
            best = sign * value[i]
    return bpp[keep], value[keep]


class BDRate(NamedTuple):
    """A BD-rate in percent, or ``None`` and the ``reason`` it cannot be computed."""

    percent: float | None
    reason: str = ""


def bd_rate(
    points: Sequence[Point],
    anchor_points: Sequence[Point],
    metric: str,
    higher_is_better: bool = True,
    method: str = "pchip",
    min_points: int = 4,
) -> BDRate:
    """BD-rate of ``points`` against ``anchor_points`` on their rate fronts (module docstring); ``method`` is the
    ``bjontegaard`` interpolation (``pchip``: monotone, no overshoot between the few points of a sweep)."""
    try:
        import bjontegaard
    except ImportError as err:
        raise ImportError("BD-rates need the optional bjontegaard package: pip install 'biobench[codecs]'.") from err
    if method not in BD_METHODS:
        raise ValueError(f"bd_rate: method must be one of {BD_METHODS}, got '{method}'.")
    sign = 1.0 if higher_is_better else -1.0
    fronts = {"test": rate_front(points, metric, higher_is_better),
              "anchor": rate_front(anchor_points, metric, higher_is_better)}  # fmt: skip
    for side, (bpp, _) in fronts.items():
        if len(bpp) < min_points:
            return BDRate(None, f"{len(bpp)} of the {side} curve's points are on its rate front (distinct {metric}), "
                                f"{min_points} needed")  # fmt: skip
        if bpp[0] <= 0:
            return BDRate(None, f"the {side} curve has a point at {bpp[0]} bpp (the rate axis is logarithmic)")
    (test_bpp, test_value), (anchor_bpp, anchor_value) = fronts["test"], fronts["anchor"]
    low, high = max(test_value.min(), anchor_value.min()), min(test_value.max(), anchor_value.max())
    if high <= low:
        return BDRate(None, f"the {metric} ranges do not overlap: [{test_value.min():.4g}, {test_value.max():.4g}] "
                            f"vs the anchor's [{anchor_value.min():.4g}, {anchor_value.max():.4g}]")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partial overlaps are integrated over their common range, by design
        percent = bjontegaard.bd_rate(anchor_bpp, sign * anchor_value, test_bpp, sign * test_value, method=method,
                                      require_matching_points=False, min_overlap=0)  # fmt: skip
    return BDRate(float(percent))
