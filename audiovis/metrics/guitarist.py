"""Metrics of Audio2Guitarist: mask IoU (stage 1), PSNR/SSIM of frames (stage 2) and the
agreement of keypoints with a mask.

The original reported no numbers (GIFs only); these are ours. PSNR and SSIM are the zoo's
:class:`audiovis.metrics.video.FrameMetrics` (torchmetrics, frames in [-1, 1]).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from audiovis.metrics.video import FrameMetrics


def mask_iou(pred: Tensor, target: Tensor, threshold: float = 0.5) -> Tensor:
    """Intersection over union of each mask; two empty masks agree perfectly (IoU 1).

    Shape:
        pred, target (..., H, W) probabilities or {0, 1} → (...)
    """
    if pred.shape != target.shape:
        raise ValueError(f"mask_iou: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    p, t = pred >= threshold, target >= 0.5
    inter = (p & t).flatten(-2).sum(-1).double()
    union = (p | t).flatten(-2).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


class MaskIoU(Metric):
    """Mean per-frame IoU of predicted masks (thresholded at ``threshold``) with true masks.

    ``update(pred, target)``: (..., H, W), e.g. (B, T, 1, H, W); every leading index is a frame.
    """

    higher_is_better = True
    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        iou = mask_iou(pred, target, self.threshold)
        self.total += iou.sum()
        self.count += iou.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count.clamp(min=1)).float()


class MaskChangeIoU(Metric):
    """IoU of where the masks changed from a reference: of predicted XOR reference with true
    XOR reference, per frame, averaged (frames whose true and predicted masks both equal the
    reference count 1).

    Most of a performer's silhouette stays put, so plain mask IoU is dominated by what a copy
    of the reference gets right; this scores only the motion (a copy of the reference scores
    0 wherever the performer moved).

    ``update(pred, target, reference)``: (..., H, W) each (``reference`` broadcast), probabilities
    or {0, 1} thresholded at ``threshold`` (the reference and the target at 0.5).
    """

    higher_is_better = True
    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, reference: Tensor) -> None:
        ref = (reference >= 0.5).expand_as(target)
        moved = ((pred >= self.threshold) != ref).float()
        iou = mask_iou(moved, ((target >= 0.5) != ref).float())
        self.total += iou.sum()
        self.count += iou.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count.clamp(min=1)).float()


def keypoints_on_mask(
    keypoints: Tensor, mask: Tensor, min_confidence: float = 0.5, threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    """For each keypoint, whether the mask pixel under it is on; and whether it counts.

    A keypoint counts when its confidence is at least ``min_confidence`` and it lies inside
    the frame. Pixel column c covers x in [c/W, (c+1)/W) (the zoo's convention).

    Shape:
        keypoints (..., K, 3), mask (..., H, W) → on (..., K) bool, counted (..., K) bool
    """
    h, w = mask.shape[-2:]
    x, y = keypoints[..., 0], keypoints[..., 1]
    inside = (x >= 0) & (x < 1) & (y >= 0) & (y < 1)
    counted = inside & (keypoints[..., 2] >= min_confidence)
    col = (x * w).floor().long().clamp(0, w - 1)
    row = (y * h).floor().long().clamp(0, h - 1)
    flat = (mask >= threshold).flatten(-2)  # (..., H·W)
    on = torch.gather(flat, -1, row * w + col)
    return on & counted, counted


class KeypointMaskConsistency(Metric):
    """Share of confident keypoints that fall on the mask: do a pose and a mask agree?

    For stage 1, the generated mask against the true (or the generated) keypoints; 1 means
    every joint lies on the performer's silhouette.

    ``update(keypoints, mask)``: keypoints (..., K, 3) (x, y in [0, 1], confidence), mask
    (..., H, W) with the same leading shape (a mask's channel axis of 1 is dropped).
    """

    higher_is_better = True
    full_state_update = False
    hits: Tensor
    total: Tensor

    def __init__(self, min_confidence: float = 0.5, threshold: float = 0.5) -> None:
        super().__init__()
        self.min_confidence, self.threshold = min_confidence, threshold
        self.add_state("hits", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, keypoints: Tensor, mask: Tensor) -> None:
        if mask.dim() == keypoints.dim() + 1 and mask.shape[-3] == 1:
            mask = mask.squeeze(-3)
        if mask.shape[:-2] != keypoints.shape[:-2]:
            raise ValueError(
                f"KeypointMaskConsistency: keypoints (..., K, 3) and mask (..., H, W) must share "
                f"leading axes, got {tuple(keypoints.shape)} and {tuple(mask.shape)}"
            )
        on, counted = keypoints_on_mask(keypoints, mask, self.min_confidence, self.threshold)
        self.hits += on.sum()
        self.total += counted.sum()

    def compute(self) -> Tensor:
        return (self.hits / self.total.clamp(min=1)).float()


__all__ = [
    "FrameMetrics",
    "KeypointMaskConsistency",
    "MaskChangeIoU",
    "MaskIoU",
    "keypoints_on_mask",
    "mask_iou",
]
