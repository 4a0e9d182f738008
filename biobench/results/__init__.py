"""Results as a library: reading run dirs (with their status), job accounting, sweep summaries, plots, W&B.

``biobench-summarize`` (:mod:`biobench.results.cli`) is the command line; :class:`~biobench.results.callback.
SummarizeSweep` writes the same summary into a sweep dir at the end of a Hydra multirun.
"""

from biobench.results.cli import Options, read_jobs, summarize_jobs
from biobench.results.jobs import JobReport, expected_jobs, job_report
from biobench.results.runs import NoRunsError, Run, collect_runs, read_run
from biobench.results.summary import Row, best_over, rate_points, summarize

__all__ = [
    "JobReport",
    "NoRunsError",
    "Options",
    "Row",
    "Run",
    "best_over",
    "collect_runs",
    "expected_jobs",
    "job_report",
    "rate_points",
    "read_jobs",
    "read_run",
    "summarize",
    "summarize_jobs",
]
