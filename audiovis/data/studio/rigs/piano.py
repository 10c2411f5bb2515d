"""A piano seen from straight above, as in the Audeo dataset: the 88 keys span the frame from
left to right, the player sits at the bottom edge and two hands play the score's notes.

The picture is built so that the ground truth can be read back from pixels:

* every keyboard pixel belongs to exactly one key, and a key's pixels take one of two
  pre-rendered colours, up or down, so a frame is the up image with the pressed keys' pixels
  swapped for the down image;
* each key has a probe region at its far end (white keys: a thin strip behind the black keys;
  black keys: their back third), and the hands are drawn only on the rows below every probe,
  so :meth:`PianoRig.pressed_from_pixels` recovers the 88-key roll exactly.

The motion is a deterministic function of the score: each hand (left below middle C, right
from middle C up) chooses a fingering for every onset that keeps the hand still when the notes
are within reach and moves it as little as needed otherwise; the hand eases towards the next
position in the frames before the next onset, and the fingers of sounding keys stay on their
keys, darker (lowered).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from audiovis.data.studio.rigs.base import RGB, Look, Take
from audiovis.data.studio.score import LOWEST_KEY, NUM_KEYS, Note, Score
from audiovis.skeleton import LEFT_HAND_OFFSET, NUM_HAND, NUM_KEYPOINTS, RIGHT_HAND_OFFSET

BLACK_CLASSES = (1, 3, 6, 8, 10)  # pitch classes of the black keys
NUM_WHITE = 52
SPLIT = 60  # middle C: the left hand plays below it, the right hand from it up

# Black keys sit a little off the white keys' boundary, as on a real keyboard (white widths).
BLACK_OFFSET = {1: -0.10, 3: 0.10, 6: -0.13, 8: 0.0, 10: 0.13}
BLACK_WIDTH = 0.58  # white widths
BLACK_LENGTH = 0.62  # fraction of the white keys' length
TOP_BAND = 0.07  # strip of white key behind the black keys (key lengths): the white probes
BLACK_PROBE = 0.2  # probed back part of a black key (key lengths)

# Fixed keyboard colours (RGB); pressed keys are darker and tinted blue so they read at a
# glance and are far from the up colours for the pixel probe.
IVORY = np.array([240, 235, 222], np.float32)
IVORY_DOWN = np.array([168, 182, 212], np.float32)
EBONY = np.array([22, 21, 24], np.float32)
EBONY_DOWN = np.array([62, 78, 122], np.float32)
GAP = np.array([110, 105, 100], np.float32)
BODY = np.array([30, 25, 27], np.float32)
FELT = np.array([128, 30, 38], np.float32)

# Hand geometry, right hand, fingers thumb..little. x in white widths from the hand's centre,
# y in key lengths from the keys' front edge (negative: up, into the keyboard).
TIP_X = np.array([-2.1, -1.0, 0.0, 1.0, 1.95])
KNUCKLE_X = np.array([-1.45, -1.15, -0.38, 0.38, 1.1])
TIP_REST_Y = np.array([-0.16, -0.36, -0.4, -0.37, -0.29])
KNUCKLE_Y = -0.04
WRIST_Y = 0.3
THUMB_BASE = (-0.95, 0.22)  # thumb's CMC joint (x white widths, y key lengths)
THUMB_MCP_Y = 0.1
PRESS_WHITE_Y = -0.3  # fingertip on a pressed white key (a little shorter than at rest)
PRESS_BLACK_Y = -0.52  # fingertip on a pressed black key, near its front end
REACH = 0.7  # a fingertip reaches this far (white widths) sideways without moving the hand
MOVE_COST = 0.02  # cost of moving the hand, per squared white width, against finger stretch
MIN_SEPARATION = 4.6  # white widths between the hands' centres
JUMP = 7.0  # white widths (an octave): a longer move waits for the held keys' release
FAST_SPEED = 150.0  # white widths a second: the peak speed of a jump made after a release


def is_black(pitch: int) -> bool:
    """Whether a MIDI pitch is a black key."""
    return pitch % 12 in BLACK_CLASSES


@dataclass(frozen=True)
class _Layout:
    """The keyboard drawn for one frame size and framing (arrays are shared: read only).

    Attributes:
        size: the frame side in pixels.
        white: white key width in pixels; ``length`` the white keys' length in pixels.
        top, front: y of the keys' far and near edges in pixels.
        keep: first row the hands may touch (every probe lies above it).
        backdrop: (H, W) bool pixels showing the look's background.
        up, down: (H, W, 3) uint8 frames with every key up / every key down.
        owner: (H, W) int16 key index per pixel, -1 off the keys.
        key_pixels: flat indices of the keys' pixels, key by key; key k owns
            ``key_pixels[key_start[k] : key_start[k + 1]]``.
        boxes: (88, 4) int64 visible box per key (x0, y0, x1, y1), x1 and y1 exclusive.
        press: (88, 2) float64 fingertip position on each key when pressing it.
        probe_pixels: (P,) flat pixel indices of the probes; ``probe_keys`` (P,) their key.
        probe_up, probe_down: (P, 3) float32 the probes' up and down colours.
    """

    size: int
    white: float
    length: float
    top: float
    front: float
    keep: int
    backdrop: np.ndarray
    up: np.ndarray
    down: np.ndarray
    owner: np.ndarray
    key_pixels: np.ndarray
    key_start: np.ndarray
    boxes: np.ndarray
    press: np.ndarray
    probe_pixels: np.ndarray
    probe_keys: np.ndarray
    probe_up: np.ndarray
    probe_down: np.ndarray


def _overlap(lo: np.ndarray, hi: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Coverage of pixel columns [c, c + 1) by intervals [lo, hi).

    Shape:
        lo, hi (N,), cols (C,) → (N, C).
    """
    return np.clip(np.minimum(hi[:, None], cols + 1.0) - np.maximum(lo[:, None], cols), 0.0, 1.0)


@lru_cache(maxsize=32)
def _layout(size: int, zoom: float, shift_x: float, shift_y: float) -> _Layout:
    """Lay out and pre-render the keyboard for a frame size and a look's framing."""
    s = float(size)
    width = s * float(np.clip(0.92 + 0.5 * (zoom - 1.0), 0.86, 0.96))
    left = float(np.clip((s - width) / 2 + shift_x * s, 0.5, s - width - 0.5))
    white = width / NUM_WHITE
    length = 0.3 * s * float(np.clip(zoom, 0.85, 1.15))
    top = s * (0.26 + float(np.clip(shift_y, -0.05, 0.05)))
    front = top + length
    r_top, r_front = round(top), round(front)
    r_black_top = r_top + max(1, round(TOP_BAND * length))
    r_black_front = r_top + round(BLACK_LENGTH * length)
    r_keep = r_black_top + max(1, round(BLACK_PROBE * length)) + 1

    pitches = np.arange(LOWEST_KEY, LOWEST_KEY + NUM_KEYS)
    black = np.array([is_black(int(p)) for p in pitches])
    # white key i spans integer columns [edges[i], edges[i + 1]): at least one column each
    # when the keyboard spans 52 px or more, so every key owns pixels
    edges = np.round(left + white * np.arange(NUM_WHITE + 1)).astype(np.int64)
    white_index = np.cumsum(~black) - 1  # white keys below or at each key
    boxes = np.zeros((NUM_KEYS, 4), np.int64)
    owner = np.full((size, size), -1, np.int16)
    cols = np.arange(size, dtype=np.float64)

    white_keys = np.flatnonzero(~black)
    col_owner = np.full(size, -1, np.int64)
    for i, k in enumerate(white_keys):
        col_owner[edges[i] : edges[i + 1]] = k
        boxes[k] = (edges[i], r_top, edges[i + 1], r_front)
    owner[r_top:r_front] = col_owner[None, :]

    # black keys: centred near the boundary after their lower white neighbour
    black_keys = np.flatnonzero(black)
    centres = np.array([edges[white_index[k] + 1] + BLACK_OFFSET[int(pitches[k]) % 12] * white
                        for k in black_keys])  # fmt: skip
    lo, hi = centres - BLACK_WIDTH * white / 2, centres + BLACK_WIDTH * white / 2
    cover = _overlap(lo, hi, cols)  # (36, W)
    black_cols = np.full(size, -1, np.int64)  # black key owning each column in the black rows
    black_cover = cover.max(axis=0)
    for j, k in enumerate(black_keys):
        own = np.flatnonzero((cover[j] >= 0.5) & (black_cols < 0))
        if own.size == 0:  # thinner than a pixel: the free column it covers most
            free = np.where(black_cols < 0, cover[j], -1.0)
            own = np.array([int(np.argmax(free))])
        black_cols[own] = k
        boxes[k] = (own.min(), r_black_top, own.max() + 1, r_black_front)
    in_black = black_cols >= 0
    owner[r_black_top:r_black_front, in_black] = black_cols[in_black]

    # colours, rows × columns: white keys shaded towards the fallboard, a lip at the front,
    # antialiased gaps on the white boundaries; black keys with a lighter bevel at the front
    ys = np.arange(size, dtype=np.float32)[:, None]
    shade = np.clip(0.86 + 0.14 * (ys + 0.5 - top) / (0.25 * length), 0.86, 1.0)
    gap_width = 0.09 * white  # thin enough that one-pixel keys stay ivory
    gap = _overlap(edges[1:-1] - gap_width / 2, edges[1:-1] + gap_width / 2, cols).sum(axis=0)
    gap = np.clip(gap, 0.0, 1.0).astype(np.float32)[None, :, None]

    def white_rgb(colour: np.ndarray, lip_rows: int) -> np.ndarray:
        img = shade[..., None] * colour
        img = np.broadcast_to(img, (size, size, 3)).copy()
        img[r_front - lip_rows : r_front] *= 0.72  # the front edge; lower when pressed
        return (1 - gap) * img + gap * GAP

    ivory_up, ivory_down = white_rgb(IVORY, 1), white_rgb(IVORY_DOWN, 2)
    bevel = max(1, round(0.1 * length))

    def black_rgb(colour: np.ndarray, pressed: bool) -> np.ndarray:
        img = np.broadcast_to(colour, (size, size, 3)).copy()
        img[r_black_front - bevel : r_black_front] = 0.5 * colour + 0.5 * np.float32(75.0)
        if pressed:  # the key drops: its front end slips back into shadow
            img[r_black_front - 1 : r_black_front] = 0.4 * colour
        return img

    ebony_up, ebony_down = black_rgb(EBONY, False), black_rgb(EBONY_DOWN, True)
    # a black key's columns mix in the ivory by coverage (antialiasing); the owner of the
    # pixel decides which of the two keys' state colours it takes
    c = black_cover.astype(np.float32)[None, :, None]
    c_own = np.maximum(c, 0.75)

    def keys_image(pressed: bool) -> np.ndarray:
        img = np.empty((size, size, 3), np.float32)
        img[:] = ivory_down if pressed else ivory_up
        band = slice(r_black_top, r_black_front)
        own, other = in_black[None, :, None], ~in_black[None, :, None]
        w_state, b_state = (ivory_down, ebony_down) if pressed else (ivory_up, ebony_up)
        mix_own = c_own * b_state[band] + (1 - c_own) * ivory_up[band]
        mix_white = (1 - c) * w_state[band] + c * ebony_up[band]
        img[band] = np.where(own, mix_own, np.where(other, mix_white, img[band]))
        return img

    fall = max(0, round(top - 0.09 * s))
    slip = min(size, r_front + max(2, round(0.035 * s)))
    backdrop = np.ones((size, size), bool)
    backdrop[fall:slip] = False

    def frame(pressed: bool) -> np.ndarray:
        img = np.zeros((size, size, 3), np.float32)
        img[fall:slip] = BODY  # the lid, the cheeks beside the keys, the key slip
        img[fall : fall + 1] = BODY + 40  # the lid's edge catches the light
        img[max(r_top - 1, 0) : r_top] = FELT
        img[slip - 1 : slip] = BODY + 30
        keys = keys_image(pressed)
        on = owner >= 0
        img[on] = keys[on]
        return img

    # the look's background is painted over ``backdrop`` per take
    up = np.clip(frame(False) + 0.5, 0, 255).astype(np.uint8)
    down = np.clip(frame(True) + 0.5, 0, 255).astype(np.uint8)

    # probes: white keys' strip behind the black keys, black keys' back part
    probe = np.zeros((size, size), bool)
    probe[r_top:r_black_top] = True
    probe[r_black_top : r_keep - 1] |= in_black[None, :]
    probe &= owner >= 0
    pixels = np.flatnonzero(probe)
    keys = owner.ravel()[pixels].astype(np.int64)

    press = np.zeros((NUM_KEYS, 2))
    press[:, 0] = (boxes[:, 0] + boxes[:, 2]) / 2
    press[:, 1] = np.where(black, front + PRESS_BLACK_Y * length, front + PRESS_WHITE_Y * length)
    flat_owner = owner.ravel()
    key_pixels = np.flatnonzero(flat_owner >= 0)
    key_pixels = key_pixels[np.argsort(flat_owner[key_pixels], kind="stable")]
    key_start = np.searchsorted(flat_owner[key_pixels], np.arange(NUM_KEYS + 1))
    for arr in (up, down, owner, backdrop, boxes, press, pixels, keys, key_pixels, key_start):
        arr.flags.writeable = False
    return _Layout(size=size, white=white, length=length, top=top, front=front, keep=r_keep,
                   backdrop=backdrop, up=up, down=down, owner=owner, key_pixels=key_pixels,
                   key_start=key_start,
                   boxes=boxes, press=press, probe_pixels=pixels, probe_keys=keys,
                   probe_up=up.reshape(-1, 3)[pixels].astype(np.float32),
                   probe_down=down.reshape(-1, 3)[pixels].astype(np.float32))  # fmt: skip


def _layout_for(size: int, look: Look | None) -> _Layout:
    if size < 16:
        raise ValueError(f"the piano needs frames of at least 16 px, got {size}")
    if look is None:
        return _layout(int(size), 1.0, 0.0, 0.0)
    return _layout(int(size), round(float(look.zoom), 6), round(float(look.shift[0]), 6),
                   round(float(look.shift[1]), 6))  # fmt: skip


def note_frames(note: Note, fps: float, num_frames: int) -> tuple[int, int]:
    """The frames [first, last) on which a note holds its key down (as :meth:`Score.roll`,
    which also lifts a key for the frame before it is struck again; the finger stays on it)."""
    first = int(np.ceil(note.start * fps - 0.5))
    last = int(np.ceil(note.end * fps - 0.5))
    if last <= first:  # shorter than a frame: the frame of its onset
        first, last = int(note.start * fps), int(note.start * fps) + 1
    return max(first, 0), min(last, num_frames)


def hand_split(notes: list[Note]) -> int:
    """The pitch from which the right hand plays: middle C, unless that leaves one hand idle
    while the other covers more than an octave, then the median pitch."""
    pitches = np.array([n.pitch for n in notes if 0 <= n.pitch - LOWEST_KEY < NUM_KEYS])
    if pitches.size == 0:
        return SPLIT
    one_sided = bool(np.all(pitches < SPLIT) or np.all(pitches >= SPLIT))
    if one_sided and int(pitches.max() - pitches.min()) > 12:
        return int(np.median(pitches))
    return SPLIT


def _fingering(xs: np.ndarray, h: float, tip_x: np.ndarray) -> tuple[float, np.ndarray]:
    """Fingers and hand centre for keys at ``xs`` (sorted, white widths), from centre ``h``.

    Keeps the hand where it is when every key is within reach of a finger, else moves it to
    the fingering that balances finger stretch against the distance moved.

    Returns:
        the new hand centre and the finger (0 thumb .. 4 little) of each key.
    """
    order = np.argsort(tip_x)  # fingers from left to right
    m = len(xs)
    if m > 5:  # more keys than fingers: spread the fingers, neighbours share
        fingers = order[np.round(np.linspace(0, 4, m)).astype(int)]
        return float(np.mean(xs - tip_x[fingers])), fingers
    best: tuple[float, float, np.ndarray] | None = None
    for combo in itertools.combinations(range(5), m):
        f = order[list(combo)]
        stretch = xs - (h + tip_x[f])
        if np.all(np.abs(stretch) <= REACH):
            cost, centre = float(np.sum(stretch**2)), h
        else:
            centre = float(np.mean(xs - tip_x[f]))
            cost = float(np.sum((xs - centre - tip_x[f]) ** 2))
            cost += MOVE_COST * (centre - h) ** 2 + 1.0
        if best is None or cost < best[0] - 1e-9:
            best = (cost, centre, f)
    assert best is not None
    return best[1], best[2]


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _track(
    notes: list[Note],
    lay: _Layout,
    fps: float,
    num_frames: int,
    tip_x: np.ndarray,
    rest_pitch: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plan one hand: its centre per frame and the pinned fingertips.

    Returns:
        centre (T,) pixels, pin (T, 5, 2) fingertip on its key or NaN, pressing (T, 5) bool.
    """
    t_count, ww = num_frames, lay.white
    centre_x = (lay.press[:, 0] - lay.press[0, 0]) / ww  # key centres in white widths
    origin = lay.press[0, 0]
    pin = np.full((t_count, 5, 2), np.nan)
    pressing = np.zeros((t_count, 5), bool)
    events: dict[int, list[tuple[int, int, int]]] = {}  # onset frame → (key, first, last)
    for n in notes:
        k = n.pitch - LOWEST_KEY
        first, last = note_frames(n, fps, t_count)
        if 0 <= k < NUM_KEYS and first < last:
            events.setdefault(first, []).append((k, first, last))
    h = float(centre_x[rest_pitch - LOWEST_KEY])
    knots_t, knots_h = [0.0], [h]
    lo, hi = 1.3, float(centre_x[-1]) - 1.3
    released = 0  # frame on which the previous onset's keys are all up
    for i, onset in enumerate(sorted(events)):
        group = sorted(events[onset])
        xs = centre_x[[k for k, _, _ in group]]
        target, fingers = _fingering(xs, h, tip_x)
        target = float(np.clip(target, lo, hi))
        if i == 0:  # the hand is in place from the first frame
            knots_h = [target]
        else:
            # ease over the frames before the onset: long enough for the distance and within
            # the gap between onsets (far keys close in time make a fast move); a jump waits
            # for the held keys' release when a fast move still arrives in time, where a
            # short move may stretch the holding finger a little
            gap = max(onset - int(knots_t[-1]), 1)
            distance = abs(target - h)
            fast = max(1, int(np.ceil(1.5 * distance * fps / FAST_SPEED)))
            need = max(round(fps * min(0.1 + 0.03 * distance, 0.5)), fast)
            start = onset - min(need, gap)
            if released > start and distance > JUMP:
                start = max(start, min(released, onset - fast))
            knots_t += [float(start), float(onset)]
            knots_h += [h, target]
        h = target
        released = max(last for _, _, last in group)
        for (k, first, last), f in zip(group, fingers, strict=True):
            pin[first:last, f] = lay.press[k]
            pressing[first:last, f] = True
    t = np.arange(t_count, dtype=np.float64)
    kt, kh = np.asarray(knots_t), np.asarray(knots_h)
    if len(kt) == 1:
        centre = np.full(t_count, kh[0])
    else:
        seg = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
        span = np.maximum(kt[seg + 1] - kt[seg], 1e-9)
        u = _smoothstep((t - kt[seg]) / span)
        centre = kh[seg] + (kh[seg + 1] - kh[seg]) * u
    return origin + centre * ww, pin, pressing


def _finger_tips(
    centre: np.ndarray,
    pin: np.ndarray,
    pressing: np.ndarray,
    lay: _Layout,
    tip_x: np.ndarray,
    tau: float,
) -> np.ndarray:
    """Fingertips per frame: on their keys while pressing, else at rest over the keys, easing
    towards the key just before a press and back after the release.

    Shape:
        centre (T,), pin (T, 5, 2), pressing (T, 5) → (T, 5, 2) pixels.
    """
    t_count = len(centre)
    rest = np.empty((t_count, 5, 2))
    rest[..., 0] = centre[:, None] + tip_x[None, :] * lay.white
    rest[..., 1] = lay.front + TIP_REST_Y[None, :] * lay.length
    offset = np.where(pressing[..., None], pin - rest, 0.0)
    # a finger far from its resting place (the hand moved on) lifts rather than trails
    far = np.linalg.norm(offset, axis=-1, keepdims=True) > 2.0 * lay.white
    offset = np.where(far, 0.0, offset)
    idx = np.arange(t_count)[:, None]
    last = np.maximum.accumulate(np.where(pressing, idx, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(pressing, idx, t_count)[::-1], axis=0)[::-1]
    w_prev = np.where(last >= 0, np.exp(-(idx - last) / tau), 0.0)
    w_next = np.where(nxt < t_count, np.exp(-(nxt - idx) / tau), 0.0)
    prev_off = np.take_along_axis(offset, np.clip(last, 0, None)[..., None], axis=0)
    next_off = np.take_along_axis(offset, np.clip(nxt, None, t_count - 1)[..., None], axis=0)
    scale = 1.0 / np.maximum(w_prev + w_next, 1.0)
    tips = rest + scale[..., None] * (w_prev[..., None] * prev_off + w_next[..., None] * next_off)
    return np.where(pressing[..., None], pin, tips)


def _hand_points(centre: np.ndarray, tips: np.ndarray, lay: _Layout, side: float) -> np.ndarray:
    """The 21 OpenPose hand points from the hand centre and fingertips.

    Args:
        side: +1 right hand, -1 left hand (the left is the right mirrored).

    Shape:
        centre (T,), tips (T, 5, 2) → (T, 21, 2) pixels.
    """
    t_count, ww, kl = len(centre), lay.white, lay.length
    pts = np.empty((t_count, NUM_HAND, 2))
    knuckle_y = lay.front + KNUCKLE_Y * kl
    pts[:, 0] = np.stack([centre, np.full(t_count, lay.front + WRIST_Y * kl)], axis=-1)
    # thumb: base near the wrist, knuckle on the palm's side, tip
    pts[:, 1, 0] = centre + side * THUMB_BASE[0] * ww
    pts[:, 1, 1] = lay.front + THUMB_BASE[1] * kl
    pts[:, 2, 0] = centre + side * KNUCKLE_X[0] * ww
    pts[:, 2, 1] = lay.front + THUMB_MCP_Y * kl
    pts[:, 4] = tips[:, 0]
    pts[:, 3] = pts[:, 2] + 0.55 * (pts[:, 4] - pts[:, 2])
    for f in range(1, 5):
        base = 1 + 4 * f
        mcp = np.stack([centre + side * KNUCKLE_X[f] * ww, np.full(t_count, knuckle_y)], -1)
        pts[:, base] = mcp
        pts[:, base + 1] = mcp + 0.45 * (tips[:, f] - mcp)
        pts[:, base + 2] = mcp + 0.75 * (tips[:, f] - mcp)
        pts[:, base + 3] = tips[:, f]
    return pts


def _shade(colour: RGB | np.ndarray, factor: float) -> tuple[float, float, float]:
    c = np.asarray(colour, np.float32) * factor
    return float(c[0]), float(c[1]), float(c[2])


class PianoRig:
    """A pianist's hands over an 88-key keyboard, seen from above (the Audeo view).

    ``render`` draws the keyboard with the keys of ``score.roll`` down, and two hands whose
    fingertips sit on the sounding keys. The framing follows the look (zoom and shift move
    and scale the keyboard a little; it always spans the frame from left to right), the hands
    take the look's skin and sleeve colours; the keyboard's colours are fixed.

    Exactness: from 61 px up (the keyboard spans at least 52 px, one per white key) each key
    owns pixels at its far end that no hand reaches, so :meth:`pressed_from_pixels` returns
    ``score.roll`` exactly. At 64 px the white keys are one or two pixels wide and the black
    keys one pixel, so the picture is coarse but the probes stay exact; below 61 px some
    white keys own no column and read as up.
    """

    name = "piano"

    def key_boxes(self, size: int, look: Look | None = None) -> np.ndarray:
        """Each key's visible box in pixels: white keys their full length, black keys theirs.

        Args:
            size: the frame side.
            look: the framing (zoom, shift); the nominal framing when ``None``.

        Returns:
            (88, 4) int64 (x0, y0, x1, y1), A0 first; x1 and y1 exclusive.
        """
        return _layout_for(size, look).boxes.copy()

    def pressed_from_pixels(self, frames: np.ndarray, look: Look | None = None) -> np.ndarray:
        """Which keys are drawn down, read from the pixels of each key's probe region.

        Each probe pixel is matched to the nearer of its key's up and down colours; a key is
        down when most of its probe pixels are.

        Args:
            frames: (H, W, 3) or (T, H, W, 3) uint8 rendered frames.
            look: the look they were rendered with (its framing); nominal when ``None``.

        Returns:
            (88,) or (T, 88) bool.

        Shape:
            frames (T, H, W, 3) → (T, 88).
        """
        frames = np.asarray(frames)
        single = frames.ndim == 3
        batch = frames[None] if single else frames
        lay = _layout_for(batch.shape[1], look)
        pix = batch.reshape(len(batch), -1, 3)[:, lay.probe_pixels].astype(np.float32)
        near_down = ((pix - lay.probe_down) ** 2).sum(-1) < ((pix - lay.probe_up) ** 2).sum(-1)
        counts = np.bincount(lay.probe_keys, minlength=NUM_KEYS)
        votes = np.stack([np.bincount(lay.probe_keys, weights=d, minlength=NUM_KEYS)
                          for d in near_down])  # fmt: skip
        out = votes * 2 > counts
        return out[0] if single else out

    def render(
        self,
        score: Score,
        loudness: np.ndarray,
        look: Look,
        size: int,
        fps: float,
        num_frames: int,
        style: str = "none",
        hands: bool = True,
    ) -> Take:
        """Render the performance.

        Args:
            score: the notes to play (the accompaniment is not played).
            loudness: per-frame loudness; unused, the hands follow the notes alone.
            look: skin, sleeve (``top``), background and framing.
            size: frame side in pixels, 16 or more (the keys read back exactly from 61).
            fps: frame rate; frame t shows time t / fps.
            num_frames: frames to draw.
            style: unused.
            hands: draw the hands; ``False``: the keyboard alone (the keypoints are those
                of the hands that would play, the mask is empty).

        Returns:
            frames (T, S, S, 3) uint8, mask (T, S, S) uint8 of the hands and arms, keypoints
            (T, 67, 3) float32: both hands, and the body wrists 4 and 7; other body points 0.
        """
        del loudness, style
        lay = _layout_for(size, look)
        t_count = int(num_frames)
        roll = score.roll(fps, t_count).astype(bool)

        # keyboard: the up frame with the pressed keys' pixels taken from the down frame
        up = lay.up.copy()
        up[lay.backdrop] = np.asarray(look.background, np.uint8)
        down = lay.down.reshape(-1, 3)
        frames = np.empty((t_count, size, size, 3), np.uint8)
        frames[:] = up
        flat = frames.reshape(t_count, size * size, 3)
        start = lay.key_start
        for t in np.flatnonzero(roll.any(axis=1)):
            pix = np.concatenate([lay.key_pixels[start[k] : start[k + 1]]
                                  for k in np.flatnonzero(roll[t])])  # fmt: skip
            flat[t, pix] = down[pix]

        # hands
        split = hand_split(score.notes)
        left_notes = [n for n in score.notes if n.pitch < split]
        right_notes = [n for n in score.notes if n.pitch >= split]
        tau = max(0.5, 0.05 * fps)
        tips_r = TIP_X
        tips_l = -TIP_X
        c_l, pin_l, press_l = _track(left_notes, lay, fps, t_count, tips_l,
                                     min(split - 12, 48))  # fmt: skip
        c_r, pin_r, press_r = _track(right_notes, lay, fps, t_count, tips_r,
                                     max(split + 7, 67))  # fmt: skip
        # keep the palms apart: push both centres out symmetrically when they come too close
        deficit = np.maximum(MIN_SEPARATION * lay.white - (c_r - c_l), 0.0)
        c_l, c_r = c_l - deficit / 2, c_r + deficit / 2
        edge_lo = lay.press[0, 0] + 1.0 * lay.white
        edge_hi = lay.press[-1, 0] - 1.0 * lay.white
        c_l, c_r = np.clip(c_l, edge_lo, edge_hi), np.clip(c_r, edge_lo, edge_hi)
        tips_left = _finger_tips(c_l, pin_l, press_l, lay, tips_l, tau)
        tips_right = _finger_tips(c_r, pin_r, press_r, lay, tips_r, tau)
        # no fingertip, nor its rounded end, may reach the probe rows
        floor_y = lay.keep + 1.5 + self._finger_width(lay) / 2
        for tips in (tips_left, tips_right):
            tips[..., 1] = np.maximum(tips[..., 1], floor_y)
        hand_l = _hand_points(c_l, tips_left, lay, -1.0)
        hand_r = _hand_points(c_r, tips_right, lay, 1.0)

        keypoints = np.zeros((t_count, NUM_KEYPOINTS, 3), np.float32)
        for offset, wrist, pts in ((LEFT_HAND_OFFSET, 7, hand_l), (RIGHT_HAND_OFFSET, 4, hand_r)):
            xy = pts / size
            inside = np.all((xy >= 0) & (xy <= 1), axis=-1)
            keypoints[:, offset : offset + NUM_HAND, :2] = xy
            keypoints[:, offset : offset + NUM_HAND, 2] = inside
            keypoints[:, wrist] = keypoints[:, offset]

        mask = np.zeros((t_count, size, size), np.uint8)
        if hands:
            self._draw_hands(frames, mask, hand_l, hand_r, press_l, press_r, lay, look)
        return Take(frames=frames, mask=mask, keypoints=keypoints)

    @staticmethod
    def _finger_width(lay: _Layout) -> float:
        return max(1.2, 0.85 * lay.white)

    def _draw_hands(
        self,
        frames: np.ndarray,
        mask: np.ndarray,
        hand_l: np.ndarray,
        hand_r: np.ndarray,
        press_l: np.ndarray,
        press_r: np.ndarray,
        lay: _Layout,
        look: Look,
    ) -> None:
        """Draw arms and hands as antialiased capsules on the rows below ``lay.keep``, in place.

        Shape:
            frames (T, S, S, 3), mask (T, S, S), hand_* (T, 21, 2), press_* (T, 5).
        """
        size, ww, kl, keep = lay.size, lay.white, lay.length, lay.keep
        fw = self._finger_width(lay)
        t_count = len(frames)
        # per hand: the 21 hand points, then palm top, sleeve start, elbow
        palm_top, sleeve, elbow = NUM_HAND, NUM_HAND + 1, NUM_HAND + 2
        arm = [(0, sleeve, 3.0 * ww + 1, "arm"), (sleeve, elbow, 4.0 * ww + 2, "top")]
        hand = [
            (0, palm_top, 3.4 * ww, "skin"),
            (5, 17, 1.25 * ww, "skin"),
            (1, 2, 1.1 * ww + 0.3, "skin"),
            (2, 4, 0.95 * fw, "finger0"),
        ]
        hand += [(1 + 4 * f, 4 + 4 * f, fw * (0.88 if f == 4 else 1.0), f"finger{f}")
                 for f in range(1, 5)]  # fmt: skip
        skin, top = look.skin, look.top
        colour = {"top": _shade(top, 1.0), "arm": _shade(skin, 0.93), "skin": _shade(skin, 1.0)}
        colour.update({f"finger{f}": colour["skin"] for f in range(5)})

        def group(parts: list[tuple[int, int, float, str]]) -> tuple[np.ndarray, ...]:
            a = np.array([p[0] for p in parts])
            b = np.array([p[1] for p in parts])
            radius = np.array([p[2] for p in parts], np.float32) / 2
            rims = [_shade(top, 0.6) if p[3] == "top" else _shade(skin, 0.62) for p in parts]
            fills = [colour[p[3]] for p in parts]
            finger = np.array([int(p[3][6:]) if p[3].startswith("finger") else -1
                               for p in parts])  # fmt: skip
            rim = np.array(rims, np.float32)
            if (rim == rim[0]).all():  # one rim colour: one layer, the union of the rims
                rim = rim[0]
            return a, b, radius, rim, np.array(fills, np.float32), finger

        arm_group, hand_group = group(arm), group(hand)
        lowered = np.array(_shade(skin, 0.78), np.float32)
        centre_x = size / 2
        for side, pts21, press in ((-1.0, hand_l, press_l), (1.0, hand_r, press_r)):
            pts = np.empty((t_count, NUM_HAND + 3, 2), np.float32)
            pts[:, :NUM_HAND] = pts21
            wrist = pts21[:, 0]
            pts[:, palm_top, 0] = wrist[:, 0]
            pts[:, palm_top, 1] = lay.front + KNUCKLE_Y * kl + 0.3 * ww
            # the elbow hangs out of frame, below and outside the hand; the arm is drawn to
            # where it leaves the frame
            elbow_x = 0.5 * wrist[:, 0] + 0.5 * (centre_x + side * 0.32 * size) + side * 0.06 * size
            elbow_at = np.stack([elbow_x, np.full(t_count, size * 1.3)], -1)
            pts[:, sleeve] = wrist + 0.3 * (elbow_at - wrist)
            cut = (size + 3 * ww + 2 - pts[:, sleeve, 1]) / (size * 1.3 - pts[:, sleeve, 1])
            pts[:, elbow] = pts[:, sleeve] + np.minimum(cut, 1.0)[:, None] * (
                elbow_at - pts[:, sleeve]
            )
            pts[..., 1] -= keep  # drawn into the rows below the probes only
            for t in range(t_count):
                canvas = frames[t, keep:]
                cover = mask[t, keep:]
                for a, b, radius, rims, fills, finger in (arm_group, hand_group):
                    if (finger >= 0).any():
                        down = (finger >= 0) & press[t, np.maximum(finger, 0)]
                        fills = np.where(down[:, None], lowered, fills)
                    _paint_capsules(canvas, cover, pts[t, a], pts[t, b], radius, rims, fills)


def _paint_capsules(
    canvas: np.ndarray,
    cover: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    radius: np.ndarray,
    rims: np.ndarray,
    fills: np.ndarray,
) -> None:
    """Paint antialiased capsules, each inside a darker rim, over their joint bounding box.

    The distance field and edge ramp of :func:`audiovis.media.draw_segments`, evaluated for
    all segments at once (that one loops in Python, about 0.14 ms a segment on a laptop
    core); the rims are painted first, then the fills in order, composited in closed form.

    Args:
        canvas: (H, W, 3) uint8, painted in place.
        cover: (H, W) uint8 mask, set to 1 where a capsule covers half a pixel or more.
        p, q: (N, 2) float32 segment ends, pixel x, y.
        radius: (N,) float32 half widths of the fills in pixels (rims are half a pixel wider).
        rims: (N, 3) float32 RGB, or (3,): one colour, painted as one layer (their union).
        fills: (N, 3) float32 RGB.
    """
    h, w = cover.shape
    ends = np.concatenate([p, q])
    reach = np.concatenate([radius, radius])[:, None] + 0.5
    x0, y0 = np.maximum(np.floor((ends - reach).min(axis=0) - 1), 0).astype(int)
    x1, y1 = np.ceil((ends + reach).max(axis=0) + 2).astype(int)
    x1, y1 = min(x1, w), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, None, :] - p[:, 0, None, None]
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5)[None, :, None] - p[:, 1, None, None]
    d = q - p
    dx, dy = d[:, 0, None, None], d[:, 1, None, None]
    length2 = np.maximum(dx * dx + dy * dy, np.float32(1e-9))
    t = np.clip((xs * dx + ys * dy) / length2, 0.0, 1.0)
    ramp = radius[:, None, None] + np.float32(0.5) - np.hypot(xs - t * dx, ys - t * dy)
    rim = np.clip(ramp + 0.5, 0.0, 1.0)
    if rims.ndim == 1:
        rim, rims = rim.max(axis=0, keepdims=True), rims[None]
    alpha = np.concatenate([rim, np.clip(ramp, 0.0, 1.0)])
    colours = np.concatenate([rims, fills])
    # back to front: each layer shows through the transparency of those painted after it
    clear = np.cumprod((1.0 - alpha)[::-1], axis=0)[::-1]
    after = np.concatenate([clear[1:], np.ones_like(clear[:1])])
    window = canvas[y0:y1, x0:x1]
    paint = np.einsum("nhw,nc->hwc", alpha * after, colours)
    window[:] = np.clip(window * clear[0][..., None] + paint + 0.5, 0, 255).astype(np.uint8)
    cover[y0:y1, x0:x1] |= (alpha.max(axis=0) >= 0.5).astype(np.uint8)
