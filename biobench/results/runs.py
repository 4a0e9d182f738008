"""Finding and reading run directories: metrics, resolved config, Hydra choices and overrides, status.

A run dir is any folder holding ``status.json`` (written by every run at start and end) or ``metrics.json``
(older runs wrote only that). ``status.json`` is ``{"status": "running"|"done"|"failed", "error": str|null,
"started": iso time, "ended": iso time|null}``; a run without it counts as done when it has ``metrics.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from biobench.utils.io import read_json

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"
CONFIG_FILE = "config.yaml"
HYDRA_FILE = Path(".hydra") / "hydra.yaml"
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
STATUSES = ("running", "done", "failed")


class NoRunsError(ValueError):
    """A directory given to summarise holds no run (no ``status.json`` / ``metrics.json`` anywhere below it)."""


@dataclass(frozen=True)
class Run:
    """One run dir as read from disk; ``status`` is ``running``, ``done`` or ``failed`` (see the module doc)."""

    dir: Path
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    error: str | None = None
    started: str | None = None
    ended: str | None = None


def load_yaml(path: Path) -> Any:
    """A YAML file as plain Python values, interpolations left as written (``None`` when absent)."""
    if not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def read_status(run_dir: Path) -> dict[str, Any]:
    """``status.json`` of ``run_dir`` checked against the contract (a legacy run without it is ``done``); a malformed
    file raises a ``ValueError`` naming it and what was expected."""
    path = run_dir / STATUS_FILE
    if not path.is_file():
        return {"status": "done"}
    status = read_json(path, "status file")
    if not isinstance(status, dict) or status.get("status") not in STATUSES:
        raise ValueError(f"status file '{path}' must be a JSON object with 'status' one of {STATUSES}, got {status!r}.")
    return status


def read_run(run_dir: str | Path) -> Run:
    """One run dir; config / Hydra files that are absent give empty values.

    A run marked done without ``metrics.json`` is reported as failed, so that it is counted rather than lost.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    state, error = status["status"], status.get("error")
    metrics: dict[str, Any] = {}
    if (run_dir / METRICS_FILE).is_file():
        metrics = read_json(run_dir / METRICS_FILE, "metrics file")
        if not isinstance(metrics, dict):
            raise ValueError(f"metrics file '{run_dir / METRICS_FILE}' is not a JSON object.")
    elif state == "done":
        state, error = "failed", f"status is done but {METRICS_FILE} is missing"
    hydra_cfg = load_yaml(run_dir / HYDRA_FILE) or {}
    return Run(
        dir=run_dir,
        status=state,
        metrics=metrics,
        config=load_yaml(run_dir / CONFIG_FILE) or {},
        choices=((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {},
        overrides=load_yaml(run_dir / OVERRIDES_FILE) or [],
        error=error,
        started=status.get("started"),
        ended=status.get("ended"),
    )


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every folder at or below ``root`` holding ``status.json`` or ``metrics.json``, sorted."""
    return sorted(Path(d) for d, _, files in os.walk(root) if STATUS_FILE in files or METRICS_FILE in files)


def collect_runs(dirs: Iterable[str | Path]) -> list[Run]:
    """Every run below ``dirs``, whatever its status; a dir without runs raises ``NoRunsError``.

    A run given twice (overlapping dirs) is read once; an unreadable run is counted as failed with the reason.
    """
    runs: list[Run] = []
    seen: set[Path] = set()
    for root in map(Path, dirs):
        if not root.is_dir():
            raise NoRunsError(f"'{root}' is not a directory.")
        run_dirs = find_run_dirs(root)
        if not run_dirs:
            raise NoRunsError(f"no runs (no {STATUS_FILE} or {METRICS_FILE} at any depth) found under '{root}'.")
        for run_dir in run_dirs:
            key = run_dir.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                runs.append(read_run(run_dir))
            except (OSError, ValueError) as err:
                log.warning("Unreadable run '%s': %s", run_dir, err)
                runs.append(Run(dir=run_dir, status="failed", error=f"unreadable: {err}"))
    return runs


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


def run_value(run: Run, key: str, default: Any = None) -> Any:
    """``key`` in the run's Hydra runtime choices (``pruning/score``), else as a dotted key of its config."""
    if key in run.choices:
        return run.choices[key]
    return lookup(run.config, key, default)
