"""Hydra callback: at the end of a multirun, write the sweep's summary (biobench-summarize) into its sweep dir.

Wired in ``conf/hydra/default.yaml`` under ``hydra.callbacks.summarize``; its options are those of
:class:`~biobench.results.cli.Options` (``hydra.callbacks.summarize.metric=test/eer`` etc.). It never fails the
sweep: a summary that cannot be made is a logged warning. A sweep with failed jobs is summarised too (at exit).
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from biobench.results.cli import Options, read_jobs, summarize_jobs

log = logging.getLogger(__name__)


class SummarizeSweep(Callback):
    """``summary.md`` / ``summary.csv`` / the plot in ``hydra.sweep.dir`` once every job of the multirun ended.

    ``metric: null`` summarises the test counterpart of the config's ``monitor.metric`` (``val/eer`` ->
    ``test/eer``), else ``test/acc``; ``label: null`` is the CLI's default label.
    """

    def __init__(
        self, metric: str | None = None, x: str = "pruning.keep_ratio", label: Sequence[str] | None = None
    ) -> None:
        self.metric, self.x, self.label = metric, x, (list(label) if label is not None else None)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra skips on_multirun_end when a job failed (it re-raises the job's error first), which is exactly when
        # the failed-job counts matter: the summary then runs at interpreter exit.
        atexit.register(self.on_multirun_end, config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.unregister(self.on_multirun_end)
        try:
            sweep_dir = Path(config.hydra.sweep.dir)
            report = read_jobs([sweep_dir])
            opts = Options(metric=self.metric or monitored_test_metric(config), x=self.x, label=self.label)
            summary = summarize_jobs(report, sweep_dir, opts)
            log.info("Sweep summary (%s): %s", report.headline(), summary.paths["md"])
            for line in report.details():
                log.warning("%s", line)
        except Exception as err:  # a summary must never fail the sweep it summarises
            log.warning("No sweep summary written: %s: %s", type(err).__name__, err)


def monitored_test_metric(config: DictConfig) -> str:
    """``test/<leaf>`` of the config's ``monitor.metric`` (``val/acc`` -> ``test/acc``), else ``test/acc``."""
    monitor = config.get("monitor")
    monitored = monitor.get("metric") if isinstance(monitor, DictConfig) else None
    return f"test/{str(monitored).rsplit('/', 1)[-1]}" if monitored else "test/acc"
