"""Name -> constructor registry for classification networks (the timm pattern).

Every network built here exposes ``forward_features(x) -> [N, D]`` (the penultimate embedding, used by
pruning scores and recognizers), ``forward_head(features) -> logits`` and ``num_features``.
Names starting with ``timm/`` build any timm model (weights only from a local file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_net(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register a constructor ``fn(num_classes, in_chans, **kwargs)`` under its function name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_nets() -> list[str]:
    return [*sorted(_REGISTRY), "timm/<any timm model name>"]


def create_net(name: str, num_classes: int, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """Build network ``name``; an unknown name raises an error listing the known ones."""
    if name.startswith("timm/"):
        from biobench.models.nets.timm_net import create_timm_net

        return create_timm_net(name.removeprefix("timm/"), num_classes, in_chans, **kwargs)
    if name not in _REGISTRY:
        raise ValueError(f"Unknown network model.net.name='{name}'. Known: {', '.join(list_nets())}.")
    return _REGISTRY[name](num_classes=num_classes, in_chans=in_chans, **kwargs)
