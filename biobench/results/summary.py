"""Grouping finished runs into summary rows: per (label, x) the mean, sample std and count of a metric.

x is either a config key (``pruning.keep_ratio``: one column per value) or a metric of the runs (``test/bpp``: rate
curves, where each run is a point, or, with a ``group_by`` key such as ``model.lmbda``, each group of runs by label
and that key gives one point with the mean and std of both x and the metric). Labels name the method: Hydra choices
(``pruning/score``) or dotted config keys, joined by ``+``. Directions (for best-over) come from
:mod:`biobench.metrics.registry`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biobench.metrics.registry import MetricInfo, metric_info
from biobench.results.runs import Run, run_value

log = logging.getLogger(__name__)

DEFAULT_LABEL = ("pruning/score", "pruning/sampler")
METHOD_KEY = "method"  # the conf/method/ study preset, a Hydra choice
_MISSING = object()


@dataclass(frozen=True)
class Row:
    """Statistics of one group of runs: ``mean`` / ``std`` / ``n`` of the metric at ``x``.

    For a metric x, ``x`` is the group's mean of that metric, ``x_std`` its sample std and ``group`` the
    ``group_by`` value (``None`` without one); both stay ``None`` when x is a config key.
    """

    label: str
    x: Any
    mean: float
    std: float
    n: int
    x_std: float | None = None
    group: Any = None


def info(metric: str) -> MetricInfo:
    """The registry's rule for ``metric``; an unknown metric is taken as higher-is-better, raw units (warned)."""
    try:
        return metric_info(metric)
    except KeyError:
        log.warning("Metric '%s' is not in biobench.metrics.registry: assuming higher is better, raw units.", metric)
        return MetricInfo("max")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """Compact text for a config value: ``0.3``, ``1``, ``null``, ``topk``."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def key_leaf(key: str) -> str:
    """``model.alpha`` -> ``alpha``, ``pruning/score`` -> ``score``, ``test/bpp`` -> ``bpp``."""
    return key.replace("/", ".").rsplit(".", 1)[-1]


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
    if all(is_number(x) for x in xs):
        return sorted(xs, key=float)
    return sorted(xs, key=format_value)


def default_label(runs: Sequence[Run]) -> list[str]:
    """``["method"]`` when every run was started with a ``method=`` study preset, else score + sampler."""
    if runs and all(run.choices.get(METHOD_KEY) is not None for run in runs):
        return [METHOD_KEY]
    return list(DEFAULT_LABEL)


def x_is_metric(runs: Sequence[Run], x: str) -> bool:
    """Whether ``x`` names a metric of the runs (``test/bpp``) rather than a config key."""
    return any(x in run.metrics for run in runs)


def select_runs(runs: Sequence[Run], where: Mapping[str, Iterable[str]], defaults: Mapping[str, Any]) -> list[Run]:
    """The runs whose value of every ``where`` key (choice or dotted config key) is one of the given texts."""
    allowed = {key: set(values) for key, values in where.items()}
    return [
        run
        for run in runs
        if all(format_value(run_value(run, k, defaults.get(k))) in vals for k, vals in allowed.items())
    ]


def _finite(run: Run, metric: str) -> float | None:
    value = run.metrics.get(metric)
    return float(value) if is_number(value) and math.isfinite(value) else None


def group_runs(
    runs: Sequence[Run],
    metrics: Sequence[str],
    label_keys: Sequence[str],
    key: Callable[[Run], Any],
    key_name: str,
    defaults: Mapping[str, Any] | None = None,
) -> dict[tuple[str, Any], list[Run]]:
    """Runs by (label, ``key(run)``). Runs lacking a finite value of one of ``metrics``, the key (``_MISSING``)
    or a label key without default are skipped with a warning naming the run dir; when none is left a
    ``ValueError`` says why and lists the metrics that do exist."""
    defaults = defaults or {}
    all_parts = [[run_value(run, k, defaults.get(k, _MISSING)) for k in label_keys] for run in runs]
    # names from every run, so that calls on different metrics (best_over) name the same run alike
    names = [short_paths(format_value(p[i]) for p in all_parts if p[i] is not _MISSING) for i in range(len(label_keys))]
    groups: dict[tuple[str, Any], list[Run]] = {}
    skipped = {"a metric": 0, key_name: 0, "a label key": 0}
    for run, parts in zip(runs, all_parts, strict=True):
        lacking = [m for m in metrics if _finite(run, m) is None]
        if lacking:
            why = ", ".join(f"'{m}' ({run.metrics.get(m, 'absent')})" for m in lacking)
            log.warning("Skipping run '%s': no finite value for metric %s.", run.dir, why)
            skipped["a metric"] += 1
            continue
        value = key(run)
        if value is _MISSING:
            log.warning("Skipping run '%s': no value for %s.", run.dir, key_name)
            skipped[key_name] += 1
            continue
        missing = [k for k, part in zip(label_keys, parts, strict=True) if part is _MISSING]
        if missing:
            log.warning("Skipping run '%s': label key(s) %s are no Hydra choice or config key.", run.dir, missing)
            skipped["a label key"] += 1
            continue
        label = "+".join(names[i][format_value(p)] for i, p in enumerate(parts)) if parts else "all"
        groups.setdefault((label, value), []).append(run)
    if not groups:
        known = sorted({m for run in runs for m in run.metrics})
        why = ", ".join(f"{n} lack {what}" for what, n in skipped.items() if n)
        raise ValueError(
            f"no run left to summarise for metric(s) {list(metrics)}, {key_name}, label keys {list(label_keys)}: "
            f"of {len(runs)} finished runs, {why or 'none given'}. Metrics present: {known}."
        )
    return groups


def _config_value(key: str) -> Callable[[Run], Any]:
    def value(run: Run) -> Any:
        found = run_value(run, key, _MISSING)
        return _MISSING if found is None else found

    return value


def summarize(
    runs: Sequence[Run],
    metric: str,
    x: str,
    label_keys: Sequence[str],
    defaults: Mapping[str, Any] | None = None,
) -> list[Row]:
    """Rows of ``metric`` per (label, value of the config key ``x``), sorted by label, then x.

    A run lacking a label key takes its value from ``defaults`` (e.g. ``{"model.alpha": 0.0}``: a plain classifier
    is a KD run with weight 0).
    """
    groups = group_runs(runs, [metric], label_keys, _config_value(x), f"the x key '{x}'", defaults)
    order = {xv: i for i, xv in enumerate(sort_xs(xv for _, xv in groups))}
    rows = []
    for (label, x_value), members in sorted(groups.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        mean, std = mean_std([run.metrics[metric] for run in members])
        rows.append(Row(label=label, x=x_value, mean=mean, std=std, n=len(members)))
    return rows


def rate_points(
    runs: Sequence[Run],
    metric: str,
    x: str,
    label_keys: Sequence[str],
    group_by: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[Row]:
    """Points of ``metric`` vs the metric ``x`` (e.g. ``test/psnr`` vs ``test/bpp``): one per label and
    ``group_by`` value with mean and std of both, or one per run (its dir as ``group``) without ``group_by``;
    sorted by label, then x."""
    key = _config_value(group_by) if group_by else (lambda run: str(run.dir))
    name = f"the group-by key '{group_by}'" if group_by else "a run dir"
    rows = []
    for (label, group), members in group_runs(runs, [metric, x], label_keys, key, name, defaults).items():
        x_mean, x_std = mean_std([run.metrics[x] for run in members])
        mean, std = mean_std([run.metrics[metric] for run in members])
        rows.append(Row(label=label, x=x_mean, mean=mean, std=std, n=len(members), x_std=x_std, group=group))
    return sorted(rows, key=lambda r: (r.label, r.x))


def best_over(
    runs: Sequence[Run],
    metric: str,
    x: str,
    label_keys: Sequence[str],
    key: str,
    select_metric: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[tuple[Row, str]]:
    """Per (label without ``key``, x): the ``key`` value whose runs have the best mean ``select_metric`` (default:
    ``metric``; choose e.g. ``val/acc`` so the test metric is not used to pick) -- highest or lowest as the metric
    registry says (``test/eer``: lowest) -- returned as ``(row of metric, winning key value)``."""
    select = select_metric or metric
    better = info(select).better
    reported = {(r.label, r.x): r for r in summarize(runs, metric, x, [*label_keys, key], defaults)}
    best: dict[tuple[str, Any], tuple[float, Row, str]] = {}
    for row in summarize(runs, select, x, [*label_keys, key], defaults):
        if (row.label, row.x) not in reported:
            continue
        base, _, value = row.label.rpartition("+")
        base = base or "all"
        if (base, row.x) not in best or better(row.mean, best[(base, row.x)][0]):
            r = reported[(row.label, row.x)]
            best[(base, row.x)] = (row.mean, Row(base, r.x, r.mean, r.std, r.n), value)
    order = sort_xs(b for _, b in best)
    return [best[k][1:] for k in sorted(best, key=lambda k: (k[0], order.index(k[1])))]
