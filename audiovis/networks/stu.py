"""Structured temporal UNet (STU), the final stage of APVG ("Let's Play Music").

Per frame: a UNet encodes the coarse frame with the predicted keypoint heatmap; at the
bottleneck a graph convolution over the skeleton mixes the features found at the keypoints
(:class:`~audiovis.networks.graph.KeypointGCN`) and a convolutional GRU carries the bottleneck
from frame t−1 to frame t; the decoder gets the frame's audio feature at its first layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audiovis.networks.coarse import tanh_residual
from audiovis.networks.convgru import ConvGRUCell
from audiovis.networks.graph import KeypointGCN
from audiovis.networks.unet import UNet
from audiovis.skeleton import NUM_KEYPOINTS


class StructuredTemporalUNet(nn.Module):
    """Refines coarse frames into final frames, guided by pose, audio and the previous frame.

    The network predicts a residual over the coarse frame, in tanh's pre-activation space:
    ``frame = tanh(atanh(coarse) + Δ)``. The coarse stage already has layout and colour right,
    so learning only the correction (structure, texture) converges faster than redrawing the
    frame, and a zero correction returns the coarse frame exactly while staying in [-1, 1]. The
    correction's last layer starts at zero, so training begins from the coarse frame.

    ``use_gru=False`` and ``use_gcn=False`` are the paper's ablations "w/o CNN-GRU" and
    "w/o GCN" (the module is left out, not bypassed, so the parameter count drops too).

    Args:
        audio_dim: size of the per-frame audio feature.
        base: UNet channels at full resolution.
        depth: UNet halvings; frame sides must be multiples of 2**depth.
        use_gru: carry the bottleneck through time with a ConvGRU.
        use_gcn: run a skeleton GCN on the bottleneck.
        num_keypoints: K, points of the skeleton (OpenPose edges among the first K are used).
        heatmap_channels: channels of the keypoint heatmap.
        gcn_layers: GCNConv layers.

    Shape:
        coarse (B, T, 3, H, W) in [-1, 1], heatmap (B, T, heatmap_channels, H, W),
        keypoints (B, T, K, 2 or 3) in [0, 1], audio_feat (B, T, audio_dim),
        state (B, Cb, H / 2**depth, W / 2**depth) or None
        → frames (B, T, 3, H, W) in [-1, 1], state (same shape as above; None without GRU)
    """

    def __init__(
        self,
        audio_dim: int,
        base: int = 32,
        depth: int = 4,
        use_gru: bool = True,
        use_gcn: bool = True,
        num_keypoints: int = NUM_KEYPOINTS,
        heatmap_channels: int = 1,
        gcn_layers: int = 2,
    ) -> None:
        super().__init__()
        self.unet = UNet(3 + heatmap_channels, 3, base, depth, cond_channels=audio_dim)
        # the correction starts at zero: the untrained STU returns the coarse frame exactly
        nn.init.zeros_(self.unet.head.weight)
        nn.init.zeros_(self.unet.head.bias)  # type: ignore[arg-type]
        width = self.unet.channels[-1]  # bottleneck channels
        self.gcn = KeypointGCN(width, width, gcn_layers, None, num_keypoints) if use_gcn else None
        self.gru = ConvGRUCell(width, width) if use_gru else None

    def _recur(self, bottleneck: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Run the ConvGRU along time; the hidden state is the new bottleneck.

        Shape:
            (B, T, Cb, h, w), state (B, Cb, h, w) → (B·T, Cb, h, w), last state (B, Cb, h, w)
        """
        if self.gru is None:
            return bottleneck.flatten(0, 1), None
        hidden = []
        for t in range(bottleneck.shape[1]):  # sequential: frame t needs frame t−1's state
            state = self.gru(bottleneck[:, t], state)  # (B, Cb, h, w)
            hidden.append(state)
        return torch.stack(hidden, 1).flatten(0, 1), state

    def forward(
        self,
        coarse: Tensor,
        heatmap: Tensor,
        keypoints: Tensor,
        audio_feat: Tensor,
        state: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        b, t = coarse.shape[:2]
        x = torch.cat([coarse, heatmap.to(coarse.dtype)], 2).flatten(0, 1)  # (B·T, 3 + Ch, H, W)
        # the encoder has no state: all frames of the window go through it as one batch
        bottleneck, skips = self.unet.encode(x)  # (B·T, Cb, h, w)
        if self.gcn is not None:
            bottleneck = self.gcn(bottleneck, keypoints.flatten(0, 1))
        bottleneck, state = self._recur(bottleneck.unflatten(0, (b, t)), state)
        delta = self.unet.decode(bottleneck, skips, audio_feat.flatten(0, 1))  # (B·T, 3, H, W)
        frames = tanh_residual(coarse.flatten(0, 1), delta)  # (B·T, 3, H, W)
        return frames.unflatten(0, (b, t)), state
