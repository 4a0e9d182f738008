"""Building callbacks and loggers from their config groups (each entry a ``_target_`` node)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def instantiate_group(cfg: DictConfig | None, what: str, skip: Collection[str] = ()) -> list[Any]:
    """Instantiate every ``_target_`` entry of a config group (e.g. ``callbacks`` or ``logger``) not named in
    ``skip``."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(
            f"The '{what}' config must be a mapping of name -> {{_target_: ...}}, got {type(cfg).__name__}."
        )
    objects = []
    for name, node in cfg.items():
        if name not in skip and isinstance(node, DictConfig) and "_target_" in node:
            log.info("Instantiating %s '%s' <%s>", what, name, node._target_)
            objects.append(instantiate(node))
    return objects
