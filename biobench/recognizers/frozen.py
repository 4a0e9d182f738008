"""The frozen Recognizer wrapper (DESIGN.md, Recognizer contract): a fixed network that maps served images to
L2-normalised embeddings, differentiable with respect to the images so a loss through it trains what is in front.

The wrapper owns the path from the images a datamodule serves to what the network expects:
served values -> [0, 1] pixels (``spec.to_unit``) -> channels (1 <-> 3) -> bilinear resize (no antialiasing, so it is
differentiable and cheap) -> the network's own ``(x - mean) / std`` -> ``embed`` (or ``forward``) -> L2 normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from biobench.contracts import DataSpec

# ITU-R BT.601 luma, as PIL's convert("L") that made the grayscale datasets
_LUMA = (0.299, 0.587, 0.114)


def size_pair(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``(H, W)`` from one int or a pair; ``None`` stays ``None``."""
    if size is None:
        return None
    pair = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"Recognizer input_size must be one positive int or [H, W], got {size}.")
    return pair


def convert_channels(x: torch.Tensor, in_chans: int) -> torch.Tensor:
    """``x [N, C, H, W]`` with ``in_chans`` channels: gray -> RGB by repetition, RGB -> gray by BT.601 luma."""
    c = x.shape[1]
    if c == in_chans:
        return x
    if c == 1 and in_chans == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and in_chans == 1:
        return (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    raise ValueError(f"Recognizer: cannot convert {c}-channel images to the {in_chans} channels its network takes.")


class FrozenRecognizer(nn.Module):
    """A network frozen as a Recognizer: ``embed(served images [N, C, H, W]) -> [N, D]``, L2-normalised rows.

    Args:
        model: a module with ``embed(x)``, or a plain feature extractor whose ``forward(x)`` returns ``[N, D]``.
        spec: the :class:`DataSpec` of the images it will be given (their value range and channels).
        in_chans: channels the network takes; mean, std: its normalisation of [0, 1] pixels (1 or in_chans values).
        input_size: ``(H, W)`` (or one int) the network takes; ``None`` keeps the served size.

    Parameters never require gradients and every submodule stays in eval mode: ``train()`` (e.g. from a host's
    ``train()``) keeps it there, and ``embed`` puts back a network someone switched to training directly.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: DataSpec,
        in_chans: int,
        mean: Sequence[float],
        std: Sequence[float],
        input_size: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean) not in (1, in_chans) or len(std) not in (1, in_chans) or min(std) <= 0:
            raise ValueError(
                f"Recognizer mean/std need 1 or {in_chans} values (std > 0) for its {in_chans}-channel network, "
                f"got {mean} / {std}."
            )
        self.model = model
        self.spec = spec
        self.in_chans = in_chans
        self.input_size = size_pair(input_size)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()
        # channels-last convolutions: ~30 % faster passes of a CNN recognizer on CPU (oneDNN), the same on GPUs
        self.model.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> FrozenRecognizer:
        """Stays in eval mode whatever ``mode``: BatchNorm statistics and Dropout are part of the frozen network."""
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Served images -> the network's input (differentiable)."""
        if images.ndim != 4 or images.shape[1] != self.spec.in_chans:
            raise ValueError(
                f"Recognizer expects served images [N, {self.spec.in_chans}, H, W] (its DataSpec), "
                f"got shape {tuple(images.shape)}."
            )
        x = convert_channels(self.spec.to_unit(images), self.in_chans)
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=False)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings ``[N, D]`` of served images, differentiable with respect to them."""
        if any(m.training for m in self.model.modules()):
            self.model.eval()
        x = self.preprocess(images).contiguous(memory_format=torch.channels_last)
        feats = self.model.embed(x) if hasattr(self.model, "embed") else self.model(x)
        if feats.ndim != 2:
            raise ValueError(
                f"Recognizer network {type(self.model).__name__} returned shape {tuple(feats.shape)}, expected pooled "
                "features [N, D] (a timm model needs num_classes=0)."
            )
        return F.normalize(feats.float(), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(images)
