"""Turning OmegaConf containers into plain Python values (checkpoints must hold only plain types)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def to_plain(value: Any) -> Any:
    """Resolve and convert a DictConfig / ListConfig (recursively) to dicts and lists; other values pass."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value
