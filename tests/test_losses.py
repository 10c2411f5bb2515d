"""Losses against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from audiovis.losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    change_weighted_l1,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    total_variation,
    wgan_critic_loss,
    wgan_generator_loss,
)


def t(*values: float) -> Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_wgan_losses() -> None:
    real, fake = t(1.0, 3.0), t(-1.0, 0.5)
    # E[fake] - E[real] = -0.25 - 2
    assert float(wgan_critic_loss(real, fake)) == pytest.approx(-2.25)
    assert float(wgan_generator_loss(fake)) == pytest.approx(0.25)


def test_hinge_losses() -> None:
    real, fake = t(2.0, 0.5).requires_grad_(True), t(-2.0, 0.5).requires_grad_(True)
    # real: relu(1 - 2) = 0, relu(1 - 0.5) = 0.5 -> mean 0.25
    # fake: relu(1 - 2) = 0, relu(1 + 0.5) = 1.5 -> mean 0.75
    loss = hinge_discriminator_loss(real, fake)
    assert float(loss) == pytest.approx(1.0)
    loss.backward()
    # only the scores inside the margin get a gradient, of -1/2 (real) and +1/2 (fake)
    assert real.grad is not None and fake.grad is not None
    torch.testing.assert_close(real.grad, t(0.0, -0.5))
    torch.testing.assert_close(fake.grad, t(0.0, 0.5))
    # the generator maximises the score: -mean(-2, 0.5) = 0.75
    assert float(hinge_generator_loss(t(-2.0, 0.5))) == pytest.approx(0.75)


def test_hinge_discriminator_loss_is_zero_beyond_the_margins() -> None:
    assert float(hinge_discriminator_loss(t(1.0, 5.0), t(-1.0, -3.0))) == 0.0


def test_lsgan_losses() -> None:
    real, fake = t(1.0, 3.0), t(0.0, 2.0)
    # 0.5 * mean(0, 4) + 0.5 * mean(0, 4) = 1 + 1
    assert float(lsgan_discriminator_loss(real, fake)) == pytest.approx(2.0)
    # 0.5 * mean((0 - 1)^2, (2 - 1)^2) = 0.5
    assert float(lsgan_generator_loss(fake)) == pytest.approx(0.5)
    assert float(lsgan_discriminator_loss(t(1.0, 1.0), t(0.0, 0.0))) == 0.0


def test_bce_losses() -> None:
    zero = t(0.0)
    # sigmoid(0) = 1/2: -log(1/2) for real plus -log(1 - 1/2) for fake
    assert float(bce_discriminator_loss(zero, zero)) == pytest.approx(2 * math.log(2))
    ln3 = t(math.log(3.0))
    # sigmoid(ln 3) = 3/4: real costs -log(3/4), fake costs -log(1/4)
    assert float(bce_discriminator_loss(ln3, ln3)) == pytest.approx(math.log(16 / 3), rel=1e-6)
    assert float(bce_generator_loss(ln3)) == pytest.approx(math.log(4 / 3), rel=1e-6)
    # means over the batch: fake logits ln 3 and 0 cost log(4/3) and log 2
    two = t(math.log(3.0), 0.0)
    expected = (math.log(4 / 3) + math.log(2)) / 2
    assert float(bce_generator_loss(two)) == pytest.approx(expected, rel=1e-6)


def test_bce_losses_on_confident_logits_stay_finite() -> None:
    huge = t(200.0, -200.0)
    loss = bce_discriminator_loss(huge, -huge)
    assert torch.isfinite(loss)
    # real 200 costs ~0, real -200 costs 200; fake -200 costs ~0, fake 200 costs 200
    assert float(loss) == pytest.approx(200.0)


def test_total_variation() -> None:
    # |1 - 0| and |3 - 1| -> 1.5
    assert float(total_variation(torch.tensor([[0.0, 1.0, 3.0]]))) == pytest.approx(1.5)
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    # along dim 1: diffs 1, 2, 0, 0 -> 0.75; along dim 0: |2|, |1|, |-1| -> 4/3
    assert float(total_variation(x)) == pytest.approx(0.75)
    assert float(total_variation(x, dim=0)) == pytest.approx(4 / 3)
    assert float(total_variation(torch.full((2, 5, 3), 7.0))) == 0.0


class LinearCritic(torch.nn.Module):
    """D(x) = sum(x * w): its gradient with respect to x is w at every point."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x: Tensor, *conditions: Tensor) -> Tensor:
        score = (x * self.w).sum(dim=(1, 2))
        for c in conditions:
            score = score + 5.0 * c.sum(dim=1)  # steep in the condition, which is not penalised
        return score


W = [[1.0, 2.0, 0.0], [0.0, 2.0, 0.0]]  # ||w|| = sqrt(1 + 4 + 4) = 3


def test_gradient_penalty_of_a_linear_critic_is_exact() -> None:
    critic = LinearCritic(torch.tensor(W))
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(4, 2, 3, generator=gen)
    fake = torch.randn(4, 2, 3, generator=gen)
    for _ in range(3):  # whatever the random interpolation: (3 - 1)^2
        assert float(gradient_penalty(critic, real, fake)) == pytest.approx(4.0)
    conditions = torch.randn(4, 6, generator=gen)
    assert float(gradient_penalty(critic, real, fake, conditions)) == pytest.approx(4.0)


def test_gradient_penalty_is_zero_for_a_unit_gradient() -> None:
    critic = LinearCritic(torch.tensor([[0.6, 0.0], [0.0, 0.8]]))  # ||w|| = 1
    real, fake = torch.ones(3, 2, 2), torch.zeros(3, 2, 2)
    assert float(gradient_penalty(critic, real, fake)) == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_is_differentiable_in_the_critic() -> None:
    critic = LinearCritic(torch.tensor(W))
    real = torch.randn(4, 2, 3, requires_grad=True)
    fake = torch.randn(4, 2, 3, requires_grad=True)
    gradient_penalty(critic, real, fake).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 4 w / 3
    torch.testing.assert_close(critic.w.grad, 4 * torch.tensor(W) / 3)


def test_gradient_penalty_of_a_quadratic_critic() -> None:
    def critic(x: Tensor) -> Tensor:
        return 0.5 * (x**2).sum(dim=1)  # gradient x: the penalty is (||x|| - 1)^2

    # real and fake coincide, so every interpolate is that point whatever the mixing weight
    real = torch.tensor([[3.0, 4.0], [0.0, 0.5]], requires_grad=True)
    fake = real.detach().clone().requires_grad_(True)
    penalty = gradient_penalty(critic, real, fake)
    # ((5 - 1)^2 + (0.5 - 1)^2) / 2 = (16 + 0.25) / 2
    assert float(penalty) == pytest.approx(8.125)
    penalty.backward()
    # the samples are detached: the penalty trains only the critic, never the generator
    assert real.grad is None
    assert fake.grad is None


def test_change_weighted_l1_weights_the_changing_pixels() -> None:
    # two frames of 1x1x2 pixels: pixel 0 stays at 0, pixel 1 goes 0 -> 1
    real = torch.tensor([[[[[0.0, 0.0]]], [[[0.0, 1.0]]]]])  # (B=1, T=2, C=1, H=1, W=2)
    fake = torch.zeros_like(real) + 0.5
    assert change_weighted_l1(fake, real).item() == pytest.approx(0.5)  # plain L1
    # errors .5 everywhere; the changed pixel weighs 1 + 3 * 1 = 4: (.5 + .5 + .5 + 4 * .5) / 4
    assert change_weighted_l1(fake, real, 3.0).item() == pytest.approx(3.5 / 4)
