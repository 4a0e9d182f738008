"""Margin-softmax identity losses (ArcFace, CosFace) from pytorch-metric-learning, with the margin in the units of
the papers.

ArcFace adds an angular margin ``m`` (radians) to the angle between an embedding and its class centre,
``s cos(theta + m)``; CosFace subtracts ``m`` from the cosine, ``s (cos(theta) - m)``. pytorch-metric-learning's
``ArcFaceLoss`` takes its margin in *degrees* (its default 28.6 is 0.5 rad), so the configured radians are converted
here (and tested against the formula). Each loss owns the class-centre matrix ``W [D, classes]``: it is a
submodule of the system, hence in its optimiser and checkpoint.
"""

from __future__ import annotations

import math

from pytorch_metric_learning import losses
from torch import nn

MARGIN_LOSSES = ("arcface", "cosface")


def margin_loss(kind: str, num_classes: int, embedding_dim: int, margin: float, scale: float) -> nn.Module:
    """``loss(embeddings [N, D], labels [N]) -> scalar``: ``kind`` ``arcface`` (margin in radians, e.g. 0.5) or
    ``cosface`` (cosine margin, e.g. 0.35), logits scaled by ``scale`` (e.g. 64, or smaller for few classes)."""
    if kind not in MARGIN_LOSSES:
        raise ValueError(f"model.loss.kind must be one of {MARGIN_LOSSES}, got '{kind}'.")
    if num_classes < 2:
        raise ValueError(f"A margin-softmax loss needs >= 2 training identities, the data has {num_classes}.")
    if not 0 <= margin < (math.pi / 2 if kind == "arcface" else 1.0) or scale <= 0:
        raise ValueError(f"model.loss: margin {margin} / scale {scale} out of range for {kind}.")
    if kind == "arcface":
        return losses.ArcFaceLoss(num_classes, embedding_dim, margin=math.degrees(margin), scale=scale)
    return losses.CosFaceLoss(num_classes, embedding_dim, margin=margin, scale=scale)
