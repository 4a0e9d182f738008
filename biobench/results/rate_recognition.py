"""The rate-recognition comparison as files: learned-codec points read from IPR-codec runs, the headline table at
recognition parity (markdown), every point (CSV) and the rate-recognition plot.

Baseline points come from :mod:`biobench.metrics.compression.rate_recognition`; a learned codec's come from the
``metrics.json`` of its finished runs (``test/bpp``, ``test/psnr``, ``test/ms_ssim``, ``test/<recognition metric>``
and the uncompressed ``test/ref_*``), never from re-running it. Parity, ratios and BD-rates are
:mod:`biobench.metrics.compression.parity`'s.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from biobench.metrics.compression.parity import Point, bd_rate, parity_bpp, parity_margin, rate_curve, ratio_to
from biobench.metrics.compression.registry import CODECS
from biobench.results.report import with_unit
from biobench.results.runs import collect_runs, run_value
from biobench.results.summary import info
from biobench.utils.io import atomic_write, write_text

TEST, REFERENCE = "test/", "test/ref_"
LEAD_COLUMNS = ("codec", "quality", "bpp", "psnr", "ms_ssim", "ms_ssim_window")

ANCHOR_CRF = 23.0  # the paper's anchor: HEVC at CRF 23, in every HEVC sweep


@dataclass(frozen=True)
class LearnedCurve:
    """A learned codec's points (one per finished run below its directory, ``quality`` = the run's
    ``model.loss.lmbda``) and each run's uncompressed reference metrics (``test/ref_*``, prefix removed)."""

    label: str
    points: list[Point]
    references: list[dict[str, float]]


def learned_curve(run_dir: str | Path) -> LearnedCurve:
    """The finished IPR-codec runs at or below ``run_dir`` (one run, or a sweep: one point per run) as one curve
    labelled by the directory's name; a ValueError names the directory when none has ``test/bpp``."""
    runs = [r for r in collect_runs([run_dir]) if r.status == "done" and f"{TEST}bpp" in r.metrics]
    if not runs:
        raise ValueError(f"No finished run with {TEST}bpp in its metrics.json at or below '{run_dir}': give the "
                         "run directory of a tested IPR-codec run (biobench-train experiment=ipr_... runs its test "
                         "stage at the end).")  # fmt: skip
    label = Path(run_dir).resolve().name
    points, references = [], []
    for run in runs:
        scores = {k.removeprefix(TEST): float(v) for k, v in run.metrics.items()
                  if k.startswith(TEST) and not k.startswith(REFERENCE)}  # fmt: skip
        points.append({"codec": label, "quality": run_value(run, "model.loss.lmbda"), "run": str(run.dir), **scores})
        references.append({k.removeprefix(REFERENCE): float(v) for k, v in run.metrics.items()
                           if k.startswith(REFERENCE)})  # fmt: skip
    return LearnedCurve(label, points, references)


def reference_mismatches(curves: Sequence[LearnedCurve], metric: str, reference: float) -> list[str]:
    """Notes on learned runs whose uncompressed ``metric`` differs from ``reference``: other images, recognizer or
    protocol, so their points do not compare with the baselines'."""
    notes = []
    for curve in curves:
        for point, refs in zip(curve.points, curve.references, strict=True):
            if metric not in refs:
                notes.append(f"{curve.label} ({Path(point['run']).name}): no {REFERENCE}{metric} to check the "
                             "uncompressed reference against.")  # fmt: skip
            elif not math.isclose(refs[metric], reference, abs_tol=1e-6):
                notes.append(f"{curve.label} ({Path(point['run']).name}): uncompressed {metric} {refs[metric]:.4g} "
                             f"there, {reference:.4g} here: other images, recognizer or protocol (e.g. "
                             "--max-images), so the point does not compare with the baselines.")  # fmt: skip
    return notes


def rate_recognition_figure(
    points_by_codec: Mapping[str, Sequence[Point]],
    metric: str,
    reference: float,
    tolerance: float = 0.005,
    higher_is_better: bool = True,
    learned: Collection[str] = (),
) -> Figure:
    """``metric`` vs bpp per codec (log bpp) with the uncompressed reference, its tolerance band and each codec's
    parity rate (star), next to PSNR vs bpp; ``learned`` codecs are drawn with squares."""
    scale, label = info(metric).scale, with_unit(metric)
    fig = Figure(figsize=(13, 5), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax_metric, ax_psnr = fig.subplots(1, 2)
    for i, (name, points) in enumerate(points_by_codec.items()):
        style = {"color": f"C{i % 10}", "marker": "s" if name in learned else "o", "markersize": 4, "label": name}
        bpp, value = rate_curve(points, metric)
        ax_metric.plot(bpp, scale * value, **style)
        parity = parity_bpp(points, metric, reference, tolerance, higher_is_better)
        if parity is not None:
            ax_metric.plot(parity, scale * np.interp(parity, bpp, value), marker="*", markersize=13,
                           color=style["color"], markeredgecolor="black", markeredgewidth=0.6)  # fmt: skip
        if all("psnr" in p for p in points):
            ax_psnr.plot(*rate_curve(points, "psnr"), **style)
    ax_metric.axhline(scale * reference, color="black", linestyle="--", linewidth=1, label="uncompressed")
    ax_metric.axhspan(scale * (reference - tolerance), scale * (reference + tolerance), color="grey", alpha=0.25,
                      label=f"± {scale * tolerance:g} (tolerance)")  # fmt: skip
    ax_metric.set_title(f"{metric} of decoded images; star: lowest rate at parity", fontsize=11)
    ax_metric.set_ylabel(label)
    ax_psnr.set_title("PSNR of decoded images", fontsize=11)
    ax_psnr.set_ylabel("PSNR (dB)")
    for ax in (ax_metric, ax_psnr):
        ax.set_xscale("log")
        # ticks at 1, 2 and 5 per decade: labelled even where the rates span less than a decade (32 px images)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bits per pixel (real bitstreams)")
        ax.grid(True, which="both", alpha=0.3)
    ax_metric.legend(fontsize=8, ncols=2)
    return fig


def _number(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def headline_table(
    points_by_codec: Mapping[str, Sequence[Point]],
    metric: str,
    reference: float,
    tolerance: float = 0.005,
    higher_is_better: bool = True,
    anchor: str = "hevc",
    anchor_quality: float = ANCHOR_CRF,
    second_anchor: str = "vvc",
    bd_method: str = "pchip",
    notes: Sequence[str] = (),
) -> str:
    """Markdown: per codec its points, parity bpp, the ratios to the anchor at ``anchor_quality`` (the paper's
    headline), to the anchor's and ``second_anchor``'s parity bpp, and its BD-rate against the anchor; ``notes``
    (protocol, skipped codecs, mismatches) go below."""
    rule = info(metric)

    def shown(value: float) -> str:
        return f"{rule.scale * value:.2f}" + (f" {rule.unit}" if rule.unit else "")

    knob = CODECS[anchor].knob.upper() if anchor in CODECS else "quality"
    at_quality = f"{anchor.upper()} {knob} {anchor_quality:g}"
    first = ratio_to(points_by_codec, metric, reference, anchor, anchor_quality, tolerance, higher_is_better)
    second = ratio_to(points_by_codec, metric, reference, second_anchor, None, tolerance, higher_is_better)
    footnotes: list[str] = []
    rows = []
    for name, points in points_by_codec.items():
        parity = first[name]["parity_bpp"]
        bound = parity is not None and parity == rate_curve(points, metric)[0][0]
        if name == anchor or anchor not in points_by_codec:
            bd = "–"
        else:
            result = bd_rate(points, points_by_codec[anchor], metric, higher_is_better, bd_method)
            footnotes += [] if result.percent is not None else [f"{name}: {result.reason}."]
            bd = f"{result.percent:+.1f} %" if result.percent is not None else f"–[{len(footnotes)}]"
        rows.append([name, str(len(points)), ("≤ " if bound else "") + _number(parity, ".4g"),
                     _number(first[name]["to_anchor_quality"], ".3f"), _number(first[name]["to_anchor_parity"], ".3f"),
                     _number(second[name]["to_anchor_parity"], ".3f"), bd])  # fmt: skip
    anchor_point = next((p for p in points_by_codec.get(anchor, ()) if p.get("quality") == anchor_quality), None)
    lines = [
        f"## Rate at recognition parity: {metric}",
        "",
        f"Uncompressed reference: {shown(reference)}. Parity: within {rule.scale * tolerance:g}"
        f"{' points' if rule.unit == '%' else ''} of it ({tolerance:g} in raw units), the metric "
        "interpolated linearly in bpp along each codec's rate curve: the lowest bpp from which on every rate stays "
        "within (≤: already within at the codec's lowest rate, so the true parity rate is "
        f"lower; –: never within). `/ {at_quality}`: parity bpp over {at_quality}'s bpp on the same images (the IPR "
        f"paper's headline ratio); `/ … parity`: over that codec's parity bpp. BD-rate vs {anchor} ({bd_method}) on "
        "the rate fronts (the points better than every cheaper point); negative = fewer bits.",
        "",
    ]
    if anchor_point is not None:
        within = parity_margin(float(anchor_point[metric]), reference, tolerance, higher_is_better) >= 0
        lines += [f"{at_quality}: {float(anchor_point['bpp']):.4g} bpp, {metric} {shown(float(anchor_point[metric]))} "
                  f"({'within' if within else 'outside'} the tolerance).", ""]  # fmt: skip
    header = ["codec", "points", "parity bpp", f"/ {at_quality}", f"/ {anchor} parity", f"/ {second_anchor} parity",
              f"BD-rate vs {anchor}"]  # fmt: skip
    lines += ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *(f"[{i}] {n}" for i, n in enumerate(footnotes, 1))] if footnotes else []
    lines += ["", *(f"- {n}" for n in notes)] if notes else []
    return "\n".join(lines) + "\n"


def points_csv(points_by_codec: Mapping[str, Sequence[Point]]) -> str:
    """Every point, one row each: the columns of :data:`LEAD_COLUMNS`, the metrics sorted, then a learned point's
    ``run`` (empty where a point has no value)."""
    rows = [p for points in points_by_codec.values() for p in points]
    present = {k for row in rows for k in row}
    fixed = (*LEAD_COLUMNS, "run")
    columns = [k for k in LEAD_COLUMNS if k in present] + sorted(present - set(fixed)) + ["run"] * ("run" in present)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return text.getvalue()


def write_rate_recognition(
    out_dir: str | Path,
    points_by_codec: Mapping[str, Sequence[Point]],
    metric: str,
    reference: float,
    tolerance: float = 0.005,
    higher_is_better: bool = True,
    learned: Collection[str] = (),
    notes: Sequence[str] = (),
    **table: Any,
) -> dict[str, Path]:
    """``points.csv``, ``headline.md`` (:func:`headline_table`, ``table`` = its anchor options) and
    ``rate_recognition.png`` in ``out_dir``, written atomically; returns their paths."""
    out_dir = Path(out_dir)
    paths = {"csv": write_text(out_dir / "points.csv", points_csv(points_by_codec))}
    headline = headline_table(points_by_codec, metric, reference, tolerance, higher_is_better, notes=notes, **table)
    paths["md"] = write_text(out_dir / "headline.md", headline)
    fig = rate_recognition_figure(points_by_codec, metric, reference, tolerance, higher_is_better, learned)
    paths["png"] = atomic_write(out_dir / "rate_recognition.png", lambda tmp: fig.savefig(tmp, format="png"))
    return paths
