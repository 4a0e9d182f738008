"""CIFAR-style ResNets: 3x3 stem without max-pool, for 32x32 inputs (He et al., 2016).

``resnet8/20/32/56`` are the 3-stage BasicBlock nets of the CIFAR paper (base width 16); ``resnet9`` is the
ResNet-9-style net of the ``ref_cifar.py`` yardstick (a conv before each residual pair, 9 convs); ``resnet18_cifar``
is the 4-stage ImageNet ResNet-18 with a CIFAR stem (base width 64). ``width`` scales every stage;
``stem_pool > 1`` max-pools after the stem, so larger inputs (e.g. 128 px fingerprints) cost what 32 px ones do.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from biobench.models.nets.registry import register_net


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x), inplace=True)


class PooledHeadNet(nn.Module):
    """``stem`` -> ``layers`` -> global average pool -> linear ``head``, with the ``forward_features`` /
    ``forward_head`` split that pruning scores and recognizers use."""

    stem: nn.Module
    layers: nn.Module
    head: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class CifarResNet(PooledHeadNet):
    def __init__(
        self, blocks: list[int], widths: list[int], num_classes: int, in_chans: int = 3, stem_pool: int = 1
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        if stem_pool > 1:
            self.stem.append(nn.MaxPool2d(stem_pool))
        layers, cin = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths, strict=True)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, stride=2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.num_features = cin
        self.head = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def _cifar3(depth: int, num_classes: int, in_chans: int, width: int, stem_pool: int) -> CifarResNet:
    n = (depth - 2) // 6
    return CifarResNet([n, n, n], [width, 2 * width, 4 * width], num_classes, in_chans, stem_pool)


@register_net
def resnet8(num_classes: int, in_chans: int = 3, width: int = 16, stem_pool: int = 1) -> CifarResNet:
    return _cifar3(8, num_classes, in_chans, width, stem_pool)


@register_net
def resnet20(num_classes: int, in_chans: int = 3, width: int = 16, stem_pool: int = 1) -> CifarResNet:
    return _cifar3(20, num_classes, in_chans, width, stem_pool)


@register_net
def resnet32(num_classes: int, in_chans: int = 3, width: int = 16, stem_pool: int = 1) -> CifarResNet:
    return _cifar3(32, num_classes, in_chans, width, stem_pool)


@register_net
def resnet56(num_classes: int, in_chans: int = 3, width: int = 16, stem_pool: int = 1) -> CifarResNet:
    return _cifar3(56, num_classes, in_chans, width, stem_pool)


@register_net
def resnet18_cifar(num_classes: int, in_chans: int = 3, width: int = 64, stem_pool: int = 1) -> CifarResNet:
    return CifarResNet([2, 2, 2, 2], [width, 2 * width, 4 * width, 8 * width], num_classes, in_chans, stem_pool)


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlainResidual(nn.Module):
    """Two 3x3 conv-BN layers (ReLU between them) around an identity shortcut, ReLU after the sum."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = _conv_bn_relu(c, c, 1)
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)))


class ResNet9(PooledHeadNet):
    """ResNet-9-style CIFAR net (the shape of the ``ref_cifar.py`` yardstick and of the DAWNBench ResNet-9): per
    stage, a conv-BN-ReLU that widens (and, after the first, halves the resolution with stride 2) followed by a
    :class:`PlainResidual`; 9 convolutions in all, no projection shortcuts. PyTorch's default init."""

    def __init__(self, num_classes: int, in_chans: int = 3, width: int = 16, stem_pool: int = 1) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width]
        self.stem = _conv_bn_relu(in_chans, widths[0], 1)
        if stem_pool > 1:
            self.stem.append(nn.MaxPool2d(stem_pool))
        layers: list[nn.Module] = [PlainResidual(widths[0])]
        for cin, cout in itertools.pairwise(widths):
            layers += [_conv_bn_relu(cin, cout, 2), PlainResidual(cout)]
        self.layers = nn.Sequential(*layers)
        self.num_features = widths[-1]
        self.head = nn.Linear(widths[-1], num_classes)


@register_net
def resnet9(num_classes: int, in_chans: int = 3, width: int = 16, stem_pool: int = 1) -> ResNet9:
    return ResNet9(num_classes, in_chans, width, stem_pool)
