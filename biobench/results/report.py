"""Summary rows as files: a markdown table, a long-format CSV and a plot, in the units the metric registry gives.

A config x gives a methods x values table (cells ``mean ± std (n)``); a metric x (rate curves) gives one line per
point with the mean ± std of x and of the metric. Fractions with ``scale=100`` in the registry (accuracy, EER, TAR)
are shown in percent; CSV files keep raw metric units.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from biobench.results.summary import Row, format_value, info, is_number, key_leaf, sort_xs
from biobench.utils.io import atomic_write, write_text

STD_NOTE = "mean ± std (n runs); std is the sample std (ddof=1), 0 for a single run."


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def with_unit(metric: str) -> str:
    """``test/acc (%)``, ``test/bpp (bpp)``, ``test/loss``."""
    unit = info(metric).unit
    return f"{metric} ({unit})" if unit else metric


def format_stat(mean: float, std: float, metric: str) -> str:
    """``98.61 ± 0.42`` for percent metrics (registry scale 100), ``0.0863 ± 0.0012`` otherwise."""
    scale = info(metric).scale
    if scale != 1.0:
        return f"{scale * mean:.2f} ± {scale * std:.2f}"
    return f"{mean:.4f} ± {std:.4f}"


def format_cell(row: Row, metric: str) -> str:
    return f"{format_stat(row.mean, row.std, metric)} ({row.n})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(map(_md_escape, header)) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
        *("| " + " | ".join([_md_escape(r[0]), *r[1:]]) + " |" for r in rows),
    ]


def markdown_table(rows: Sequence[Row], metric: str, x: str, label_name: str = "method") -> str:
    """A heading and a table: one row per label, one column per x value (``–`` where no run)."""
    xs = sort_xs(r.x for r in rows)
    cells = {(r.label, r.x): format_cell(r, metric) for r in rows}
    leaf = key_leaf(x)
    body = [[label, *(cells.get((label, v), "–") for v in xs)] for label in dict.fromkeys(r.label for r in rows)]
    lines = [f"## {with_unit(metric)} vs {x}", "", STD_NOTE, ""]
    return "\n".join(lines + _table([label_name, *(f"{leaf}={format_value(v)}" for v in xs)], body)) + "\n"


def rate_table(
    rows: Sequence[Row], metric: str, x: str, label_name: str = "method", group_by: str | None = None
) -> str:
    """A heading and a table with one line per point (label and ``group_by`` value, else run dir): x and metric as
    mean ± std."""
    header = [label_name, group_by or "run", with_unit(x), with_unit(metric), "n"]
    body = [
        [
            r.label,
            format_value(r.group),
            format_stat(r.x, r.x_std or 0.0, x),
            format_stat(r.mean, r.std, metric),
            str(r.n),
        ]
        for r in rows
    ]
    return "\n".join([f"## {with_unit(metric)} vs {with_unit(x)}", "", STD_NOTE, "", *_table(header, body)]) + "\n"


def best_table(best: Sequence[tuple[Row, str]], metric: str, x: str, key: str, select_metric: str | None) -> str:
    """Markdown: per method and x, the winning ``key`` value and its statistics."""
    leaf = key_leaf(key)
    select = select_metric or metric
    direction = "highest" if info(select).mode == "max" else "lowest"
    cells = {(r.label, r.x): f"{format_cell(r, metric)}, {leaf}={value}" for r, value in best}
    xs = sort_xs(r.x for r, _ in best)
    body = [[label, *(cells.get((label, v), "–") for v in xs)] for label in dict.fromkeys(r.label for r, _ in best)]
    lines = [
        f"## best {key} per {x} ({metric})",
        "",
        f"{leaf} chosen by the {direction} mean {select}; cells: {metric} mean ± std (n), {leaf}.",
        "",
    ]
    return "\n".join(lines + _table(["method", *(f"{key_leaf(x)}={format_value(v)}" for v in xs)], body)) + "\n"


def csv_text(rows: Sequence[Row]) -> str:
    """Long format ``label,x,mean,std,n`` in raw metric units, full precision (plus ``x_std,group`` for a metric
    x)."""
    rate = any(r.x_std is not None for r in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["label", "x", "mean", "std", "n", *(["x_std", "group"] if rate else [])])
    for r in rows:
        extra = [repr(r.x_std), format_value(r.group)] if rate else []
        writer.writerow([r.label, repr(r.x) if rate else r.x, repr(r.mean), repr(r.std), r.n, *extra])
    return buf.getvalue()


def plot_name(metric: str, x: str) -> str:
    """``test/acc`` vs ``pruning.keep_ratio`` -> ``test_acc_vs_keep_ratio.png``; vs ``test/bpp`` -> ``..._vs_bpp``."""
    return f"{metric.replace('/', '_')}_vs_{key_leaf(x)}.png"


def make_figure(rows: Sequence[Row], metric: str, x: str, label_name: str = "method") -> Figure:
    """The metric vs x, one line with std error bars per label (categorical axis when x is not numeric; x error
    bars too when x is a metric)."""
    y_scale = info(metric).scale
    rate = any(r.x_std is not None for r in rows)
    x_scale = info(x).scale if rate else 1.0
    xs = sort_xs(r.x for r in rows)
    numeric = all(is_number(v) for v in xs)
    pos = {v: (x_scale * float(v) if numeric else float(i)) for i, v in enumerate(xs)}

    fig = Figure(figsize=(7, 4.5), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label in dict.fromkeys(r.label for r in rows):
        mine = sorted((r for r in rows if r.label == label), key=lambda r: pos[r.x])
        ax.errorbar(
            [pos[r.x] for r in mine],
            [y_scale * r.mean for r in mine],
            yerr=[y_scale * r.std for r in mine],
            xerr=[x_scale * (r.x_std or 0.0) for r in mine] if rate else None,
            marker="o",
            markersize=5,
            capsize=4,
            linewidth=1.6,
            label=label,
        )
    if not rate and (not numeric or len(xs) <= 12):
        ax.set_xticks([pos[v] for v in xs], [format_value(v) for v in xs])
    ax.set_xlabel(with_unit(x) if rate else x)
    ax.set_ylabel(with_unit(metric))
    ns = sorted({r.n for r in rows})
    per_point = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"
    ax.set_title(f"{metric} vs {x}\nmean ± std over runs ({per_point} per point)", fontsize=11)
    ax.grid(True, alpha=0.35)
    ax.legend(title=label_name, fontsize=9, title_fontsize=9)
    fig.tight_layout()
    return fig


def write_summary(
    rows: Sequence[Row], out_dir: str | Path, table: str, metric: str, x: str, label_name: str = "method"
) -> dict[str, Path]:
    """Write ``summary.md`` (``table``, already rendered with its job counts), ``summary.csv`` and the plot into
    ``out_dir`` atomically; returns their paths."""
    out_dir = Path(out_dir)
    paths = {"md": write_text(out_dir / "summary.md", table)}
    paths["csv"] = write_text(out_dir / "summary.csv", csv_text(rows))
    fig = make_figure(rows, metric, x, label_name)
    paths["png"] = atomic_write(out_dir / plot_name(metric, x), lambda tmp: fig.savefig(tmp, format="png"))
    return paths
