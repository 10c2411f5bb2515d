"""Losses as pure functions: adversarial objectives, gradient penalty, total variation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def wgan_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Wasserstein critic loss, to minimise: E[D(fake)] − E[D(real)]."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: Tensor) -> Tensor:
    """Wasserstein generator loss: −E[D(fake)]."""
    return -fake_scores.mean()


def gradient_penalty(
    critic: torch.nn.Module | object, real: Tensor, fake: Tensor, *conditions: Tensor
) -> Tensor:
    """WGAN-GP penalty E[(‖∇D(x̂)‖₂ − 1)²] at random interpolates x̂ of real and fake.

    Args:
        critic: callable scoring ``critic(x̂, *conditions)``.
        real: real samples (B, ...).
        fake: generated samples, same shape.
        conditions: extra critic inputs, held fixed (no penalty on them).
    """
    b = real.shape[0]
    eps = torch.rand(b, *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed, *conditions)  # type: ignore[operator]
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def hinge_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Hinge loss for the discriminator: E[relu(1 − D(real))] + E[relu(1 + D(fake))]."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def hinge_generator_loss(fake_scores: Tensor) -> Tensor:
    """Hinge loss for the generator: −E[D(fake)]."""
    return -fake_scores.mean()


def lsgan_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Least-squares GAN: ½E[(D(real) − 1)²] + ½E[D(fake)²]."""
    return 0.5 * ((real_scores - 1) ** 2).mean() + 0.5 * (fake_scores**2).mean()


def lsgan_generator_loss(fake_scores: Tensor) -> Tensor:
    """Least-squares GAN generator: ½E[(D(fake) − 1)²]."""
    return 0.5 * ((fake_scores - 1) ** 2).mean()


def bce_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN discriminator loss on logits."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def bce_generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN generator loss on logits: −E[log σ(D(fake))]."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def total_variation(x: Tensor, dim: int = 1) -> Tensor:
    """Mean absolute difference between neighbours along ``dim`` (time for sequences)."""
    return x.diff(dim=dim).abs().mean()


def change_weighted_l1(fake: Tensor, real: Tensor, weight: float = 0.0) -> Tensor:
    """L1 between clips (B, T, C, H, W) with pixels that change over time weighted up.

    Each pixel of frame t counts ``1 + weight * |real_t - real_{t-1}|`` (mean over channels,
    frame 0 against itself), so small moving parts — a pressed key, a fingertip — are not
    drowned by the still background. ``weight = 0`` is the plain L1.
    """
    error = (fake - real).abs()
    if weight == 0.0:
        return error.mean()
    change = torch.zeros_like(real[:, :, :1])
    change[:, 1:] = (real[:, 1:] - real[:, :-1]).abs().mean(dim=2, keepdim=True)
    return ((1.0 + weight * change.detach()) * error).mean()
