"""A UNet split into ``encode`` and ``decode``, so a caller can work on the bottleneck between.

Encoder: a stride-1 stem, then ``depth`` blocks each halving the size (stride-2 convolution)
and doubling the channels (capped at 8 × base). Decoder: mirror blocks upsampling ×2 and
merging the encoder's feature of the same size (skip connection). A condition vector
(audio, say) is broadcast over the bottleneck and concatenated at the first decoder layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_block(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    """3 × 3 convolution, GroupNorm, LeakyReLU(0.2).

    GroupNorm normalises each sample on its own, so a frame's output does not depend on the
    batch it is processed with (frames of a window may be batched or run one by one).

    Shape:
        (B, C_in, H, W) → (B, C_out, H / stride, W / stride)
    """
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1),
        nn.GroupNorm(math.gcd(channels_out, 8), channels_out),
        nn.LeakyReLU(0.2),
    )


class UpBlock(nn.Module):
    """Upsample ×2, convolve, concatenate the skip, convolve.

    Nearest upsampling then a convolution rather than a transposed convolution, which leaves
    checkerboard artefacts in generated images.

    Shape:
        x (B, C_in, h, w), skip (B, C_skip, 2h, 2w) → (B, C_out, 2h, 2w)
    """

    def __init__(self, channels_in: int, channels_skip: int, channels_out: int) -> None:
        super().__init__()
        self.up = conv_block(channels_in, channels_out)
        self.merge = conv_block(channels_out + channels_skip, channels_out)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (B, C_out, 2h, 2w)
        return self.merge(torch.cat([x, skip], 1))


class UNet(nn.Module):
    """Encoder–decoder with skip connections and a conditioned first decoder layer.

    ``forward(x, cond)`` is ``decode(self.bottleneck(b), skips, cond)`` with ``b, skips =
    encode(x)``; ``bottleneck`` is an identity by default, a slot for a transform taking only
    the bottleneck. Callers whose transform needs more (keypoints, a recurrent state) call
    :meth:`encode` and :meth:`decode` themselves.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output (no final activation).
        base: channels at full resolution.
        depth: number of halvings; H and W must be multiples of 2**depth.
        cond_channels: size of the condition vector; 0 for none.

    Attributes:
        channels: channels at each level, full resolution first; ``channels[-1]`` is the
            bottleneck's.

    Shape:
        x (B, in_channels, H, W), cond (B, cond_channels) → (B, out_channels, H, W);
        bottleneck (B, channels[-1], H / 2**depth, W / 2**depth)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base: int = 32,
        depth: int = 4,
        cond_channels: int = 0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet: depth must be at least 1, got {depth}")
        self.depth, self.cond_channels = depth, cond_channels
        self.channels = [min(base * 2**i, base * 8) for i in range(depth + 1)]
        ch = self.channels
        self.stem = conv_block(in_channels, ch[0])
        self.down = nn.ModuleList(
            nn.Sequential(conv_block(ch[i], ch[i + 1], stride=2), conv_block(ch[i + 1], ch[i + 1]))
            for i in range(depth)
        )
        # up[0] is the first decoder layer: it works on the bottleneck and takes the condition
        self.up = nn.ModuleList(
            UpBlock(ch[i + 1] + (cond_channels if i == depth - 1 else 0), ch[i], ch[i])
            for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(ch[0], out_channels, 3, padding=1)
        self.bottleneck: nn.Module = nn.Identity()

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Bottleneck and skip features (full resolution first).

        Shape:
            (B, C_in, H, W) → (B, channels[-1], H / 2**depth, W / 2**depth),
            [(B, channels[i], H / 2**i, W / 2**i) for i < depth]
        """
        step = 2**self.depth
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(
                f"UNet: size {tuple(x.shape[-2:])} must be a multiple of 2**depth = {step}"
            )
        skips = [self.stem(x)]  # (B, ch[0], H, W)
        for block in self.down:
            skips.append(block(skips[-1]))  # (B, ch[i+1], H / 2**(i+1), W / 2**(i+1))
        return skips.pop(), skips

    def decode(self, bottleneck: Tensor, skips: list[Tensor], cond: Tensor | None = None) -> Tensor:
        """Output from a bottleneck, the skips of :meth:`encode` and the condition.

        Shape:
            (B, channels[-1], h, w), skips, cond (B, cond_channels) → (B, C_out, 2**depth h, …)
        """
        x = bottleneck
        if self.cond_channels:
            if cond is None or cond.shape[-1] != self.cond_channels:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"UNet: expected cond (B, {self.cond_channels}), got {got}")
            cond_map = cond[:, :, None, None].expand(-1, -1, *x.shape[-2:])  # (B, Cc, h, w)
            x = torch.cat([x, cond_map.to(x.dtype)], 1)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = block(x, skip)  # (B, ch[i], H / 2**i, W / 2**i)
        return self.head(x)  # (B, C_out, H, W)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        bottleneck, skips = self.encode(x)
        return self.decode(self.bottleneck(bottleneck), skips, cond)
