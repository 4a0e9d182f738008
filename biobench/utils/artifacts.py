"""Non-scalar results of a run (curves, sample grids, rate points, per-pair scores): files under
``<run dir>/artifacts/`` and, where a W&B logger is attached, W&B images and tables. ``metrics.json`` stays flat
scalars; summaries and plots read these files.

Every function takes the Lightning trainer (the run directory is its ``default_root_dir``) and writes on global
rank zero only; files are written atomically.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pytorch_lightning.loggers import WandbLogger

from biobench.utils.io import atomic_write, write_text

ARTIFACTS_DIR = "artifacts"


def artifacts_dir(trainer: pl.Trainer) -> Path:
    """``<run dir>/artifacts`` of the trainer's run."""
    return Path(trainer.default_root_dir) / ARTIFACTS_DIR


def _wandb_loggers(trainer: pl.Trainer) -> list[WandbLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def _check_name(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"Artifact name must be a plain file stem (no '/', not hidden), got '{name}'.")
    return name


def save_figure(trainer: pl.Trainer, name: str, figure: Figure) -> Path | None:
    """``artifacts/<name>.png`` (and a W&B image under ``artifacts/<name>``); returns the file path on rank zero."""
    if not trainer.is_global_zero:
        return None
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    path = atomic_write(
        artifacts_dir(trainer) / f"{_check_name(name)}.png", lambda tmp: tmp.write_bytes(buffer.getvalue())
    )
    for lg in _wandb_loggers(trainer):
        lg.log_image(key=f"{ARTIFACTS_DIR}/{name}", images=[str(path)], step=trainer.global_step)
    return path


def save_table(trainer: pl.Trainer, name: str, rows: Sequence[Mapping[str, Any]]) -> Path | None:
    """``artifacts/<name>.csv`` from rows of equal keys (and a W&B table); returns the file path on rank zero."""
    if not trainer.is_global_zero:
        return None
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = write_text(artifacts_dir(trainer) / f"{_check_name(name)}.csv", text.getvalue())
    for lg in _wandb_loggers(trainer):
        lg.log_table(
            key=f"{ARTIFACTS_DIR}/{name}", columns=columns, data=[[row.get(c) for c in columns] for row in rows]
        )
    return path


def save_arrays(trainer: pl.Trainer, name: str, arrays: Mapping[str, np.ndarray]) -> Path | None:
    """``artifacts/<name>.npz`` (e.g. per-pair scores, ROC points); files only, W&B gets the pictures and tables."""
    if not trainer.is_global_zero:
        return None

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})

    return atomic_write(artifacts_dir(trainer) / f"{_check_name(name)}.npz", write)
