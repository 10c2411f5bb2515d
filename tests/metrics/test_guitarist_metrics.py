"""Audio2Guitarist metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from audiovis.metrics.guitarist import (
    FrameMetrics,
    KeypointMaskConsistency,
    MaskChangeIoU,
    MaskIoU,
    keypoints_on_mask,
    mask_iou,
)


def test_mask_iou_of_two_l_shapes() -> None:
    pred = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    true = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # intersection: the top-left pixel; union: three pixels
    assert mask_iou(pred, true).item() == pytest.approx(1 / 3)


def test_mask_iou_thresholds_probabilities_and_empty_masks_agree() -> None:
    pred = torch.tensor([[0.7, 0.4], [0.2, 0.9]])  # on at (0, 0) and (1, 1)
    true = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert mask_iou(pred, true).item() == 1.0
    assert mask_iou(pred, true, threshold=0.8).item() == pytest.approx(0.5)
    assert mask_iou(torch.zeros(3, 3), torch.zeros(3, 3)).item() == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(torch.zeros(2, 2), torch.zeros(3, 3))


def test_mask_iou_metric_averages_frames() -> None:
    metric = MaskIoU()
    true = torch.zeros(1, 2, 1, 2, 2)
    true[0, :, 0, 0, 0] = 1
    pred = true.clone()
    pred[0, 1, 0, 1, 1] = 1  # frame 0 exact (1), frame 1: I = 1, U = 2 (0.5)
    metric.update(pred, true)
    metric.update(torch.zeros(1, 1, 1, 2, 2), true[:, :1])  # a frame with IoU 0
    assert metric.compute().item() == pytest.approx((1 + 0.5 + 0) / 3)


def test_mask_change_iou_scores_only_the_motion() -> None:
    reference = torch.zeros(3, 3)
    reference[:, 0] = 1  # the performer: the left column
    true = reference.clone()
    true[0, 1] = true[1, 1] = 1  # it reaches right in two pixels
    metric = MaskChangeIoU()
    metric.update(reference, true, reference)  # a copy of the reference: no motion, IoU 0
    half = reference.clone()
    half[0, 1] = 1
    half[2, 2] = 1  # one pixel of the motion right, one wrong: I = 1, U = 3
    metric.update(half, true, reference)
    metric.update(true, true, reference)  # exact: 1
    assert metric.compute().item() == pytest.approx((0 + 1 / 3 + 1) / 3)
    still = MaskChangeIoU()
    still.update(reference[None].expand(2, 3, 3), reference[None].expand(2, 3, 3), reference)
    assert still.compute().item() == 1.0  # nothing moved and nothing predicted to


def test_keypoints_on_mask_pixel_convention_and_confidence() -> None:
    mask = torch.zeros(2, 2)
    mask[0, 1] = 1  # top-right pixel: x in [0.5, 1), y in [0, 0.5)
    kp = torch.tensor(
        [
            [0.75, 0.25, 1.0],  # on the mask
            [0.25, 0.25, 1.0],  # off it
            [0.75, 0.25, 0.1],  # on it but not confident: not counted
            [1.20, 0.25, 1.0],  # outside the frame: not counted
            [0.50, 0.00, 1.0],  # the pixel's top-left corner belongs to it
        ]
    )
    on, counted = keypoints_on_mask(kp, mask)
    assert on.tolist() == [True, False, False, False, True]
    assert counted.tolist() == [True, True, False, False, True]
    metric = KeypointMaskConsistency()
    metric.update(kp[None], mask[None, None])  # (B, K, 3) with a (B, 1, H, W) mask
    assert metric.compute().item() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="leading axes"):
        metric.update(kp[None], torch.zeros(2, 2, 2))


def test_frame_psnr_and_ssim_hand_cases() -> None:
    real = torch.zeros(2, 3, 16, 16)  # mid grey in [-1, 1]
    fake = real + 0.2  # 0.1 off everywhere in [0, 1]: MSE 0.01 → PSNR 20 dB
    metrics = FrameMetrics()
    metrics.update(fake, real)
    out = metrics.compute()
    assert out["psnr"].item() == pytest.approx(20.0, abs=1e-3)
    same = FrameMetrics()
    same.update(real[None], real[None])  # (B, T, 3, H, W) is accepted too
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ssim = FrameMetrics()
    ssim.update(image, image)
    assert ssim.compute()["ssim"].item() == pytest.approx(1.0, abs=1e-5)
    assert math.isinf(same.compute()["psnr"].item()) or same.compute()["psnr"].item() > 60
