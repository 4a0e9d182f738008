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


def create_timm_net(
    model_name: str, num_classes: int, in_chans: int = 3, pretrained_path: str | None = None, **kwargs: Any
) -> TimmNet:
    """Build ``timm.create_model(model_name)``; ``pretrained_path`` loads a local state dict (head excluded)."""
    if not timm.is_model(model_name):
        raise ValueError(f"Unknown timm model 'timm/{model_name}' (see timm.list_models()).")
    model = timm.create_model(model_name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if pretrained_path is not None:
        path = Path(pretrained_path)
        state = read_state_dict(path)  # safetensors or weights_only torch.load, errors naming the file
        head = {k for k in state if k.startswith(model.default_cfg.get("classifier", "head"))}
        missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in head}, strict=False)
        bad = [k for k in missing if not k.startswith(model.default_cfg.get("classifier", "head"))]
        if bad or unexpected:
            raise ValueError(
                f"Weights '{path}' do not fit timm model '{model_name}': "
                f"missing {bad[:5]}, unexpected {unexpected[:5]}."
            )
    return TimmNet(model)
