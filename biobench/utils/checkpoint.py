"""Safe checkpoint loading with errors that say which file and which model did not fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


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


def check_compatible(model: nn.Module, ckpt: dict[str, Any], path: str | Path) -> None:
    """Raise if the checkpoint was saved by a model other than ``model`` (architecture, classes, shapes).

    Keys under the model's ``checkpoint_excluded_prefixes`` (parts it does not save, e.g. a KD student's teacher)
    are ignored, so checkpoints written before a part was excluded still fit."""
    saved = ckpt.get("hyper_parameters", {})
    mine = dict(getattr(model, "hparams", {}))
    keys = ("net", "num_classes", "in_chans")
    differ = {k: (saved.get(k), mine.get(k)) for k in keys if k in saved and k in mine and saved[k] != mine[k]}
    excluded = tuple(getattr(model, "checkpoint_excluded_prefixes", ()))
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith(excluded)}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)]
    if differ or missing or unexpected or shapes:
        detail = "; ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in differ.items())
        raise ValueError(
            f"Checkpoint '{path}' was saved by a different model than the one configured ({type(model).__name__}). "
            f"{detail + '. ' if detail else ''}Missing keys: {missing[:3]}, unexpected: {unexpected[:3]}, "
            f"shape mismatches: {sorted(shapes)[:3]}. Use the experiment/model config the checkpoint was trained with."
        )


def load_model_weights(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Check and load a checkpoint's weights into ``model``; returns the checkpoint dict."""
    ckpt = read_checkpoint(path)
    check_compatible(model, ckpt, path)
    model.load_state_dict(ckpt["state_dict"])
    return ckpt
