"""Frame and keypoint metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from audiovis.metrics.video import FrameMetrics, KeypointDistance


def test_psnr_of_a_constant_offset_and_ssim_of_identical_frames() -> None:
    real = torch.rand(2, 3, 3, 32, 32) * 1.6 - 0.8  # (B, T, 3, H, W) in [-1, 1], away from clips
    metrics = FrameMetrics()
    metrics.update(real + 0.2, real)  # 0.1 in [0, 1]: MSE 0.01 -> 20 dB
    out = metrics.compute()
    assert out["psnr"].item() == pytest.approx(20.0, abs=1e-3)
    metrics.reset()
    metrics.update(real, real)
    assert metrics.compute()["ssim"].item() == pytest.approx(1.0, abs=1e-5)


def test_scores_are_the_same_inside_a_bf16_mixed_step() -> None:
    # a smooth frame with a little texture, as the studio's: bf16 once ruined SSIM here
    ramp = torch.linspace(-0.8, 0.6, 64)
    real = (ramp[None, :] * ramp[:, None]).expand(4, 3, 64, 64).clone()
    real += 0.02 * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    fake = real + 0.01
    plain = FrameMetrics()
    plain.update(fake, real)
    mixed = FrameMetrics()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed.update(fake, real)
    for name, value in plain.compute().items():
        assert mixed.compute()[name].item() == pytest.approx(value.item(), rel=1e-5)
    mixed.reset()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed.update(real, real)
    assert mixed.compute()["ssim"].item() == pytest.approx(1.0, abs=1e-5)


def test_psnr_averages_per_frame_values() -> None:
    real = torch.zeros(2, 3, 8, 8)
    fake = real.clone()
    fake[0] += 0.2  # 20 dB
    fake[1] += 0.02  # MSE 1e-4 -> 40 dB
    metrics = FrameMetrics()
    metrics.update(fake, real)
    assert metrics.compute()["psnr"].item() == pytest.approx(30.0, abs=1e-3)


def test_keypoint_distance_is_confidence_weighted() -> None:
    pred = torch.tensor([[[0.0, 0.0], [0.5, 0.5], [0.9, 0.9]]])
    target = torch.tensor([[[0.3, 0.4, 1.0], [0.5, 0.5, 1.0], [0.0, 0.0, 0.0]]])
    metric = KeypointDistance()
    metric.update(pred, target)  # (0.5 + 0) / 2, the third joint unannotated
    assert metric.compute().item() == pytest.approx(0.25)
    metric.update(pred[:, :1], torch.tensor([[[0.0, 0.1, 2.0]]]))  # 0.1 with weight 2
    assert metric.compute().item() == pytest.approx((0.5 + 0.2) / 4)


def test_keypoint_distance_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="KeypointDistance"):
        KeypointDistance().update(torch.zeros(2, 3, 2), torch.zeros(2, 4, 3))


def test_ssim_drops_with_noise() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    metrics = FrameMetrics()
    metrics.update(real + 0.5 * torch.randn(real.shape, generator=g), real)
    assert metrics.compute()["ssim"].item() < 0.9
    assert not math.isnan(metrics.compute()["psnr"].item())
