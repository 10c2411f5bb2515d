"""APVG keypoint half: the differentiable landmark transformer and the keypoint predictor (KHP).

From "Let's Play Music: audio-driven performance video generation": keypoints per video frame
are predicted from an instrument-related feature (the training set's average keypoints, fed
as a condition) and a motion-related feature (a 1-D CNN over the clip's audio features), run
through an LSTM. The DLT renders keypoints as tent heatmaps so an L1 loss between predicted
and real heatmaps can back-propagate to the coordinates.

Pixel convention (shared with ``audiovis.media.draw_heatmaps``): a coordinate x in [0, 1]
spans the image's width edge to edge, so pixel column c covers [c/W, (c+1)/W) and its centre
is at (c + 0.5)/W. In pixel units (integer = pixel centre) the point sits at u = x·W − 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiovis.audio import frames_to_video_rate


def _tent(coords: Tensor, length: int, radius: float) -> Tensor:
    """Tent weights max(0, 1 − |c − u|/radius) of each point to every pixel centre c on an axis.

    Shape:
        coords (..., K) in [0, 1] → (..., K, length)
    """
    u = coords * length - 0.5  # pixel units, integer = pixel centre
    centres = torch.arange(length, device=coords.device, dtype=coords.dtype)
    return F.relu(1.0 - (centres - u[..., None]).abs() / radius)


def dlt_heatmaps(
    keypoints: Tensor,
    size: int | tuple[int, int],
    alpha: float = 1.0,
    radius: float = 1.0,
    per_point: bool = False,
    clamp: bool = False,
) -> Tensor:
    """Differentiable landmark transformer: keypoints → tent heatmap.

    H(i, j) = Σ_s α·w_s·max(0, 1 − |j − x_s|/r)·max(0, 1 − |i − y_s|/r) for row i, column j,
    with (x_s, y_s) in pixel units (see the module's pixel convention) and w_s the confidence
    (1 without one). With r = 1 this is the paper's formula: bilinear splatting, so an interior
    point's heatmap sums to α (α·r² for an integer radius). The tent is separable, so the sum
    over points is one einsum and never builds the (K, H, W) stack unless ``per_point``.

    Args:
        keypoints: x, y in [0, 1] image coordinates, optionally a confidence weighting each.
        size: heatmap side, or (height, width).
        alpha: peak value of a point of confidence 1.
        radius: tent half-width in pixels; 1 is the paper's, larger gives denser gradients.
        per_point: return one heatmap per keypoint instead of their sum.
        clamp: clamp the summed heatmap to [0, 1] (where points overlap).

    Shape:
        keypoints (..., K, 2) or (..., K, 3) → (..., 1, H, W), or (..., K, H, W) per point.

    Returns:
        The heatmap, differentiable w.r.t. coordinates and confidences (away from the tent's
        kinks, where autograd takes a one-sided slope).
    """
    if keypoints.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must end in 2 or 3 values, got {tuple(keypoints.shape)}")
    h, w = (size, size) if isinstance(size, int) else size
    wx = _tent(keypoints[..., 0], w, radius)  # (..., K, W)
    wy = _tent(keypoints[..., 1], h, radius)  # (..., K, H)
    weight = alpha * (
        keypoints[..., 2] if keypoints.shape[-1] == 3 else torch.ones_like(wx[..., 0])
    )
    wy = wy * weight[..., None]  # fold α·confidence into one axis
    if per_point:
        return wy[..., :, None] * wx[..., None, :]  # (..., K, H, W)
    heat = torch.einsum("...kh,...kw->...hw", wy, wx)[..., None, :, :]  # (..., 1, H, W)
    return heat.clamp(0.0, 1.0) if clamp else heat


class MotionEncoder(nn.Module):
    """Motion-related feature: a 1-D CNN over audio features, pooled to the video rate.

    Args:
        num_features: F, the audio front-end's feature dimension.
        motion_dim: D, output features per video frame.
        channels: width of the hidden conv layers.
        num_layers: hidden conv layers (each kernel_size wide, BatchNorm, LeakyReLU).
        kernel_size: temporal kernel in feature frames (odd keeps the length).

    Shape:
        (B, F, N), num_frames T → (B, T, D)
    """

    def __init__(
        self,
        num_features: int,
        motion_dim: int = 128,
        channels: int = 128,
        num_layers: int = 3,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_layers):
            cin = num_features if i == 0 else channels
            conv = nn.Conv1d(cin, channels, kernel_size, padding=kernel_size // 2, bias=False)
            layers += [conv, nn.BatchNorm1d(channels), nn.LeakyReLU(0.2)]  # BN supplies the bias
        layers.append(nn.Conv1d(channels, motion_dim, 1))  # linear projection, no clipping
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor, num_frames: int) -> Tensor:
        # convolve at the feature rate, so onsets finer than a video frame are seen, then pool
        return frames_to_video_rate(self.net(features), num_frames)  # (B, T, D)


class KeypointPredictorNet(nn.Module):
    """KHP: audio features (+ the average keypoints) → keypoints per video frame.

    The instrument-related feature embeds the training set's average keypoints; the motion
    feature comes from :class:`MotionEncoder`; their concatenation runs through an LSTM and a
    linear head. Coordinates come out of a sigmoid, so they lie in [0, 1] for either ablation
    arm and the average reaches the output only as the paper's condition: a residual around
    the average would also hand the "w/o average" arm a worse starting point, mixing two
    effects in the ablation.

    Args:
        num_features: F, the audio front-end's feature dimension.
        num_keypoints: K (67: OpenPose BODY_25 + two hands).
        hidden: LSTM width.
        motion_dim: width of the motion feature and of the instrument feature.
        use_average: condition on the average keypoints (False: ablation "w/o average").
        use_motion: use the audio motion feature (False: the average alone, a static pose).
        residual: predict a change to the condition pose (in logit space, starting at zero)
            instead of the pose itself; for a condition that is the performer's own pose at
            the window's first frame, where holding still is the natural start.
    """

    def __init__(
        self,
        num_features: int,
        num_keypoints: int = 67,
        hidden: int = 256,
        motion_dim: int = 128,
        use_average: bool = True,
        use_motion: bool = True,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.residual = residual
        if not (use_average or use_motion):
            raise ValueError("KeypointPredictorNet needs use_average or use_motion")
        self.num_keypoints, self.use_average, self.use_motion = (
            num_keypoints,
            use_average,
            use_motion,
        )
        self.motion = MotionEncoder(num_features, motion_dim) if use_motion else None
        self.instrument = (
            nn.Sequential(nn.Linear(2 * num_keypoints, motion_dim), nn.LeakyReLU(0.2))
            if use_average
            else None
        )
        self.lstm = nn.LSTM(motion_dim * (use_average + use_motion), hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2 * num_keypoints)
        if residual:  # starts by holding the condition pose
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    @torch.no_grad()
    def start_at(self, average: Tensor) -> None:
        """Start from the average pose: the head's bias at its logit, its weights scaled down.

        An output-bias initialisation from the data (as a classifier's bias from the class
        priors), applied in both ablation arms alike; it spares the first hundreds of steps
        otherwise spent finding where the performer stands.

        Shape:
            average (K, 2) or (K, 3) in [0, 1]
        """
        if self.residual:
            return  # the condition pose is already where it starts
        xy = average[:, :2].clamp(1e-3, 1 - 1e-3).to(self.head.bias.dtype)
        self.head.bias.copy_(torch.logit(xy).flatten())
        self.head.weight.mul_(0.1)

    def forward(
        self, audio_features: Tensor, num_frames: int, average: Tensor | None = None
    ) -> Tensor:
        """Predict keypoints for ``num_frames`` video frames.

        Args:
            audio_features: the clip's audio features.
            num_frames: T, video frames to predict.
            average: the condition pose (x, y): the training set's average keypoints, or with
                ``residual`` the pose the prediction is a change to; one per batch or
                shared; required with ``use_average`` or ``residual``.

        Shape:
            audio_features (B, F, N), average (B, K, 2) or (K, 2) → (B, T, K, 2) in [0, 1]
        """
        b = audio_features.shape[0]
        parts: list[Tensor] = []
        if average is not None:
            average = average[..., :2].expand(b, self.num_keypoints, 2)  # drop confidence
        elif self.instrument is not None or self.residual:
            raise ValueError("use_average or residual: pass the condition keypoints (B, K, 2)")
        if self.instrument is not None:
            assert average is not None
            cond = self.instrument(average.flatten(1))  # (B, D)
            parts.append(cond[:, None].expand(b, num_frames, cond.shape[-1]))  # (B, T, D)
        if self.motion is not None:
            parts.append(self.motion(audio_features, num_frames))  # (B, T, D)
        out, _ = self.lstm(torch.cat(parts, dim=-1))  # (B, T, hidden)
        logits = self.head(out).view(b, num_frames, self.num_keypoints, 2)
        if self.residual:
            assert average is not None
            logits = logits + torch.logit(average.clamp(1e-3, 1 - 1e-3))[:, None]
        return torch.sigmoid(logits)
