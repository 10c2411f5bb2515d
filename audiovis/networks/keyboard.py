"""Piano keys for a video generator: which keys are down (from audio) and where they are in
the frame (from a located keyboard), rendered into a differentiable press map.

The press map does for the keys what the DLT heatmap does for the keypoints: it tells a
convolutional generator *where* in the frame the audio's notes must show, so drawing a pressed
key becomes a local operation (darken the pixels the map marks) rather than a mapping from a
global audio vector to 88 far-apart spots.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiovis.music import NUM_KEYS

#: pitch classes of the black keys, counted from A (key 0 is A0)
_BLACK_FROM_A = (1, 4, 6, 9, 11)
IS_BLACK = np.array([k % 12 in _BLACK_FROM_A for k in range(NUM_KEYS)])
NUM_WHITE = int((~IS_BLACK).sum())  # 52
#: the white keys at or below each key (A0 = 0): a black key sits after that white key
WHITE_OF_KEY = np.cumsum(~IS_BLACK) - 1
BLACK_WIDTH = 0.6  # of a white key's width
BLACK_LENGTH = 0.63  # of the keys' length


def key_rects(keys: Tensor) -> Tensor:
    """Each key's rectangle from the keyboard's outer box.

    Args:
        keys: (B, 4) the box (x, y, w, h) the 88 keys span, as fractions of the frame
            (as :func:`audiovis.models.audeo.locate_keyboard` finds it).

    Returns:
        (B, 88, 4) rectangles (x0, y0, x1, y1) in fractions of the frame: white keys equally
        wide over the whole length, black keys ``BLACK_WIDTH`` of a white key wide, centred on
        the boundary after their white neighbour, ``BLACK_LENGTH`` of the length long.
    """
    x, y, w, h = keys.unbind(-1)
    white = (w / NUM_WHITE)[:, None]  # (B, 1)
    index = torch.as_tensor(WHITE_OF_KEY, dtype=keys.dtype, device=keys.device)
    black = torch.as_tensor(IS_BLACK, device=keys.device)
    left_white = x[:, None] + white * index  # (B, 88)
    boundary = left_white + white
    x0 = torch.where(black, boundary - BLACK_WIDTH / 2 * white, left_white)
    x1 = torch.where(black, boundary + BLACK_WIDTH / 2 * white, left_white + white)
    y0 = y[:, None].expand_as(x0)
    y1 = torch.where(black, (y + BLACK_LENGTH * h)[:, None], (y + h)[:, None])
    return torch.stack([x0, y0, x1, y1], -1)


def render_presses(probs: Tensor, rects: Tensor, size: int, softness: float = 0.25) -> Tensor:
    """The press map of the keys' probabilities, one channel for white keys, one for black.

    Each key is a soft rectangle (logistic edges ``softness`` pixels wide) weighted by its
    probability of being down; white keys are cut away under the black keys, as on a piano.

    Args:
        probs: (B, T, 88) probability of each key being down in each frame.
        rects: (B, 88, 4) the keys' rectangles (:func:`key_rects`).
        size: the frame side H = W.

    Returns:
        (B, T, 2, H, W) in [0, 1].
    """
    centres = (torch.arange(size, device=probs.device, dtype=torch.float32) + 0.5) / size
    scale = softness / size
    rects = rects.float()

    def inside(lo: Tensor, hi: Tensor) -> Tensor:  # (B, 88) → (B, 88, size)
        c = centres[None, None]
        rise, fall = (c - lo[..., None]) / scale, (hi[..., None] - c) / scale
        return torch.sigmoid(rise) * torch.sigmoid(fall)

    along_x, along_y = inside(rects[..., 0], rects[..., 2]), inside(rects[..., 1], rects[..., 3])
    black = torch.as_tensor(IS_BLACK, device=probs.device)
    probs = probs.float()
    white_map = torch.einsum("btk,bky,bkx->btyx", probs * ~black, along_y, along_x)
    black_map = torch.einsum("btk,bky,bkx->btyx", probs * black, along_y, along_x)
    cover = torch.einsum("bk,bky,bkx->byx", black.float().expand(len(rects), -1), along_y, along_x)
    white_map = white_map * (1 - cover.clamp(max=1))[:, None]
    return torch.stack([white_map, black_map], 2).clamp(0, 1)


class KeyPressNet(nn.Module):
    """Audio features at video rate → the logits of each piano key being down per frame.

    Two kinds of head:

    - dense (``first_key=None``, any front-end): two temporal convolutions (five frames of
      context) and a per-frame projection onto the keys. Pitch is local in time, and a
      window-local network needs no state to chain windows.
    - pitch (``first_key`` given; the features are semitone bins, bin ``b`` is key
      ``first_key + b`` with A0 = 0): one small 2-D convolution over (pitch, time) shared by
      every key, seen from the key's bin: ``below`` semitones under it (a lower note's
      partials), ``above`` over it (its own harmonics: +12, +19, +24, ...), five frames
      around it. A note learnt on one key is then recognised on every key, where the dense
      head needs examples of each key (on the studio's 10 training pieces it overfits:
      held-out frame F1 0.80-0.86 against 0.92-0.93 for this head). Keys outside the bins
      take one learned logit.

    ``paint`` turns a press map into the colour change pressed keys make (a 1×1 convolution,
    zero at the start: one colour shift for white keys, one for black), which a generator
    adds to its frame.

    Shape:
        (B, T, F) → (B, T, num_keys); ``paint``: (B, T, 2, H, W) → (B, T, 3, H, W)
    """

    def __init__(self, audio_dim: int, num_keys: int = NUM_KEYS, hidden: int = 256,
                 first_key: int | None = None, below: int = 12,
                 above: int = 36) -> None:  # fmt: skip
        super().__init__()
        self.num_keys, self.first_key, self.below, self.above = num_keys, first_key, below, above
        if first_key is None:
            self.net = nn.Sequential(
                nn.Conv1d(audio_dim, hidden, 3, padding=1, padding_mode="replicate"),
                nn.GELU(),
                nn.Conv1d(hidden, hidden, 3, padding=1, padding_mode="replicate"),
                nn.GELU(),
                nn.Conv1d(hidden, num_keys, 1),
            )
        else:
            width = 32
            self.net = nn.Sequential(
                nn.Conv2d(1, width, (below + 1 + above, 5), padding=(0, 2)),
                nn.GELU(),
                nn.Conv2d(width, width, (1, 5), padding=(0, 2)),
                nn.GELU(),
                nn.Conv2d(width, 1, 1),
            )
            self.outside = nn.Parameter(torch.tensor(-3.0))
        # start with keys up (a piano is mostly silent): logit −3, p ≈ 0.05
        nn.init.constant_(self.net[-1].bias, -3.0)  # type: ignore[arg-type]
        self.colour = nn.Conv2d(2, 3, 1, bias=False)
        nn.init.zeros_(self.colour.weight)

    def forward(self, audio_feat: Tensor) -> Tensor:
        if self.first_key is None:
            return self.net(audio_feat.transpose(1, 2)).transpose(1, 2)
        x = audio_feat.transpose(1, 2)[:, None]  # (B, 1, F, T)
        x = F.pad(x, (0, 0, self.below, self.above))  # silence beyond the bins
        bins = self.net(x)[:, 0].transpose(1, 2)  # (B, T, F)
        b, t, f = bins.shape
        keys = self.outside.expand(b, t, self.num_keys).clone()
        lo, hi = max(self.first_key, 0), min(self.first_key + f, self.num_keys)
        keys[..., lo:hi] = bins[..., lo - self.first_key : hi - self.first_key]
        return keys

    def paint(self, presses: Tensor) -> Tensor:
        return self.colour(presses.flatten(0, 1)).unflatten(0, presses.shape[:2])
