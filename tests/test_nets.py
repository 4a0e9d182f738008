"""Network factory: every registered net and timm models share one interface; bad names fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from biobench.models.nets import create_net, list_nets

BUILTIN = ["small_cnn", "resnet8", "resnet9", "resnet20", "resnet32", "resnet56", "resnet18_cifar"]


def test_builtin_nets_are_registered() -> None:
    assert set(BUILTIN) <= set(list_nets())


@pytest.mark.parametrize("name", BUILTIN)
def test_registered_nets_share_the_interface(name: str) -> None:
    kwargs = {"width": 4} if name != "small_cnn" else {"width": 8}
    net = create_net(name, num_classes=7, in_chans=3, **kwargs)
    x = torch.randn(2, 3, 32, 32)
    feats = net.forward_features(x)
    assert feats.shape == (2, net.num_features)
    assert torch.allclose(net.forward_head(feats), net(x))
    assert net(x).shape == (2, 7)


def test_timm_model_by_name_and_local_weights(tmp_path: Path) -> None:
    net = create_net("timm/resnet10t", num_classes=5, in_chans=1)
    x = torch.randn(2, 1, 32, 32)
    assert net(x).shape == (2, 5) and net.forward_features(x).shape == (2, net.num_features)
    path = tmp_path / "w.pt"
    torch.save(net.model.state_dict(), path)
    loaded = create_net("timm/resnet10t", num_classes=3, in_chans=1, pretrained_path=str(path))  # head re-made
    body = {k: v for k, v in net.model.state_dict().items() if not k.startswith("fc.")}
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in body.items())
    with pytest.raises(ValueError, match="do not fit timm model 'vit_tiny_patch16_224'"):
        create_net("timm/vit_tiny_patch16_224", num_classes=3, in_chans=1, pretrained_path=str(path))


def test_unknown_names_fail_with_the_known_list() -> None:
    with pytest.raises(ValueError, match=r"Unknown network.*Known: .*resnet20"):
        create_net("resnet21", num_classes=2)
    with pytest.raises(ValueError, match="Unknown timm model 'timm/not_a_model'"):
        create_net("timm/not_a_model", num_classes=2)


def test_conv_stem_vit_keeps_the_patch_grid_and_refuses_other_patch_sizes() -> None:
    import timm

    import biobench.models.nets.vit_conv_stem  # noqa: F401  (registers the models)

    vit = timm.create_model("vit_tiny_conv_stem", img_size=64, patch_size=8, depth=1, num_classes=0, in_chans=1)
    convs = [m for m in vit.patch_embed.proj if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] and convs[-1].out_channels == 192
    final, (tokens,) = vit.forward_intermediates(torch.rand(2, 1, 64, 64), indices=[0], intermediates_only=False)
    assert tokens.shape == (2, 192, 8, 8) and final.shape == (2, 65, 192)  # an 8 x 8 grid, as patchify at patch 8
    with pytest.raises(ValueError, match="power-of-two patch size"):
        timm.create_model("vit_tiny_conv_stem", img_size=60, patch_size=12, depth=1, num_classes=0)
