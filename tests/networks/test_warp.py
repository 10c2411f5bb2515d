"""Keypoint-driven warping: hand-computed flows and image shifts."""

from __future__ import annotations

import math

import torch

from audiovis.networks.warp import BACKGROUND, keypoint_flow, warp


def test_flow_of_one_keypoint_hand_computed() -> None:
    # one keypoint moves from (0.40, 0.50) to (0.50, 0.50); 10 x 10 image, sigma 0.1:
    # pixel centres at (c + 0.5) / 10
    source = torch.tensor([[0.40, 0.50, 1.0]])
    target = torch.tensor([[0.50, 0.50]])
    flow = keypoint_flow(source, target, 10, sigma=0.1)
    assert flow.shape == (10, 10, 2)
    for row, col in ((4, 4), (5, 5), (0, 9)):
        x, y = (col + 0.5) / 10, (row + 0.5) / 10
        g = math.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / (2 * 0.1**2))
        assert math.isclose(flow[row, col, 0].item(), 0.1 * g / (g + BACKGROUND), rel_tol=1e-5)
        assert flow[row, col, 1].item() == 0.0
    # near the keypoint a pixel moves with it; far away, nothing moves
    assert flow[5, 5, 0] > 0.08 and flow[0, 0, 0] < 1e-3


def test_zero_confidence_and_still_keypoints_move_nothing() -> None:
    source = torch.tensor([[0.3, 0.3, 0.0], [0.7, 0.7, 1.0]])
    target = torch.tensor([[0.5, 0.5], [0.7, 0.7]])  # the absent joint moves, the other not
    assert keypoint_flow(source, target, 16, sigma=0.1).abs().max() == 0.0


def test_warp_moves_a_blob_with_its_keypoint() -> None:
    image = torch.zeros(1, 1, 32, 32)
    image[0, 0, 14:18, 6:10] = 1.0  # a 4 x 4 blob centred at x = 8, y = 16 (edge units)
    source = torch.tensor([[[8 / 32, 16 / 32, 1.0]]])
    target = torch.tensor([[[11 / 32, 16 / 32]]])  # 3 pixels to the right (about sigma)
    out = warp(image, keypoint_flow(source, target, 32, sigma=0.1))
    columns = out[0, 0, 14:18].sum(0)
    centre = (columns * (torch.arange(32) + 0.5)).sum() / columns.sum()  # in [0, 32] units
    # the centre moves by 1 / (1 + exp(-2)) = 0.88 of the keypoint's 3 pixels
    assert abs(centre.item() - (8 + 3 / (1 + BACKGROUND))) < 0.3
    assert out[0, 0, 16, 6] == 0.0 and out[0, 0, 16, 11] == 1.0  # left its old place
    # a zero flow returns the image exactly
    assert torch.allclose(warp(image, torch.zeros(1, 32, 32, 2)), image, atol=1e-6)


def test_whole_pixel_flow_is_an_exact_shift() -> None:
    image = torch.rand(2, 3, 8, 8)
    flow = torch.zeros(2, 8, 8, 2)
    flow[..., 0] = 2 / 8  # every pixel reads two columns to its left
    out = warp(image, flow)
    assert torch.allclose(out[..., 2:], image[..., :-2], atol=1e-5)
    assert torch.allclose(out[..., :2], image[..., :1].expand(-1, -1, -1, 2), atol=1e-5)
