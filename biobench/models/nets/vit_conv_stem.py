"""ViTs whose patchify layer is a small convolutional stem ("Early Convolutions Help Transformers See Better",
Xiao et al., NeurIPS 2021): the 16x16 stride-16 projection is replaced by 3x3 stride-2 convolutions (BN + ReLU)
and a 1x1 projection, with the same token grid. Trained from scratch on a few thousand prints, the patchify ViT stays
at chance for hundreds of steps where the conv-stem ViT learns (docs/embedder.md); the token grid, positional
embedding and blocks are timm's, so ``forward_intermediates`` and the minutiae head work unchanged.

Registered with timm as ``vit_tiny_conv_stem`` and ``vit_small_conv_stem``; any timm ViT shape argument
(``img_size``, ``patch_size`` a power of two, ``depth``) applies.
"""

from __future__ import annotations

from typing import Any

from timm.layers import PatchEmbed
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vision_transformer import VisionTransformer
from torch import nn


class ConvStemPatchEmbed(PatchEmbed):
    """:class:`timm.layers.PatchEmbed` with ``log2(patch_size)`` 3x3 stride-2 convolutions as its projection.

    Widths double per convolution and end at ``embed_dim`` (192 at patch 16: 24, 48, 96, 192), then a 1x1
    projection (ViT_C's stem).
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768, **kwargs: Any) -> None:
        super().__init__(patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, **kwargs)
        ph, pw = self.patch_size
        steps = ph.bit_length() - 1
        if ph != pw or ph != 2**steps or steps < 1:
            raise ValueError(f"A conv-stem ViT needs a square power-of-two patch size >= 2, got {self.patch_size}.")
        widths = [max(embed_dim >> (steps - 1 - i), 8) for i in range(steps)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_chans, *widths[:-1]], widths, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.proj = nn.Sequential(*layers, nn.Conv2d(widths[-1], embed_dim, 1))


# No pretrained weights: the configs only tell timm the input the architecture is shaped for (silences its warning).
default_cfgs = generate_default_cfgs(
    {name: {"num_classes": 0, "input_size": (3, 224, 224)} for name in ("vit_tiny_conv_stem", "vit_small_conv_stem")}
)


def _conv_stem_vit(variant: str, pretrained: bool, **kwargs: Any) -> VisionTransformer:
    if pretrained:
        raise ValueError(f"{variant} has no pretrained weights: pass model.net.pretrained_path (a local file).")
    return build_model_with_cfg(
        VisionTransformer,
        variant,
        pretrained=False,
        feature_cfg={"out_indices": kwargs.pop("out_indices", 3), "feature_cls": "getter"},
        embed_layer=ConvStemPatchEmbed,
        **kwargs,
    )


@register_model
def vit_tiny_conv_stem(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """ViT-Tiny (width 192, 3 heads, 12 blocks) with a conv stem."""
    return _conv_stem_vit(
        "vit_tiny_conv_stem", pretrained, **{"patch_size": 16, "embed_dim": 192, "depth": 12, "num_heads": 3, **kwargs}
    )


@register_model
def vit_small_conv_stem(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """ViT-Small (width 384, 6 heads, 12 blocks) with a conv stem."""
    return _conv_stem_vit(
        "vit_small_conv_stem", pretrained, **{"patch_size": 16, "embed_dim": 384, "depth": 12, "num_heads": 6, **kwargs}
    )
