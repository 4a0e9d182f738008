"""A small CNN for tiny images (8x8 digits, 28x28 glyphs): two conv blocks, global pooling, linear head."""

from __future__ import annotations

import torch
from torch import nn

from biobench.models.nets.registry import register_net


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 1, width: int = 32, dropout: float = 0.0) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))

        self.features = nn.Sequential(
            block(in_chans, width),
            block(width, width),
            nn.MaxPool2d(2),
            block(width, 2 * width),
            block(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.num_features = 2 * width
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_net
def small_cnn(num_classes: int, in_chans: int = 1, width: int = 32, dropout: float = 0.0) -> SmallCNN:
    return SmallCNN(num_classes, in_chans, width, dropout)
