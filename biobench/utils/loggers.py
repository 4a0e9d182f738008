"""A CSV logger that never deletes rows already written.

Lightning's CSV writer removes an existing ``metrics.csv`` when a new writer opens it (a resumed run, or the
test stage of a spawn-based DDP run) and rewrites the file with only the columns it has seen itself. This
writer appends to the file and merges its header with the one on disk.
"""

from __future__ import annotations

import csv

from pytorch_lightning.loggers import CSVLogger as _CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


class AppendingExperimentWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep an existing metrics file (Lightning's writer deletes it)."""

    def _record_new_keys(self) -> set[str]:
        if not self.metrics_keys and self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))
        return super()._record_new_keys()


class CSVLogger(_CSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` with :class:`AppendingExperimentWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
