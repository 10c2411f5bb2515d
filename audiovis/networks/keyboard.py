"""Piano keys for a video generator: which keys are down (from audio) and where they are in
the frame (from a located keyboard), rendered into a differentiable press map.

The press map does for the keys what the DLT heatmap does for the keypoints: it tells a
convolutional generator *where* in the frame the audio's notes must show, so drawing a pressed
key becomes a local operation (darken the pixels the map marks) rather than a mapping from a
global audio vector to 88 far-apart spots.
"""

from __future__ import annotations

from typing import NamedTuple

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
#: a black key spans the keys' length from ``BLACK_TOP`` to ``BLACK_LENGTH``: a real keyboard
#: leaves a strip of the white keys behind the black ones
BLACK_TOP, BLACK_LENGTH = 0.07, 0.63
#: a black key's centre off the boundary after its white neighbour (white widths), by pitch
#: class (C = 0): as on a real keyboard, C# and D# lean apart, F# and A# outwards
_BLACK_SHIFT = {1: -0.10, 3: 0.10, 6: -0.13, 8: 0.0, 10: 0.13}
BLACK_SHIFT = np.array([_BLACK_SHIFT.get((k + 21) % 12, 0.0) for k in range(NUM_KEYS)])
BLACK_KEYS = np.flatnonzero(IS_BLACK)  # the 36 black keys (A0 = 0)
#: where the black keys' centres lie, in white widths from the keyboard's left edge
BLACK_PLACES = WHITE_OF_KEY[BLACK_KEYS] + 1 + BLACK_SHIFT[BLACK_KEYS]


def key_rects(keys: Tensor) -> Tensor:
    """Each key's rectangle from the keyboard's outer box.

    Args:
        keys: (B, 4) the box (x, y, w, h) the 88 keys span, as fractions of the frame
            (as :func:`audiovis.models.audeo.locate_keyboard` finds it); or (B, 4 + 36)
            with the black keys' centres measured in the frame (fractions of its width, as
            :func:`audiovis.models.audeo.locate_key_columns` finds them) after the box.

    Returns:
        (B, 88, 4) rectangles (x0, y0, x1, y1) in fractions of the frame: white keys equally
        wide over the whole length, black keys ``BLACK_WIDTH`` of a white key wide, centred
        where measured or else ``BLACK_SHIFT`` off the boundary after their white neighbour,
        from ``BLACK_TOP`` to ``BLACK_LENGTH`` of the length. At 128 px a black key is little
        more than a pixel wide, so where its centre is decides which pixels its press colours.
    """
    if keys.shape[-1] not in (4, 4 + len(BLACK_KEYS)):
        raise ValueError(f"key_rects: keys of width 4 (a box) or 40 (a box and the black keys' "
                         f"centres), got {tuple(keys.shape)}")  # fmt: skip
    x, y, w, h = keys[..., :4].unbind(-1)
    white = (w / NUM_WHITE)[:, None]  # (B, 1)
    index = torch.as_tensor(WHITE_OF_KEY, dtype=keys.dtype, device=keys.device)
    black = torch.as_tensor(IS_BLACK, device=keys.device)
    left_white = x[:, None] + white * index  # (B, 88)
    shift = torch.as_tensor(BLACK_SHIFT, dtype=keys.dtype, device=keys.device)
    centre = left_white + white * (1 + shift)  # black keys' centres
    if keys.shape[-1] == 4 + len(BLACK_KEYS):
        centre = centre.clone()
        centre[:, torch.as_tensor(BLACK_KEYS, device=keys.device)] = keys[..., 4:].to(centre)
    x0 = torch.where(black, centre - BLACK_WIDTH / 2 * white, left_white)
    x1 = torch.where(black, centre + BLACK_WIDTH / 2 * white, left_white + white)
    y0 = torch.where(black, (y + BLACK_TOP * h)[:, None], y[:, None])
    y1 = torch.where(black, (y + BLACK_LENGTH * h)[:, None], (y + h)[:, None])
    return torch.stack([x0, y0, x1, y1], -1)


def fit_key_columns(
    darkness: np.ndarray, x: float, w: float, reach: float = 1.0, step: float = 0.05
) -> tuple[float, float]:
    """The keyboard's left edge and width to a fraction of a pixel, from its black keys.

    A keyboard found from runs of pixels is off by up to a pixel at each end; at 128 px a
    black key is 1.3 px wide, so that is its whole width. The black keys' darkness across a
    row through them is matched against the darkness :func:`key_rects`' black keys would
    give (each column darkened by the part of it a black key covers), over left and right
    edges within ``reach`` px of the found ones: on a grid of quarter pixels, then of
    ``step`` around the best pair.

    Args:
        darkness: (W,) how dark each column of a row through the black keys' back part is,
            0 (white key) … 1 (black key).
        x, w: the keyboard's left edge and width in pixels, as found.

    Returns:
        (x, w) in pixels: the pair whose black keys best match ``darkness`` (least squares).
    """
    first, last = max(int(x - reach) - 1, 0), min(int(x + w + reach) + 2, len(darkness))
    cols = np.arange(first, last, dtype=np.float64)
    seen = darkness[first:last]
    places = BLACK_PLACES[None, :, None]  # (1, 36, 1)

    def best_pair(lefts: np.ndarray, rights: np.ndarray) -> tuple[float, float, float]:
        best = (np.inf, x, w)
        for left in lefts:  # every right edge at once for each left edge
            white = ((rights - left) / NUM_WHITE)[:, None, None]
            centres = left + white * places  # (R, 36, 1)
            lo, hi = centres - BLACK_WIDTH / 2 * white, centres + BLACK_WIDTH / 2 * white
            # the part of each column each black key covers, summed over the keys: (R, C)
            cover = np.clip(np.minimum(hi, cols + 1) - np.maximum(lo, cols), 0, 1).sum(1)
            error = ((cover.clip(max=1) - seen) ** 2).sum(-1)
            r = int(np.argmin(error))
            if error[r] < best[0]:
                best = (float(error[r]), float(left), float(rights[r]))
        return best

    coarse = np.arange(-reach, reach + 1e-9, 0.25)
    _, left, right = best_pair(x + coarse, x + w + coarse)
    fine = np.arange(-0.25, 0.25 + 1e-9, step)
    _, left, right = best_pair(left + fine, right + fine)
    return left, right - left


def black_key_centres(darkness: np.ndarray, x: float, w: float) -> np.ndarray:
    """Each black key's centre in pixels, measured: the darkness-weighted mean column within
    half a white key of where the keyboard's geometry puts it (:func:`key_rects`). A frame's
    black keys stray from that geometry by a fraction of a pixel (a renderer snaps them to
    whole pixels, a camera's lens bends the rows), which at 128 px is much of a key's width.

    Args:
        darkness: (W,) darkness of a row through the black keys' back part, as for
            :func:`fit_key_columns`; ``x``, ``w`` the keyboard's left edge and width (pixels).

    Returns:
        (36,) centres in pixels (column ``c`` spans ``[c, c + 1)``); a key with no darkness
        around it keeps the geometry's centre.
    """
    white = w / NUM_WHITE
    model = x + white * BLACK_PLACES  # (36,)
    cols = np.arange(len(darkness), dtype=np.float64)
    # the part of each column within half a white key of each key's centre: (36, W)
    near = np.clip(np.minimum(model[:, None] + white / 2, cols + 1)
                   - np.maximum(model[:, None] - white / 2, cols), 0, 1)  # fmt: skip
    mass = near * np.clip(darkness, 0, 1)[None]
    total = mass.sum(1)
    measured = (mass * (cols + 0.5)).sum(1) / np.maximum(total, 1e-9)
    return np.where(total > 0.25, measured, model)


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


class KeyLogits(NamedTuple):
    """What :class:`KeyPressNet` reads from the audio: per frame and key, the logit of the
    key being down, and (with ``onsets``) of the key being struck there."""

    down: Tensor  # (B, T, K)
    onset: Tensor | None  # (B, T, K), or None without onsets


def onset_targets(roll: Tensor) -> Tensor:
    """The roll's strokes, (B, T, K) → (B, T − 1, K): a key down at frame t + 1 that was up
    at t (in a roll where a re-struck key is up on the frame before its stroke, as the
    studio's, every note's onset). The first frame has no frame before it to tell."""
    return (roll[:, 1:] > roll[:, :-1]).to(roll.dtype)


def draw_keys(down: Tensor, onset: Tensor | None, threshold: float) -> Tensor:
    """The keys to draw, (B, T, K) probabilities → (B, T, K) of 0 / 1.

    A key is down where its down probability reaches ``threshold``. With onset
    probabilities, a stroke is a local peak of them that reaches ``threshold`` (the first
    frame of a plateau is passed over, so a two-frame peak strikes once): the key is down
    there whatever the down output says, and up on the frame before it, as a piano key
    must rise to sound again (a key held down through a repeated note would hide it).
    Frames beyond either end count as no stroke.
    """
    drawn = down >= threshold
    if onset is None:
        return drawn.to(down.dtype)
    before = F.pad(onset[:, :-1], (0, 0, 1, 0))
    after = F.pad(onset[:, 1:], (0, 0, 0, 1))
    struck = (onset >= threshold) & (onset >= before) & (onset > after)
    up_before = F.pad(struck[:, 1:], (0, 0, 0, 1))
    return ((drawn | struck) & ~up_before).to(down.dtype)


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

    With ``onsets`` each head has a second output per key and frame (ours, after Onsets and
    Frames): the logit of the key being *struck* there, trained on the roll's onsets. A key
    struck again while down shows in the roll only as one up frame before the stroke, which a
    key-down output learns poorly from 15 % of the notes; an onset peak marks it
    (:func:`draw_keys`).

    ``paint`` turns a press map into the colour change pressed keys make (a 1×1 convolution,
    zero at the start: one colour shift for white keys, one for black), which a generator
    adds to its frame.

    Shape:
        (B, T, F) → :class:`KeyLogits` of (B, T, num_keys) each; ``paint``:
        (B, T, 2, H, W) → (B, T, 3, H, W)
    """

    def __init__(self, audio_dim: int, num_keys: int = NUM_KEYS, hidden: int = 256,
                 first_key: int | None = None, below: int = 12, above: int = 36,
                 onsets: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.num_keys, self.first_key, self.below, self.above = num_keys, first_key, below, above
        self.outputs = 2 if onsets else 1
        if first_key is None:
            self.net = nn.Sequential(
                nn.Conv1d(audio_dim, hidden, 3, padding=1, padding_mode="replicate"),
                nn.GELU(),
                nn.Conv1d(hidden, hidden, 3, padding=1, padding_mode="replicate"),
                nn.GELU(),
                nn.Conv1d(hidden, num_keys * self.outputs, 1),
            )
        else:
            width = 32
            self.net = nn.Sequential(
                nn.Conv2d(1, width, (below + 1 + above, 5), padding=(0, 2)),
                nn.GELU(),
                nn.Conv2d(width, width, (1, 5), padding=(0, 2)),
                nn.GELU(),
                nn.Conv2d(width, self.outputs, 1),
            )
            self.outside = nn.Parameter(torch.tensor(-3.0))
            if onsets:
                self.outside_onset = nn.Parameter(torch.tensor(-5.0))
        # start with keys up (a piano is mostly silent): logit −3, p ≈ 0.05; strokes rarer
        last: nn.Conv1d | nn.Conv2d = self.net[-1]  # type: ignore[assignment]
        assert last.bias is not None
        with torch.no_grad():
            last.bias.view(self.outputs, -1)[0] = -3.0
            last.bias.view(self.outputs, -1)[1:] = -5.0
        self.colour = nn.Conv2d(2, 3, 1, bias=False)
        nn.init.zeros_(self.colour.weight)

    def forward(self, audio_feat: Tensor) -> KeyLogits:
        b, t = audio_feat.shape[:2]
        if self.first_key is None:
            out = self.net(audio_feat.transpose(1, 2)).transpose(1, 2)  # (B, T, O * K)
            out = out.unflatten(-1, (self.outputs, self.num_keys))
        else:
            x = audio_feat.transpose(1, 2)[:, None]  # (B, 1, F, T)
            x = F.pad(x, (0, 0, self.below, self.above))  # silence beyond the bins
            bins = self.net(x).transpose(1, 3)  # (B, T, F, O)
            outside: list[Tensor] = [self.outside]
            if self.outputs > 1:
                outside.append(self.outside_onset)
            out = torch.stack(outside).expand(b, t, self.num_keys, -1).clone()
            f = bins.shape[2]
            lo, hi = max(self.first_key, 0), min(self.first_key + f, self.num_keys)
            out[:, :, lo:hi] = bins[:, :, lo - self.first_key : hi - self.first_key]
            out = out.transpose(2, 3)  # (B, T, O, K)
        return KeyLogits(out[:, :, 0], out[:, :, 1] if self.outputs > 1 else None)

    def detector_requires_grad_(self, requires_grad: bool) -> None:
        """Switch the training of what reads the keys from the audio (not the paint)."""
        for name, parameter in self.named_parameters():
            if not name.startswith("colour."):
                parameter.requires_grad_(requires_grad)

    def paint(self, presses: Tensor) -> Tensor:
        return self.colour(presses.flatten(0, 1)).unflatten(0, presses.shape[:2])
