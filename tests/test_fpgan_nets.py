"""FPGAN-Control networks: StyleGAN2 layers, the split-latent generator, the discriminator, GAN losses, DiffAugment."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from biobench.models.gan_losses import d_logistic_loss, g_nonsaturating_loss, path_length_penalty, r1_penalty
from biobench.models.nets.diff_augment import cutout, diff_augment, translation
from biobench.models.nets.fpgan_discriminator import FPGANDiscriminator
from biobench.models.nets.fpgan_generator import FPGANGenerator, ema_beta, ema_update
from biobench.models.nets.stylegan2_layers import (
    Blur,
    MinibatchStdDev,
    ModulatedConv2d,
    Upsample,
    channels_per_resolution,
    resolution_levels,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"channel_base": 256, "channel_max": 16}


def tiny_generator(resolution: int = 32, **kwargs) -> FPGANGenerator:
    torch.manual_seed(0)
    g = FPGANGenerator(resolution, identity_dim=8, appearance_dim=6, identity_w_dim=10, appearance_w_dim=12, n_mlp=2,
                       **TINY, **kwargs)  # fmt: skip
    with torch.no_grad():  # noise strengths start at 0: give the noise an effect
        for name, p in g.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    return g


def latents(n: int, g: FPGANGenerator, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, g.identity_dim, generator=gen), torch.randn(n, g.appearance_dim, generator=gen)


@pytest.mark.parametrize("resolution", [32, 64])
def test_generator_and_discriminator_shapes(resolution: int) -> None:
    g = tiny_generator(resolution)
    d = FPGANDiscriminator(resolution, **TINY)
    images, w = g(*latents(4, g), return_w=True)
    assert images.shape == (4, 1, resolution, resolution) and images.dtype == torch.float32
    assert w.shape == (4, 22) and len(g.make_noise(4)) == 1 + 2 * int(math.log2(resolution // 4))
    logits = d(images)
    assert logits.shape == (4,) and logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert g.double()(*(z.double() for z in latents(2, g))).dtype == torch.float64


def test_base_size_three_and_channel_rule() -> None:
    assert resolution_levels(48, 3) == [3, 6, 12, 24, 48]
    assert channels_per_resolution([4, 64, 128], channel_base=8192, channel_max=128) == {4: 128, 64: 128, 128: 64}
    g = FPGANGenerator(24, 4, 4, 4, 4, n_mlp=1, base_size=3, channels={3: 8, 6: 8, 12: 4, 24: 4})
    d = FPGANDiscriminator(24, base_size=3, channels={3: 8, 6: 8, 12: 4, 24: 4})
    assert d(g(torch.randn(2, 4), torch.randn(2, 4))).shape == (2,)


def test_bad_configurations_fail_clearly() -> None:
    with pytest.raises(ValueError, match="times a power of two"):
        FPGANGenerator(96, base_size=4)
    with pytest.raises(ValueError, match="no entry for resolutions"):
        FPGANDiscriminator(32, channels={4: 8, 8: 8, 16: 8})
    g = tiny_generator()
    with pytest.raises(ValueError, match=r"z_app must be \[N, 6\]"):
        g(torch.randn(2, 8), torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"takes \[N, 1, 32, 32\]"):
        FPGANDiscriminator(32, **TINY)(torch.randn(2, 1, 16, 16))


def per_sample_reference(conv: ModulatedConv2d, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The paper's formulation: each sample convolved with its own modulated (and demodulated) weight."""
    styles, out = conv.modulation(w), []
    for i in range(x.shape[0]):
        weight = conv.weight * conv.scale * styles[i][None, :, None, None]
        if conv.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(1, 2, 3), keepdim=True) + conv.eps)
        xi = x[i : i + 1]
        if conv.upsample:
            out.append(conv.blur(F.conv_transpose2d(xi, weight.transpose(0, 1), stride=2)))
        else:
            out.append(F.conv2d(xi, weight, padding=conv.padding))
    return torch.cat(out)


@pytest.mark.parametrize(("kernel", "demodulate", "upsample"), [(3, True, False), (3, True, True), (1, False, False)])
def test_modulated_conv_equals_per_sample_convolution(kernel: int, demodulate: bool, upsample: bool) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, kernel, style_dim=7, demodulate=demodulate, upsample=upsample)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 7)
    out = conv(x, w)
    assert out.shape == (3, 5, 16 if upsample else 8, 16 if upsample else 8)
    torch.testing.assert_close(out, per_sample_reference(conv, x, w), atol=1e-5, rtol=1e-5)


def test_demodulation_gives_unit_output_std() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 8, 3, style_dim=4)
    with torch.no_grad():
        conv.modulation.bias.fill_(5.0)  # large styles: without demodulation the std would be ~5
    std = conv(torch.randn(2, 32, 32, 32), torch.randn(2, 4)).std(dim=(2, 3))
    assert std.min() > 0.8 and std.max() < 1.2


def test_resampling_filters_keep_constants() -> None:
    x = torch.full((1, 2, 6, 6), 3.0)
    up = Upsample()(x)
    assert up.shape == (1, 2, 12, 12) and torch.allclose(up[..., 2:-2, 2:-2], torch.tensor(3.0))
    assert torch.allclose(Blur((1, 2))(x)[..., 1:-2, 1:-2], torch.tensor(3.0))  # pad (before, after)


def test_minibatch_stddev_matches_its_definition() -> None:
    x = torch.randn(6, 4, 3, 3)
    out = MinibatchStdDev(group_size=4)(x)  # 4 does not divide 6: groups of 3 (samples i, i + 2, i + 4)
    expected = x.reshape(3, 2, 4, 3, 3).var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    assert out.shape == (6, 5, 3, 3) and torch.allclose(out[:, 4, 0, 0], expected.repeat(3))


def test_identity_latent_and_noise_fix_the_identity_part() -> None:
    g = tiny_generator()
    z_id, z_app = latents(1, g)
    z_id, z_app_two = z_id.expand(2, -1), torch.cat([z_app, -z_app])
    noise = g.make_noise(1, torch.Generator().manual_seed(3))  # batch 1: broadcast to every impression
    images, w = g(z_id, z_app_two, noise, return_w=True)
    (w_id, w_app) = g.split_w(w)
    torch.testing.assert_close(w_id[0], w_id[1], rtol=0, atol=1e-6)  # equal up to GEMM rounding (1 ulp)
    assert not torch.allclose(w_app[0], w_app[1])
    assert not torch.allclose(images[0], images[1])


def test_passed_noise_is_used() -> None:
    g = tiny_generator()
    z = latents(2, g)
    noise = g.make_noise(2, torch.Generator().manual_seed(3))
    same = g.make_noise(2, torch.Generator().manual_seed(3))
    other = g.make_noise(2, torch.Generator().manual_seed(4))
    assert torch.equal(g(*z, noise), g(*z, same))
    assert not torch.allclose(g(*z, noise), g(*z, other))
    assert not torch.allclose(g(*z), g(*z))  # no noise given: fresh noise each call


def test_truncation_per_group() -> None:
    g = tiny_generator()
    g.w_avg_beta = 0.0
    g.update_w_avg(torch.randn(5, g.w_dim))
    z = latents(3, g)
    w = g.mapping(*z)
    _, w_trunc = g(*z, truncation_psi_id=0.0, return_w=True)
    w_id, w_app = g.split_w(w_trunc)
    assert torch.equal(w_id, g.w_avg[: g.identity_w_dim].expand_as(w_id)) and torch.allclose(w_app, g.split_w(w)[1])
    _, w_half = g(*z, truncation_psi_app=0.5, return_w=True)
    torch.testing.assert_close(g.split_w(w_half)[1], (g.split_w(w)[1] + g.w_avg[g.identity_w_dim :]) / 2)


def test_update_w_avg_is_a_moving_average() -> None:
    g = tiny_generator()
    w = torch.randn(4, g.w_dim)
    g.update_w_avg(w)
    torch.testing.assert_close(g.w_avg, (1 - g.w_avg_beta) * w.mean(0))


def test_ema_update_beta_zero_copies_and_one_keeps() -> None:
    source, target = tiny_generator(), tiny_generator()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    kept = [p.clone() for p in target.parameters()]
    ema_update(target, source, beta=1.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), kept, strict=True))
    source.update_w_avg(torch.ones(2, source.w_dim))
    ema_update(target, source, beta=0.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), source.parameters(), strict=True))
    assert torch.equal(target.w_avg, source.w_avg)
    assert ema_beta(16, 10_000) ** (10_000 / 16) == pytest.approx(0.5)  # half of the weight after the half-life


def test_ema_rampup_caps_the_half_life_early_and_lets_go_of_the_start() -> None:
    assert ema_beta(16, 10_000, 1_600, rampup=0.05) == pytest.approx(0.5 ** (16 / 80))  # 5 % of 1,600 images
    assert ema_beta(16, 10_000, 10**7, rampup=0.05) == ema_beta(16, 10_000)  # later the fixed half-life rules
    # 800 iterations of 16: the random start keeps 41 % of the average with a fixed half-life, nothing with the rampup
    start = [math.prod(ema_beta(16, 10_000, 16 * k, rampup) for k in range(1, 801)) for rampup in (None, 0.05)]
    assert start[0] == pytest.approx(0.41, abs=0.01) and start[1] < 1e-6
    with pytest.raises(ValueError, match="images_seen"):
        ema_beta(16, 10_000, rampup=0.05)


def test_r1_penalty_of_a_linear_discriminator_is_the_squared_weight_norm() -> None:
    a = torch.randn(1, 1, 4, 4, requires_grad=True)
    x = torch.randn(3, 1, 4, 4).requires_grad_()
    penalty = r1_penalty((a * x).flatten(1).sum(1), x)
    torch.testing.assert_close(penalty, a.square().sum())
    (grad_a,) = torch.autograd.grad(penalty, a)  # create_graph: the penalty trains D
    torch.testing.assert_close(grad_a, 2 * a)
    with pytest.raises(ValueError, match="must require grad"):
        r1_penalty(x.sum(dim=(1, 2, 3)), x.detach())


def test_logistic_losses_at_known_logits() -> None:
    zero, two = torch.zeros(4), torch.full((4,), 2.0)
    torch.testing.assert_close(d_logistic_loss(zero, zero), torch.tensor(2 * math.log(2)))
    torch.testing.assert_close(g_nonsaturating_loss(zero), torch.tensor(math.log(2)))
    torch.testing.assert_close(d_logistic_loss(two, -two), torch.tensor(2 * math.log1p(math.exp(-2))))
    torch.testing.assert_close(g_nonsaturating_loss(two), torch.tensor(math.log1p(math.exp(-2))))


def test_path_length_penalty_of_a_linear_generator() -> None:
    w = torch.randn(3, 16, requires_grad=True)
    fake = 2.0 * w.view(3, 1, 4, 4)  # J^T y = 2 y: length = 2 |y|
    y = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(5)) / 4
    lengths = 2 * y.flatten(1).norm(dim=1)
    penalty, mean = path_length_penalty(fake, w, 0.0, decay=1.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(mean, lengths.mean())
    torch.testing.assert_close(penalty, (lengths - lengths.mean()).square().mean())
    _, slow = path_length_penalty(fake, w, torch.tensor(1.0), decay=0.0)
    assert slow.item() == 1.0


def test_diff_augment_keeps_shape_is_differentiable_and_reproducible() -> None:
    x = torch.rand(4, 1, 16, 16).requires_grad_()
    out = diff_augment(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    one = translation(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(one, translation(x, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(translation(x, ratio=0.0), x)
    assert torch.equal(diff_augment(x, "translation", torch.Generator().manual_seed(7)), one)
    with pytest.raises(ValueError, match="not among"):
        diff_augment(x, ["color"])


def test_translation_shifts_and_cutout_zeroes_a_square() -> None:
    x = torch.arange(1.0, 65.0).view(1, 1, 8, 8).expand(50, -1, -1, -1)
    shifted = translation(x, ratio=0.25, generator=torch.Generator().manual_seed(0))
    nonzero = shifted.flatten(1).ne(0).sum(1)
    assert nonzero.min() >= 36 and nonzero.max() == 64  # shifts of up to 2 px per axis, some samples unshifted
    cut = cutout(torch.ones(200, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    zeros = (cut == 0).flatten(1).sum(1)
    assert zeros.max() == 16 and zeros.min() >= 4  # a 4 x 4 square, clipped by the borders


def test_regularisers_backpropagate_through_the_real_networks() -> None:
    g, d = tiny_generator(), FPGANDiscriminator(32, **TINY)
    real = torch.rand(4, 1, 32, 32).mul(2).sub(1).requires_grad_()
    aug = torch.Generator().manual_seed(0)
    r1 = r1_penalty(d(diff_augment(real, generator=aug)), real)
    r1.backward()
    assert all(p.grad is not None for name, p in d.named_parameters() if name.endswith("weight"))
    fake, w = g(*latents(4, g), return_w=True)
    penalty, mean = path_length_penalty(fake, w, 0.0)
    penalty.backward()
    assert mean > 0 and g.mapping_id[1].weight.grad is not None and g.const.grad is not None
