"""Summarise finished runs: one metric vs one config value, per method, mean ± std over seeds.

    python scripts/summarize.py outputs/prune_digits/multiruns/<time> [more dirs ...] \\
        [--metric test/acc] [--x pruning.keep_ratio] [--label pruning/score,pruning/sampler] [--out <folder>]

Every folder below the given dirs that holds a ``metrics.json`` is a run. Its resolved ``config.yaml`` gives
the x value (``--x``, a dotted key); each ``--label`` key is looked up first in Hydra's runtime choices
(``.hydra/hydra.yaml``, e.g. ``pruning/score``), else as a dotted key of the config (e.g. ``kd.alpha``), and
the values joined by ``+`` name the method (e.g. ``random+topk``; path values such as ``model.teacher_ckpt`` by the
components that tell them apart, e.g. ``wide``). Runs are grouped by (method, x); each
group gets the mean, the sample std (ddof=1; 0 for a single run) and the number of runs.

Written to ``--out`` (default: the first dir), each atomically:
  summary.md                       methods x x-values table, cells ``mean ± std (n)``
                                   (in percent when the metric name ends in ``acc``)
  summary.csv                      long format: label,x,mean,std,n (raw metric units)
  <metric>_vs_<x leaf>.png         the metric vs x, one line per method with std error bars

``--default KEY=VALUE`` labels runs that lack KEY (e.g. ``model.alpha=0``: plain classifier runs next to KD runs).
``--best-over KEY`` (e.g. ``model.alpha``) adds ``best_<key leaf>.md``: for every method (labels without KEY)
and x, the KEY value with the highest mean metric and its ``mean ± std (n)`` -- e.g. the best KD weight per keep
ratio.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from biobench.utils.io import atomic_write, read_json, write_text

log = logging.getLogger("summarize")

METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
HYDRA_FILE = Path(".hydra") / "hydra.yaml"
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
_MISSING = object()


class NoRunsError(ValueError):
    """A directory given to summarise holds no run (no ``metrics.json`` anywhere below it)."""


@dataclass(frozen=True)
class Row:
    """Statistics of one (method, x) group."""

    label: str
    x: Any
    mean: float
    std: float
    n: int


# ---------------------------------------------------------------------------------------------- reading


def _load_yaml(path: Path) -> Any:
    """A YAML file as plain Python values, interpolations left as written (``None`` when absent)."""
    if not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """One run: ``{"dir", "metrics", "config", "choices", "overrides"}``; absent files give empty values."""
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / METRICS_FILE, "metrics file")
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics file '{run_dir / METRICS_FILE}' is not a JSON object.")
    config = _load_yaml(run_dir / CONFIG_FILE) or {}
    hydra_cfg = _load_yaml(run_dir / HYDRA_FILE) or {}
    choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    overrides = _load_yaml(run_dir / OVERRIDES_FILE) or []
    return {"dir": run_dir, "metrics": metrics, "config": config, "choices": choices, "overrides": overrides}


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every folder at or below ``root`` that holds a ``metrics.json``, sorted."""
    return sorted(Path(d) for d, _, files in os.walk(root) if METRICS_FILE in files)


def collect_runs(dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read every run below ``dirs`` (see ``read_run``); a dir without runs raises ``NoRunsError``.

    A run given twice (overlapping dirs) is read once; an unreadable run is skipped with a warning.
    """
    runs: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for root in map(Path, dirs):
        if not root.is_dir():
            raise NoRunsError(f"'{root}' is not a directory.")
        run_dirs = find_run_dirs(root)
        if not run_dirs:
            raise NoRunsError(f"no runs (no {METRICS_FILE} at any depth) found under '{root}'.")
        for run_dir in run_dirs:
            key = run_dir.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                runs.append(read_run(run_dir))
            except (OSError, ValueError) as err:
                log.warning("Skipping unreadable run '%s': %s", run_dir, err)
    return runs


# ---------------------------------------------------------------------------------------------- grouping


def lookup(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``config["a"]["b"][0]`` for ``"a.b.0"``; ``default`` when any part is missing."""
    node: Any = config
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def label_value(run: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``key`` in the run's Hydra runtime choices, else as a dotted key of its resolved config."""
    if key in run["choices"]:
        return run["choices"][key]
    return lookup(run["config"], key, default)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """Compact text for a config value: ``0.3``, ``1``, ``null``, ``topk``."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def short_paths(values: Iterable[str]) -> dict[str, str]:
    """Path-like labels (e.g. ``model.teacher_ckpt``) by the path components that tell them apart:
    ``{".../teachers/wide/checkpoints/best.ckpt": "wide", ...}``; other values (and a lone path) map to themselves."""
    values = list(dict.fromkeys(values))
    names = {v: v for v in values}
    paths = [v for v in values if "/" in v]
    if len(paths) < 2:
        return names
    parts = [p.split("/") for p in paths]
    head = 0
    while all(len(p) > head + 1 for p in parts) and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while all(len(p) > head + tail + 1 for p in parts) and len({p[-tail - 1] for p in parts}) == 1:
        tail += 1
    for path, p in zip(paths, parts, strict=True):
        names[path] = "/".join(p[head : len(p) - tail]) or path
    return names


def sort_xs(xs: Iterable[Any]) -> list[Any]:
    """Distinct x values, numerically when all are numbers, else by their text."""
    xs = list(dict.fromkeys(xs))
    if all(_is_number(x) for x in xs):
        return sorted(xs, key=float)
    return sorted(xs, key=format_value)


def summarize(
    runs: Sequence[Mapping[str, Any]],
    metric: str,
    x: str,
    label_keys: Sequence[str],
    defaults: Mapping[str, Any] | None = None,
) -> list[Row]:
    """Group ``runs`` by (label, x value): mean, sample std (ddof=1; 0 if n=1) and n of ``metric`` per group.

    A run lacking a label key takes its value from ``defaults`` (e.g. ``{"model.alpha": 0.0}``: a plain classifier
    is a KD run with weight 0). Runs lacking the metric (or with a non-finite value), the x key or a label key
    without default are skipped with a warning naming the run dir; when no run is left a ``ValueError`` lists the
    metrics that do exist. Rows come sorted by label, then x.
    """
    defaults = defaults or {}
    all_parts = [[label_value(run, key, defaults.get(key, _MISSING)) for key in label_keys] for run in runs]
    # names from every run, so that calls on different metrics (best_over) name the same run alike
    names = [short_paths(format_value(p[i]) for p in all_parts if p[i] is not _MISSING) for i in range(len(label_keys))]
    groups: dict[tuple[str, Any], list[float]] = {}
    skipped = {"the metric": 0, "the x key": 0, "a label key": 0}
    for run, parts in zip(runs, all_parts, strict=True):
        value = run["metrics"].get(metric)
        if not _is_number(value) or not math.isfinite(value):
            why = "no" if metric not in run["metrics"] else f"a non-finite ({value})"
            log.warning("Skipping run '%s': %s value for metric '%s'.", run["dir"], why, metric)
            skipped["the metric"] += 1
            continue
        x_value = lookup(run["config"], x, _MISSING)
        if x_value is _MISSING or x_value is None:
            log.warning("Skipping run '%s': no value for x key '%s' in its config.", run["dir"], x)
            skipped["the x key"] += 1
            continue
        missing = [key for key, part in zip(label_keys, parts, strict=True) if part is _MISSING]
        if missing:
            log.warning(
                "Skipping run '%s': label key(s) %s neither a Hydra choice nor in its config.", run["dir"], missing
            )
            skipped["a label key"] += 1
            continue
        label = "+".join(names[i][format_value(p)] for i, p in enumerate(parts)) if parts else "all"
        groups.setdefault((label, x_value), []).append(float(value))

    if not groups:
        known = sorted({m for run in runs for m in run["metrics"]})
        why = ", ".join(f"{n} lack {what}" for what, n in skipped.items() if n)
        raise ValueError(
            f"no run left to summarise for metric '{metric}', x '{x}', label keys "
            f"{list(label_keys)}: of {len(runs)} runs read, {why}. Metrics present: {known}."
        )
    order = {xv: i for i, xv in enumerate(sort_xs(xv for _, xv in groups))}
    rows = []
    for (label, x_value), values in sorted(groups.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        arr = np.asarray(values, dtype=float)
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        rows.append(Row(label=label, x=x_value, mean=float(arr.mean()), std=std, n=int(arr.size)))
    return rows


def best_over(
    runs: Sequence[Mapping[str, Any]],
    metric: str,
    x: str,
    label_keys: Sequence[str],
    key: str,
    select_metric: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[tuple[Row, str]]:
    """Per (label without ``key``, x): the ``key`` value whose runs have the highest mean ``select_metric``
    (default: ``metric`` itself; choose e.g. ``val/acc`` so the test metric is not used to pick), returned as
    ``(row of metric, winning key value)``."""
    reported = {(r.label, r.x): r for r in summarize(runs, metric, x, [*label_keys, key], defaults)}
    best: dict[tuple[str, Any], tuple[float, Row, str]] = {}
    for row in summarize(runs, select_metric or metric, x, [*label_keys, key], defaults):
        if (row.label, row.x) not in reported:
            continue
        base, _, value = row.label.rpartition("+")
        base = base or "all"
        if (base, row.x) not in best or row.mean > best[(base, row.x)][0]:
            r = reported[(row.label, row.x)]
            best[(base, row.x)] = (row.mean, Row(base, r.x, r.mean, r.std, r.n), value)
    order = sort_xs(b for _, b in best)
    return [best[k][1:] for k in sorted(best, key=lambda k: (k[0], order.index(k[1])))]


def key_leaf(key: str) -> str:
    """``model.alpha`` -> ``alpha``, ``pruning/score`` -> ``score``."""
    return key.replace("/", ".").rsplit(".", 1)[-1]


def best_table(best: Sequence[tuple[Row, str]], metric: str, x: str, key: str, select_metric: str | None) -> str:
    """Markdown: per method and x, the winning ``key`` value and its statistics."""
    leaf = key_leaf(key)
    cells = {(r.label, r.x): f"{format_cell(r, metric)}, {leaf}={value}" for r, value in best}
    xs = sort_xs(r.x for r, _ in best)
    lines = [
        f"## best {key} per {x} ({metric})",
        "",
        f"{leaf} chosen by the highest mean {select_metric or metric}; cells: {metric} mean ± std (n), {leaf}.",
        "",
        "| method | " + " | ".join(f"{x.rsplit('.', 1)[-1]}={format_value(v)}" for v in xs) + " |",
        "|" + "|".join([":---"] + ["---:"] * len(xs)) + "|",
    ]
    for label in dict.fromkeys(r.label for r, _ in best):
        lines.append("| " + " | ".join([_md_escape(label), *(cells.get((label, v), "–") for v in xs)]) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- writing


def is_accuracy(metric: str) -> bool:
    """Accuracy-like metrics (name ends in ``acc``) are reported in percent."""
    return metric.endswith("acc")


def format_cell(row: Row, metric: str) -> str:
    """``98.61 ± 0.42 (3)`` for accuracies (percent), ``0.0863 ± 0.0012 (3)`` otherwise."""
    if is_accuracy(metric):
        return f"{100 * row.mean:.2f} ± {100 * row.std:.2f} ({row.n})"
    return f"{row.mean:.4f} ± {row.std:.4f} ({row.n})"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(rows: Sequence[Row], metric: str, x: str, label_name: str = "method") -> str:
    """A heading and a table: one row per label, one column per x value (``–`` where no run)."""
    labels = list(dict.fromkeys(r.label for r in rows))
    xs = sort_xs(r.x for r in rows)
    cells = {(r.label, r.x): format_cell(r, metric) for r in rows}
    leaf = x.rsplit(".", 1)[-1]
    unit = " (%)" if is_accuracy(metric) else ""
    lines = [
        f"## {metric}{unit} vs {x}",
        "",
        "mean ± std (n runs); std is the sample std (ddof=1), 0 for a single run.",
        "",
        "| " + " | ".join([_md_escape(label_name)] + [f"{leaf}={format_value(v)}" for v in xs]) + " |",
        "|" + "|".join([":---"] + ["---:"] * len(xs)) + "|",
    ]
    for label in labels:
        row_cells = [cells.get((label, v), "–") for v in xs]
        lines.append("| " + " | ".join([_md_escape(label), *row_cells]) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Row]) -> str:
    """Long format ``label,x,mean,std,n`` in raw metric units, full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["label", "x", "mean", "std", "n"])
    for r in rows:
        writer.writerow([r.label, r.x, repr(r.mean), repr(r.std), r.n])
    return buf.getvalue()


def plot_name(metric: str, x: str) -> str:
    """``test/acc`` vs ``pruning.keep_ratio`` -> ``test_acc_vs_keep_ratio.png``."""
    return f"{metric.replace('/', '_')}_vs_{x.rsplit('.', 1)[-1]}.png"


def make_figure(rows: Sequence[Row], metric: str, x: str, label_name: str = "method") -> Figure:
    """The metric vs x, one line with std error bars per label (categorical axis when x is not numeric)."""
    scale = 100.0 if is_accuracy(metric) else 1.0
    xs = sort_xs(r.x for r in rows)
    numeric = all(_is_number(v) for v in xs)
    pos = {v: (float(v) if numeric else float(i)) for i, v in enumerate(xs)}

    fig = Figure(figsize=(7, 4.5), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label in dict.fromkeys(r.label for r in rows):
        mine = [r for r in rows if r.label == label]
        ax.errorbar(
            [pos[r.x] for r in mine],
            [scale * r.mean for r in mine],
            yerr=[scale * r.std for r in mine],
            marker="o",
            markersize=5,
            capsize=4,
            linewidth=1.6,
            label=label,
        )
    if not numeric or len(xs) <= 12:
        ax.set_xticks([pos[v] for v in xs], [format_value(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} (%)" if scale != 1.0 else metric)
    ns = sorted({r.n for r in rows})
    per_point = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"
    ax.set_title(f"{metric} vs {x}\nmean ± std over runs ({per_point} per point)", fontsize=11)
    ax.grid(True, alpha=0.35)
    ax.legend(title=label_name, fontsize=9, title_fontsize=9)
    fig.tight_layout()
    return fig


def write_summary(
    rows: Sequence[Row], out_dir: str | Path, metric: str, x: str, label_name: str = "method"
) -> dict[str, Path]:
    """Write ``summary.md``, ``summary.csv`` and the plot into ``out_dir`` atomically; returns their paths."""
    out_dir = Path(out_dir)
    paths = {
        "md": write_text(out_dir / "summary.md", markdown_table(rows, metric, x, label_name)),
        "csv": write_text(out_dir / "summary.csv", csv_text(rows)),
    }
    fig = make_figure(rows, metric, x, label_name)
    paths["png"] = atomic_write(out_dir / plot_name(metric, x), lambda tmp: fig.savefig(tmp, format="png"))
    return paths


def log_to_wandb(rows: Sequence[Row], paths: dict[str, Path], group: str, metric: str) -> str:
    """Log the summary table and plot as one W&B run of job type ``summary`` in the sweep's group.

    Offline unless ``WANDB_MODE`` says otherwise (the files land next to the summary; ``wandb sync`` uploads them).
    Returns the W&B run directory.
    """
    import os

    import wandb

    run = wandb.init(
        project="biobench",
        group=group,
        job_type="summary",
        name=f"summary-{group}",
        dir=str(paths["md"].parent),
        mode=os.environ.get("WANDB_MODE", "offline"),
    )
    table = wandb.Table(
        columns=["label", "x", f"{metric} mean", f"{metric} std", "n"],
        data=[[r.label, r.x, r.mean, r.std, r.n] for r in rows],
    )
    run.log({"summary/table": table, "summary/plot": wandb.Image(str(paths["png"]))})
    run_dir = run.dir
    run.finish()
    return run_dir


# ---------------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run / multirun folders, searched recursively")
    parser.add_argument("--metric", default="test/acc", help="metrics.json key (default: %(default)s)")
    parser.add_argument("--x", default="pruning.keep_ratio", help="dotted config key (default: %(default)s)")
    parser.add_argument(
        "--label",
        default="pruning/score,pruning/sampler",
        help="comma list of Hydra choices / dotted config keys (default: %(default)s)",
    )
    parser.add_argument(
        "--default",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label value for runs without KEY, e.g. model.alpha=0 (plain runs as KD weight 0); repeatable",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the first dir)")
    parser.add_argument("--best-over", default=None, help="dotted key / choice to pick the best value of per x")
    parser.add_argument("--select-metric", default=None, help="metric that picks the best value (default: --metric)")
    parser.add_argument("--wandb", action="store_true", help="also log table and plot to W&B (offline by default)")
    return parser.parse_args(argv)


def parse_defaults(pairs: Sequence[str]) -> dict[str, Any]:
    """``["model.alpha=0"]`` -> ``{"model.alpha": 0.0}`` (numbers as floats, other values as text)."""
    defaults: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--default takes KEY=VALUE, got '{pair}'.")
        try:
            defaults[key.strip()] = float(value)
        except ValueError:
            defaults[key.strip()] = value
    return defaults


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: returns 0 on success, 1 (message on stderr) when there is nothing to summarise."""
    args = parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    label_keys = [k.strip() for k in args.label.split(",") if k.strip()]
    label_name = "+".join(label_keys) or "method"
    try:
        defaults = parse_defaults(args.default)
        runs = collect_runs(args.dirs)
        rows = summarize(runs, args.metric, args.x, label_keys, defaults)
        if args.best_over:
            others = [k for k in label_keys if k != args.best_over]
            best = best_over(runs, args.metric, args.x, others, args.best_over, args.select_metric, defaults)
    except ValueError as err:
        print(f"summarize: error: {err}", file=sys.stderr)
        return 1
    paths = write_summary(rows, args.out or args.dirs[0], args.metric, args.x, label_name)
    if args.best_over:
        text = best_table(best, args.metric, args.x, args.best_over, args.select_metric)
        paths["best"] = write_text(Path(args.out or args.dirs[0]) / f"best_{key_leaf(args.best_over)}.md", text)
        print(text)
    print(paths["md"].read_text())
    print(f"{sum(r.n for r in rows)} of {len(runs)} runs summarised. Wrote:")
    for path in paths.values():
        print(f"  {path}")
    if args.wandb:
        group = Path(args.dirs[0]).resolve().name
        print(f"W&B summary run (group '{group}'): {log_to_wandb(rows, paths, group, args.metric)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
