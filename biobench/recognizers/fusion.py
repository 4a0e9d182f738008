"""Score-level fusion of two Recognizers as one Recognizer.

``embed(x) = [sqrt(w) a(x), sqrt(1 - w) b(x)]``: the concatenation of the two L2-normalised embeddings, weighted so
that it is itself L2-normalised and its dot product is the weighted sum of the two cosines,
``w cos_a + (1 - w) cos_b``. Fused templates therefore match with the same fast dot-product matcher as single ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from biobench.contracts import DataSpec, Recognizer
from biobench.recognizers.build import build_recognizer


class FusedRecognizer(nn.Module):
    """Weighted concatenation of two Recognizers' embeddings (see the module docstring)."""

    def __init__(self, first: Recognizer, second: Recognizer, weight: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"Fusion weight must lie in [0, 1], got {weight}.")
        self.first, self.second, self.weight = first, second, float(weight)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        a, b = self.first.embed(images), self.second.embed(images)
        return torch.cat([math.sqrt(self.weight) * a, math.sqrt(1.0 - self.weight) * b], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(images)


def fusion_recognizer(
    first: Recognizer | Callable[..., Recognizer],
    second: Recognizer | Callable[..., Recognizer],
    spec: DataSpec,
    weight: float = 0.5,
) -> FusedRecognizer:
    """Fuse two Recognizers (or factories taking ``spec=``, e.g. two ``recognizer=embedder`` configs); ``weight`` is
    the first one's share of the score."""
    return FusedRecognizer(build_recognizer(first, spec), build_recognizer(second, spec), weight)
