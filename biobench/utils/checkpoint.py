"""Safe checkpoint reading with errors that name the file (whether it fits a model is the model's check:
:meth:`biobench.models.base.System.check_checkpoint`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(..., weights_only=True)`` of a Lightning checkpoint, with a clear error on a bad file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist (ckpt_path).")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"Checkpoint '{path}' cannot be read safely (weights_only=True): {err}") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"Checkpoint '{path}' holds no 'state_dict': not a biobench/Lightning checkpoint.")
    return ckpt


def read_system_checkpoint(path: str | Path, system: str, what: str, hint: str) -> dict[str, Any]:
    """:func:`read_checkpoint` of a checkpoint whose ``system`` entry must be ``system``; otherwise an error naming
    the file, what it should have been (``what``) and how to get one (``hint``)."""
    ckpt = read_checkpoint(path)
    if ckpt.get("system") != system:
        found = ckpt.get("system") or "no 'system' entry"
        raise ValueError(f"Checkpoint '{path}' is not {what} ({found}): {hint}")
    return ckpt
