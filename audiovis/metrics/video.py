"""Frame and keypoint metrics of the video generators (APVG's Tables I and II).

PSNR and SSIM are torchmetrics' over frames mapped from the zoo's [-1, 1] to [0, 1]. The mean
keypoint distance follows APVG's Table II: the L2 distance between predicted and true
keypoints. The paper does not say how it normalises; ours is in frame-normalised coordinates
(x, y in [0, 1], so 0.1 is a tenth of the frame side), weighted by the true keypoints'
confidence so that joints the annotation lacks do not count.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure


def to_unit(frames: Tensor) -> Tensor:
    """[-1, 1] → [0, 1], flattening any leading time axis into the batch.

    Shape:
        (..., 3, H, W) → (N, 3, H, W)
    """
    return ((frames.float() + 1) / 2).clamp(0, 1).reshape(-1, *frames.shape[-3:])


class KeypointDistance(Metric):
    """Confidence-weighted mean L2 distance between predicted and true keypoints.

    ``update(pred, target)``: pred (..., K, 2) in frame-normalised coordinates; target
    (..., K, 3) with x, y and a confidence weight. ``compute()``: Σ c·‖p − t‖ / Σ c over
    everything seen.
    """

    higher_is_better = False
    full_state_update = False
    total: Tensor
    weight: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("weight", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        if pred.shape[:-1] != target.shape[:-1] or pred.shape[-1] != 2 or target.shape[-1] != 3:
            raise ValueError(
                f"KeypointDistance: pred (..., K, 2) and target (..., K, 3) expected, got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        conf = target[..., 2].double()
        dist = (pred.double() - target[..., :2].double()).norm(dim=-1)
        self.total += (dist * conf).sum()
        self.weight += conf.sum()

    def compute(self) -> Tensor:
        return (self.total / self.weight.clamp(min=1e-12)).float()


class FrameMetrics(MetricCollection):
    """PSNR and SSIM of generated frames against real ones, both given in [-1, 1].

    ``update(fake, real)`` takes (B, 3, H, W) or (B, T, 3, H, W).
    """

    def __init__(self, prefix: str | None = None) -> None:
        super().__init__(
            {
                # per-frame PSNR averaged over frames, as papers report it
                "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
                "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
            },
            prefix=prefix,
        )

    def update(self, fake: Tensor, real: Tensor) -> None:  # type: ignore[override]
        # in fp32 even inside a bf16-mixed step: SSIM's local variances (E[x²] − E[x]²)
        # cancel catastrophically in bf16 (a frame against itself scored ~0.1, not 1)
        with torch.autocast(fake.device.type, enabled=False):
            super().update(to_unit(fake), to_unit(real))
