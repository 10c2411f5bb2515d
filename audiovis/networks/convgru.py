"""Convolutional GRU: a GRU whose gates are convolutions, so the hidden state keeps a layout.

Used by the structured temporal UNet to carry the bottleneck feature of frame t−1 to frame t.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvGRUCell(nn.Module):
    """One step of a convolutional GRU (Ballas et al. 2016).

    With ``[·, ·]`` concatenation over channels and ``*`` convolution::

        r  = σ(W_r * [x, h] + b_r)          reset gate
        z  = σ(W_z * [x, h] + b_z)          update gate
        n  = tanh(W_n * [x, r ⊙ h] + b_n)   candidate
        h' = (1 − z) ⊙ h + z ⊙ n

    ``z`` is the fraction of the new candidate let in: ``z = 0`` keeps the old state. A missing
    state is zeros, so the first step gives ``h' = z ⊙ n``.

    Args:
        channels_in: C, channels of the input.
        hidden: Hd, channels of the hidden state.
        kernel: odd kernel size of the gate convolutions ("same" padding keeps H × W).

    Shape:
        x (B, C, H, W), h (B, Hd, H, W) or None → h' (B, Hd, H, W)
    """

    def __init__(self, channels_in: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"ConvGRUCell: kernel must be odd to keep the size, got {kernel}")
        self.channels_in, self.hidden = channels_in, hidden
        # reset and update gates read the same input, so one convolution computes both
        self.gates = nn.Conv2d(channels_in + hidden, 2 * hidden, kernel, padding=kernel // 2)
        self.candidate = nn.Conv2d(channels_in + hidden, hidden, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden, *x.shape[2:])  # (B, Hd, H, W)
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        cand = torch.tanh(self.candidate(torch.cat([x, reset * h], 1)))  # (B, Hd, H, W)
        # (1 − z) h + z n, written out: lerp refuses mixed dtypes under autocast
        return h + update * (cand - h)
