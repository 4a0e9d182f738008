"""Networks of the fingerprint embedders: a timm backbone (ViT or CNN, by name) with a fixed-length embedding head,
and the minutiae-map head of the guidance loss.

Any timm model with ``forward_intermediates`` serves as backbone (ViTs and ResNets alike): one pass gives the final
features (pooled by the model's own head, ``pre_logits``: a ViT's class token or token mean, a CNN's global average)
and one intermediate feature map ``[N, C, h, w]`` (a ViT's patch tokens on their grid, a CNN stage) that the
minutiae head decodes. No pretrained weights are downloaded; ``pretrained_path`` loads a local state dict.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from biobench.models.nets import vit_conv_stem  # noqa: F401  (registers the conv-stem ViTs with timm)
from biobench.models.nets.timm_net import load_local_weights

EMBEDDER_SYSTEM = "fingerprint_embedder"  # the "system" entry of embedder checkpoints (checked by the Recognizer)


class EmbeddingBackbone(nn.Module):
    """``forward(x) -> (pooled [N, num_features], feature map [N, map_channels, h, w])`` of a timm model.

    Args:
        model_name: a timm model name (``vit_tiny_patch16_224``, ``resnet18``, ...); timm ``kwargs`` (``img_size``,
            ``patch_size``, ``depth`` for a ViT) change its shape.
        in_chans: image channels.
        map_index: which of the model's intermediates (``feature_info``: ViT blocks, CNN stages) feeds the minutiae
            head; negative counts from the end.
        pretrained_path: local weights (safetensors / state dict) to start from.
    """

    def __init__(
        self,
        model_name: str,
        in_chans: int,
        map_index: int = -1,
        pretrained_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if not timm.is_model(model_name):
            raise ValueError(f"Unknown timm model model.net.model_name='{model_name}' (see timm.list_models()).")
        self.model = timm.create_model(model_name, pretrained=False, num_classes=0, in_chans=in_chans, **kwargs)
        if not hasattr(self.model, "forward_intermediates"):
            raise ValueError(f"timm model '{model_name}' has no forward_intermediates: it cannot be an embedder.")
        if pretrained_path is not None:
            load_local_weights(self.model, pretrained_path, model_name)
        stages = self.model.feature_info
        if not -len(stages) <= map_index < len(stages):
            raise ValueError(f"model.net.map_index={map_index} is out of range for the {len(stages)} stages of "
                             f"'{model_name}'.")  # fmt: skip
        self.map_index = map_index % len(stages)
        self.num_features = self.model.num_features
        self.map_channels = stages[self.map_index]["num_chs"]
        self.map_reduction = stages[self.map_index]["reduction"]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        final, (feature_map,) = self.model.forward_intermediates(x, indices=[self.map_index], intermediates_only=False)
        return self.model.forward_head(final, pre_logits=True), feature_map


EMBEDDING_NORMS = ("none", "batch")


class EmbeddingNet(nn.Module):
    """Backbone + linear projection to a fixed-length, L2-normalised embedding.

    ``forward(x) -> (embedding [N, D], feature map)``; ``embed(x)`` is the embedding alone (the Recognizer path).
    ``embedding_norm="batch"`` puts a BatchNorm1d between the projection and the L2 normalisation (insightface's
    feature head): it removes the component that all embeddings share, which dominates a ViT's pooled token at
    initialisation and keeps every cosine near 1 (docs/embedder.md).
    """

    def __init__(self, backbone: EmbeddingBackbone, embedding_dim: int, embedding_norm: str = "none") -> None:
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"model.embedding_dim must be >= 1, got {embedding_dim}.")
        if embedding_norm not in EMBEDDING_NORMS:
            raise ValueError(f"model.net.embedding_norm='{embedding_norm}' is not one of {EMBEDDING_NORMS}.")
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, embedding_dim)
        self.head_norm = nn.BatchNorm1d(embedding_dim) if embedding_norm == "batch" else nn.Identity()
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, feature_map = self.backbone(x)
        return F.normalize(self.head_norm(self.head(pooled)).float(), dim=1), feature_map

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)[0]


def build_embedding_net(net: dict[str, Any], in_chans: int, embedding_dim: int) -> EmbeddingNet:
    """An :class:`EmbeddingNet` from a ``model.net`` config ``{model_name, map_index, pretrained_path,
    embedding_norm, **timm}``."""
    net = dict(net)
    embedding_norm = net.pop("embedding_norm", "none")
    return EmbeddingNet(EmbeddingBackbone(in_chans=in_chans, **net), embedding_dim, embedding_norm)


class MinutiaeMapHead(nn.Module):
    """Decodes a feature map into a minutiae map ``[N, channels, H, W]``, regressed linearly onto the [0, 1] targets.

    No output sigmoid: with targets that are zero almost everywhere, MSE through a sigmoid drives the logits so
    low that the sigmoid saturates and the head stops learning (seen on a tiny overfit run: an all-zero map).

    1x1 projection, bilinear upsampling to ``map_size``, two 3x3 convolutions: small on purpose, so that the
    minutiae information has to be present in the backbone's features rather than be computed by the head.
    """

    def __init__(self, in_channels: int, map_size: tuple[int, int], channels: int = 6, hidden: int = 32) -> None:
        super().__init__()
        self.map_size = tuple(map_size)
        self.project = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.GELU())
        self.refine = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, channels, 3, padding=1)
        )

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.project(feature_map), size=self.map_size, mode="bilinear", align_corners=False)
        return self.refine(x)
