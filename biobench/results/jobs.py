"""Job accounting for a summary: done, failed, unfinished and missing jobs, against what each sweep expected.

A Hydra multirun dir holds ``multirun.yaml``; the jobs it launches are the product of the value counts of its sweep
overrides (``hydra.overrides.task`` plus the basic sweeper's ``hydra.sweeper.params``). A job whose dir has neither
``status.json`` nor ``metrics.json`` (never started, or died before writing either) is missing.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from biobench.results.runs import Run, load_yaml

log = logging.getLogger(__name__)

MULTIRUN_FILE = "multirun.yaml"


def expected_jobs(multirun_file: str | Path) -> int | None:
    """How many jobs the multirun of ``multirun_file`` launches (``a=1,2 seed=range(3)`` -> 6); ``None`` when that
    cannot be known from the file (a sweeper other than Hydra's basic one, ``glob(...)`` or interval sweeps)."""
    hydra = (load_yaml(Path(multirun_file)) or {}).get("hydra") or {}
    sweeper = hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    args = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    args += list((hydra.get("overrides") or {}).get("task") or [])
    try:
        overrides = OverridesParser.create().parse_overrides(args)
        counts = {o.key_or_group: len(list(o.sweep_string_iterator())) for o in overrides if o.is_sweep_override()}
    except HydraException as err:  # glob() needs the config repository; intervals are not enumerable
        log.warning("Cannot count the jobs of '%s': %s", multirun_file, err)
        return None
    return math.prod(counts.values())  # later overrides of a key replace earlier ones, as in the basic sweeper


@dataclass(frozen=True)
class Sweep:
    """A multirun dir, the number of jobs it launches (``None``: unknown) and the job runs found below it."""

    dir: Path
    expected: int | None
    jobs: list[Run] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return max(0, self.expected - len(self.jobs)) if self.expected is not None else 0

    def missing_numbers(self) -> list[int]:
        """Job numbers without a run dir, when job dirs are named by number (Hydra's default ``sweep.subdir``)."""
        names = [run.dir.resolve().relative_to(self.dir).parts[0] for run in self.jobs]
        if self.expected is None or not all(name.isdigit() for name in names):
            return []
        return sorted(set(range(self.expected)) - {int(name) for name in names})


@dataclass(frozen=True)
class JobReport:
    """Every run read for a summary, grouped into the sweeps they belong to (runs outside a sweep expect one job)."""

    runs: list[Run]
    sweeps: list[Sweep]

    def with_status(self, status: str) -> list[Run]:
        return [run for run in self.runs if run.status == status]

    @property
    def expected(self) -> int | None:
        """Jobs expected in all: each sweep's count plus one per run outside a sweep; ``None`` if one is unknown."""
        if any(s.expected is None for s in self.sweeps):
            return None
        return sum(s.expected for s in self.sweeps) + len(self.runs) - sum(len(s.jobs) for s in self.sweeps)

    @property
    def missing(self) -> int:
        return sum(s.missing for s in self.sweeps)

    @property
    def complete(self) -> bool:
        """No failed, unfinished or missing job."""
        return self.missing == 0 and all(run.status == "done" for run in self.runs)

    def headline(self) -> str:
        """``12 jobs expected: 10 done, 1 failed, 1 missing`` (``N runs found`` when a sweep's count is unknown)."""
        counts = [f"{len(self.with_status('done'))} done", f"{len(self.with_status('failed'))} failed"]
        if self.with_status("running"):
            counts.append(f"{len(self.with_status('running'))} unfinished")
        counts.append(f"{self.missing} missing")
        if self.expected is None:
            unknown = sum(s.expected is None for s in self.sweeps)
            return f"{len(self.runs)} runs found ({unknown} sweep(s) of unknown size): {', '.join(counts)}"
        return f"{self.expected} jobs expected: {', '.join(counts)}"

    def details(self) -> list[str]:
        """One line per failed / unfinished run and per sweep with missing jobs."""
        lines = [f"failed: {run.dir}: {first_line(run.error)}" for run in self.with_status("failed")]
        lines += [
            f"unfinished: {run.dir} (status 'running' since {run.started or '?'}, no end)"
            for run in self.with_status("running")
        ]
        for sweep in self.sweeps:
            if sweep.missing:
                numbers = sweep.missing_numbers()
                which = f" (job {', '.join(map(str, numbers))})" if numbers else ""
                lines.append(f"missing: {sweep.missing} of {sweep.expected} jobs of {sweep.dir}{which}")
        return lines

    def markdown(self) -> str:
        return "\n".join([f"**{self.headline()}**", "", *(f"- {line}" for line in self.details())]).rstrip() + "\n"


def first_line(error: str | None) -> str:
    lines = (error or "").strip().splitlines()
    return lines[0] if lines else "(no error message)"


def find_sweep_dirs(roots: Iterable[str | Path]) -> list[Path]:
    """Every folder at or below ``roots`` holding ``multirun.yaml``, resolved and sorted."""
    return sorted({Path(d).resolve() for root in roots for d, _, files in os.walk(root) if MULTIRUN_FILE in files})


def job_report(roots: Sequence[str | Path], runs: Sequence[Run]) -> JobReport:
    """Assign every run to the innermost sweep dir (below ``roots``) that contains it, and count what is missing."""
    sweep_dirs = find_sweep_dirs(roots)
    jobs: dict[Path, list[Run]] = {d: [] for d in sweep_dirs}
    for run in runs:
        owners = [d for d in sweep_dirs if d in run.dir.resolve().parents]
        if owners:
            jobs[max(owners, key=lambda d: len(d.parts))].append(run)
    sweeps = [Sweep(dir=d, expected=expected_jobs(d / MULTIRUN_FILE), jobs=jobs[d]) for d in sweep_dirs]
    return JobReport(runs=list(runs), sweeps=sweeps)
