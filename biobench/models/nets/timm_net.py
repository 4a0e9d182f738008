"""Any timm model by name; pretrained weights only from a local file (no downloads at run time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from biobench.models.nets.loading import read_state_dict


class TimmNet(nn.Module):
    """Adapts a timm model to the biobench net interface (``forward_features`` returns pooled ``[N, D]``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_features = model.num_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.get_classifier()(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def load_local_weights(model: nn.Module, path: str | Path, model_name: str) -> None:
    """Load the state dict file ``path`` into the timm ``model`` (its classifier head, absent or of another size,
    excluded); anything else missing or unexpected is an error naming the file."""
    path = Path(path)
    state = read_state_dict(path)  # safetensors or weights_only torch.load, errors naming the file
    head_prefix = model.default_cfg.get("classifier", "head") if hasattr(model, "default_cfg") else "head"
    missing, unexpected = model.load_state_dict(
        {k: v for k, v in state.items() if not k.startswith(head_prefix)}, strict=False
    )
    bad = [k for k in missing if not k.startswith(head_prefix)]
    if bad or unexpected:
        raise ValueError(
            f"Weights '{path}' do not fit timm model '{model_name}': missing {bad[:5]}, unexpected {unexpected[:5]}."
        )


def create_timm_net(
    model_name: str, num_classes: int, in_chans: int = 3, pretrained_path: str | None = None, **kwargs: Any
) -> TimmNet:
    """Build ``timm.create_model(model_name)``; ``pretrained_path`` loads a local state dict (head excluded)."""
    if not timm.is_model(model_name):
        raise ValueError(f"Unknown timm model 'timm/{model_name}' (see timm.list_models()).")
    model = timm.create_model(model_name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if pretrained_path is not None:
        load_local_weights(model, pretrained_path, model_name)
    return TimmNet(model)
