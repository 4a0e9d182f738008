"""biobench-summarize: one metric vs one config value (or vs another metric), per method, mean ± std over runs.

    biobench-summarize outputs/prune_digits/multiruns/<time> [more dirs ...] [--metric test/acc]
        [--x pruning.keep_ratio] [--label method | pruning/score,pruning/sampler] [--out <folder>] [--strict]

Every folder below the given dirs with a ``status.json`` or ``metrics.json`` is a run; only finished runs
(status ``done``, or older runs with a ``metrics.json`` and no status) are summarised. Failed runs (with the first
line of their error), unfinished ones (status ``running``, no end) and missing jobs of Hydra multiruns (jobs the
sweep's ``multirun.yaml`` launches minus the job dirs found) are counted on the console and at the top of
summary.md, e.g. "12 jobs expected: 10 done, 1 failed, 1 missing"; ``--strict`` makes them exit with code 3.

x is a dotted config key (``pruning.keep_ratio``), or a metric of the runs (``--x test/bpp``: rate curves):
then each run is one point of its label's curve, or, with ``--group-by KEY`` (e.g. ``model.lmbda``), each
(label, KEY value) is one point, the mean ± std of x and of the metric over its runs (e.g. over seeds); the plot
shows the metric vs x with error bars on both.

Labels: each ``--label`` key is looked up first in Hydra's runtime choices (``.hydra/hydra.yaml``, e.g.
``pruning/score``), else as a dotted key of the resolved config (e.g. ``model.alpha``); the values joined by ``+``
name the method (path values such as ``model.teacher_ckpt`` by the components that tell them apart). Default: the
``method`` study preset when every run has one (``method=aum_ccs``), else ``pruning/score,pruning/sampler``.

Written to ``--out`` (default: the first dir), each atomically:
  summary.md              job counts, then the methods x x-values table, cells ``mean ± std (n)`` (percent for
                          metrics the registry (biobench.metrics.registry) shows in percent: acc, EER, TAR, ...)
  summary.csv             long format: label,x,mean,std,n (raw units; plus x_std,group when x is a metric)
  <metric>_vs_<x leaf>.png

``--default KEY=VALUE`` labels runs that lack KEY (e.g. ``model.alpha=0``: plain classifier runs next to KD runs).
``--where KEY=V1,V2`` keeps only runs whose KEY is one of the values. ``--best-over KEY`` (e.g. ``model.alpha``)
adds ``best_<key leaf>.md``: per method (labels without KEY) and x, the KEY value with the best mean
``--select-metric`` (default: ``--metric``; highest or lowest as the registry says, e.g. lowest ``test/eer``).
``--wandb`` logs table and plot as a ``summary`` run in the runs' own W&B project and group.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biobench.results.jobs import JobReport, job_report
from biobench.results.report import best_table, markdown_table, rate_table, write_summary
from biobench.results.runs import collect_runs
from biobench.results.summary import (
    best_over,
    default_label,
    key_leaf,
    rate_points,
    select_runs,
    summarize,
    x_is_metric,
)
from biobench.utils.io import write_text

log = logging.getLogger(__name__)

INCOMPLETE_EXIT = 3  # --strict: a summary with failed, unfinished or missing jobs


@dataclass(frozen=True)
class Options:
    """What to summarise; the CLI's options (see the module doc)."""

    metric: str = "test/acc"
    x: str = "pruning.keep_ratio"
    label: Sequence[str] | None = None  # None: default_label(runs)
    group_by: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    where: Mapping[str, Sequence[str]] = field(default_factory=dict)
    best_over: str | None = None
    select_metric: str | None = None
    wandb: bool = False


@dataclass(frozen=True)
class Summary:
    report: JobReport
    n_runs: int  # runs summarised
    paths: dict[str, Path]
    text: str  # the tables as printed
    wandb: dict[str, str] | None = None


def read_jobs(dirs: Sequence[str | Path]) -> JobReport:
    """Every run below ``dirs`` with the sweeps they belong to; ``NoRunsError`` when a dir holds none."""
    return job_report(dirs, collect_runs(dirs))


def summarize_jobs(report: JobReport, out: str | Path, opts: Options, first_dir: str | Path | None = None) -> Summary:
    """Summarise the finished runs of ``report`` into ``out``; a ``ValueError`` says why nothing can be."""
    runs = select_runs(report.with_status("done"), opts.where, opts.defaults)
    if not runs:
        raise ValueError(f"no finished run to summarise ({report.headline()}; --where {dict(opts.where)}).")
    label_keys = list(opts.label) if opts.label is not None else default_label(runs)
    label_name = "+".join(label_keys) or "method"
    if x_is_metric(runs, opts.x):
        if opts.best_over:
            raise ValueError(f"--best-over needs a config key as x, but --x '{opts.x}' is a metric of the runs.")
        rows = rate_points(runs, opts.metric, opts.x, label_keys, opts.group_by, opts.defaults)
        table = rate_table(rows, opts.metric, opts.x, label_name, opts.group_by)
    else:
        rows = summarize(runs, opts.metric, opts.x, label_keys, opts.defaults)
        table = markdown_table(rows, opts.metric, opts.x, label_name)
    best_text = ""
    if opts.best_over:
        others = [k for k in label_keys if k != opts.best_over]
        best = best_over(runs, opts.metric, opts.x, others, opts.best_over, opts.select_metric, opts.defaults)
        best_text = best_table(best, opts.metric, opts.x, opts.best_over, opts.select_metric)
    paths = write_summary(rows, out, report.markdown() + "\n" + table, opts.metric, opts.x, label_name)
    if best_text:
        paths["best"] = write_text(Path(out) / f"best_{key_leaf(opts.best_over)}.md", best_text)
    logged = None
    if opts.wandb:
        from biobench.results.wandb_summary import log_to_wandb, wandb_target

        logged = log_to_wandb(rows, paths, opts.metric, wandb_target(report, first_dir or out))
    return Summary(report, sum(r.n for r in rows), paths, "\n".join(t for t in (best_text, table) if t), logged)


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    """``["model.alpha=0"]`` -> ``{"model.alpha": "0"}``; a pair without ``=`` or key is an error naming ``option``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} takes KEY=VALUE, got '{pair}'.")
        out[key.strip()] = value.strip()
    return out


def parse_defaults(pairs: Sequence[str]) -> dict[str, Any]:
    """``["model.alpha=0"]`` -> ``{"model.alpha": 0.0}`` (numbers as floats, other values as text)."""
    defaults: dict[str, Any] = {}
    for key, value in parse_pairs(pairs, "--default").items():
        try:
            defaults[key] = float(value)
        except ValueError:
            defaults[key] = value
    return defaults


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biobench-summarize",
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run / multirun folders, searched recursively")
    parser.add_argument("--metric", default="test/acc", help="metrics.json key (default: %(default)s)")
    parser.add_argument(
        "--x",
        default="pruning.keep_ratio",
        help="dotted config key, or a metric of the runs for rate curves, e.g. test/bpp (default: %(default)s)",
    )
    parser.add_argument(
        "--label",
        default=None,
        help="comma list of Hydra choices / dotted config keys (default: method if every run has one, "
        "else pruning/score,pruning/sampler)",
    )
    parser.add_argument(
        "--group-by", default=None, help="metric x only: one point per label and value of this key (default: per run)"
    )
    parser.add_argument(
        "--default",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label value for runs without KEY, e.g. model.alpha=0 (plain runs as KD weight 0); repeatable",
    )
    parser.add_argument(
        "--where", action="append", default=[], metavar="KEY=V1,V2", help="keep runs whose KEY is one of; repeatable"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the first dir)")
    parser.add_argument("--best-over", default=None, help="dotted key / choice to pick the best value of per x")
    parser.add_argument("--select-metric", default=None, help="metric that picks the best value (default: --metric)")
    parser.add_argument("--wandb", action="store_true", help="also log table and plot to W&B (the runs' project/group)")
    parser.add_argument(
        "--strict", action="store_true", help=f"exit {INCOMPLETE_EXIT} when jobs failed, are unfinished or missing"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 on success, 1 (message on stderr) when there is nothing to summarise, 3 with ``--strict`` and
    failed / unfinished / missing jobs (the summary is written all the same)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    try:
        opts = Options(
            metric=args.metric,
            x=args.x,
            label=[k.strip() for k in args.label.split(",") if k.strip()] if args.label is not None else None,
            group_by=args.group_by,
            defaults=parse_defaults(args.default),
            where={k: v.split(",") for k, v in parse_pairs(args.where, "--where").items()},
            best_over=args.best_over,
            select_metric=args.select_metric,
            wandb=args.wandb,
        )
        report = read_jobs(args.dirs)
        print("\n".join([report.headline(), *(f"  {line}" for line in report.details())]) + "\n")
        result = summarize_jobs(report, args.out or args.dirs[0], opts, args.dirs[0])
    except ValueError as err:  # NoRunsError included
        print(f"biobench-summarize: error: {err}", file=sys.stderr)
        return 1
    print(result.text)
    print(f"{result.n_runs} of {len(report.runs)} runs summarised. Wrote:")
    for path in result.paths.values():
        print(f"  {path}")
    if result.wandb:
        print(
            f"W&B summary run (project '{result.wandb['project']}', group '{result.wandb['group']}'): "
            f"{result.wandb['dir']}"
        )
    if args.strict and not report.complete:
        print(f"biobench-summarize: --strict: {report.headline()}", file=sys.stderr)
        return INCOMPLETE_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
