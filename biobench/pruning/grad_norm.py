"""Per-sample gradient norms over all parameters, vectorised with ``torch.func`` (vmap over grad)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


@torch.no_grad()
def per_sample_grad_norms(net: nn.Module, batches: Iterable[dict[str, torch.Tensor]], num_samples: int) -> np.ndarray:
    """``||d CE(net(x_i), y_i) / d theta||_2`` for every sample, with the net in eval mode (BatchNorm uses its
    running statistics, so each sample's gradient does not depend on the rest of its batch)."""
    net.eval()
    device = next(net.parameters()).device
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}

    def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(net, (p, buffers), (x[None],)), y[None])

    sample_grads = vmap(grad(loss), in_dims=(None, 0, 0))
    out = np.full(num_samples, np.nan)
    for batch in batches:
        with torch.enable_grad():
            grads = sample_grads(params, batch["image"].to(device), batch["label"].to(device))
        sq = sum(g.flatten(1).square().sum(1) for g in grads.values())
        out[batch["index"].numpy()] = sq.sqrt().cpu().numpy()
    return out
