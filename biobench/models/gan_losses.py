"""Losses of StyleGAN2 training (FPGAN-Control's adversarial part), kept apart from the networks.

- non-saturating logistic loss: ``D: softplus(-D(real)) + softplus(D(fake))``, ``G: softplus(-D(fake))``;
- R1: :func:`r1_penalty` returns ``E ||grad_x D(x)||^2`` on reals, factor 1. The training step adds
  ``gamma / 2 * r1_penalty * d_reg_every`` (StyleGAN2's convention; GAN-Control: gamma 1, every 16 D steps). With
  DiffAugment, take the gradient w.r.t. the un-augmented reals (the augmentation is differentiable);
- path length regularisation: :func:`path_length_penalty` returns ``E (|J_w^T y| - a)^2`` and the updated running
  mean ``a``; the training step weights it (GAN-Control: 2, every 4 G steps, times the interval).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean softplus(-D(real)) + mean softplus(D(fake))`` (``2 log 2`` at logits 0)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean softplus(-D(fake))`` (``log 2`` at logit 0)."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """``mean_n ||d D(x_n) / d x_n||^2``; ``real_images`` must require grad and have produced ``real_logits``.

    Built with ``create_graph=True`` so the penalty trains D.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty: real_images must require grad (real.detach().requires_grad_()) before D sees it.")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.square().flatten(1).sum(dim=1).mean()


def path_length_penalty(
    fake: torch.Tensor,
    w: torch.Tensor,
    mean_path_length: torch.Tensor | float,
    decay: float = 0.01,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2's path length regulariser: ``(penalty, new_mean)``.

    ``y ~ N(0, I) / sqrt(H W)``, lengths ``|d (fake . y) / d w|`` per sample, ``new_mean = a + decay (mean - a)``
    (detached), ``penalty = mean (length - new_mean)^2``. ``fake`` must come from ``w`` (``return_w=True``).
    """
    draw_on = generator.device if generator is not None else fake.device
    y = torch.randn(fake.shape, generator=generator, device=draw_on, dtype=fake.dtype).to(fake.device)
    y = y / math.sqrt(fake.shape[2] * fake.shape[3])
    (grad,) = torch.autograd.grad((fake * y).sum(), w, create_graph=True)
    lengths = grad.square().flatten(1).sum(dim=1).sqrt()
    mean = torch.as_tensor(mean_path_length, dtype=lengths.dtype, device=lengths.device)
    new_mean = (mean + decay * (lengths.mean() - mean)).detach()
    return (lengths - new_mean).square().mean(), new_mean
