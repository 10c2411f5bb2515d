"""Keypoint-driven warping: move an image's pixels with the keypoints near them.

A pixel near keypoint k is carried by that keypoint's displacement; pixels far from every
keypoint stay put. With Gaussian weights around the keypoints' target positions (σ in image
fractions) the backward flow at pixel x is

    f(x) = Σ_k g_k(x) (t_k − s_k) / (Σ_k g_k(x) + β),   g_k(x) = c_k exp(−|x − t_k|² / 2σ²)

for source keypoints s_k, target keypoints t_k and confidences c_k, and the warped image reads
the source at x − f(x) (bilinear). β = exp(−2) is a Gaussian's value two σ away: a pixel two σ
from a lone keypoint moves half as far as the keypoint. Coordinates follow
:mod:`audiovis.networks.keypoints` (x, y in [0, 1] edge to edge). The Gaussian is separable,
so the flow is two einsums and never builds a (K, H, W) stack.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

BACKGROUND = math.exp(-2.0)


def keypoint_flow(source: Tensor, target: Tensor, size: int | tuple[int, int],
                  sigma: float) -> Tensor:  # fmt: skip
    """Backward flow carrying pixels from ``source`` keypoints to ``target`` keypoints.

    Args:
        source: (..., K, 2) or (..., K, 3) keypoints in the image to warp; a third value is
            the confidence (absent joints: 0).
        target: (..., K, 2) where those keypoints should end up.
        size: image side, or (height, width).
        sigma: reach of a keypoint, as a fraction of the image side.

    Shape:
        → (..., H, W, 2): the displacement (x, y) in [0, 1] units at each output pixel.
    """
    h, w = (size, size) if isinstance(size, int) else size
    conf = source[..., 2] if source.shape[-1] == 3 else torch.ones_like(source[..., 0])
    move = target[..., :2] - source[..., :2]  # (..., K, 2)
    xs = (torch.arange(w, device=target.device, dtype=target.dtype) + 0.5) / w
    ys = (torch.arange(h, device=target.device, dtype=target.dtype) + 0.5) / h
    gx = torch.exp(-((xs - target[..., 0:1]) ** 2) / (2 * sigma**2))  # (..., K, W)
    gy = torch.exp(-((ys - target[..., 1:2]) ** 2) / (2 * sigma**2)) * conf[..., None]
    total = torch.einsum("...kh,...kw->...hw", gy, gx)
    # each displacement axis weighs the rows first: two (H, K) @ (K, W) products, never the
    # (K, H, W) stack a three-operand einsum may build
    rows = gy.unsqueeze(-3) * move.transpose(-1, -2).unsqueeze(-1)  # (..., 2, K, H)
    moved = torch.einsum("...ckh,...kw->...hwc", rows, gx)
    return moved / (total[..., None] + BACKGROUND)


def warp(images: Tensor, flow: Tensor) -> Tensor:
    """Read each output pixel x from ``images`` at x − flow(x) (bilinear, edges repeated).

    Shape:
        images (N, C, H, W), flow (N, H, W, 2) → (N, C, H, W)
    """
    n, _, h, w = images.shape
    xs = (torch.arange(w, device=images.device, dtype=flow.dtype) + 0.5) / w
    ys = (torch.arange(h, device=images.device, dtype=flow.dtype) + 0.5) / h
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    grid = (grid - flow) * 2 - 1  # grid_sample's [-1, 1], edge to edge (align_corners=False)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear",
                         padding_mode="border", align_corners=False)  # fmt: skip
