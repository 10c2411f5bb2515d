"""The performer the instrument rigs share: a 2-D articulated body seen from the front.

Three pieces:

* **Posing.** A rig states per-frame joint targets (:class:`Targets`: head, shoulders, elbows,
  wrists, hips, knees, ankles and a :class:`Hand` orientation and curl per hand) in *body
  units*: x to the image's right, y down, the mid-hip at the origin, a standing performer about
  0.85 units tall. :func:`articulate` turns them into the 67 OpenPose points (the face, feet and
  hands follow from the head, ankles and wrists), :class:`Camera` maps body units into the
  image with the look's scale, zoom and shift. The performer faces the camera, so their right
  side is on the image's left. :func:`reach` (two-bone inverse kinematics) places elbows.
* **Drawing.** :class:`Canvas` draws antialiased capsules, ellipses and convex polygons as
  distance fields over each shape's bounding box (no per-pixel Python loop), and keeps the
  performer's coverage: body parts raise it, instrument parts drawn over the body lower it, so
  ``coverage >= 0.5`` is the visible performer. :func:`draw_figure` draws body parts.
* **Music to motion.** :func:`note_track`, :func:`follow`, :func:`beat_phase` and
  :func:`alternate` are the shared rules the rigs build their motion from, and
  :class:`FigureRig` is the render loop they share.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from audiovis.data.studio.rigs.base import RGB, Look, Take
from audiovis.data.studio.score import Score
from audiovis.skeleton import LEFT_HAND_OFFSET, NUM_KEYPOINTS, RIGHT_HAND_OFFSET

Color = tuple[float, float, float]

# BODY_25 indices used by name below
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = range(8)
MID_HIP, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = range(8, 15)
R_EYE, L_EYE, R_EAR, L_EAR = range(15, 19)
L_BIG_TOE, L_SMALL_TOE, L_HEEL, R_BIG_TOE, R_SMALL_TOE, R_HEEL = range(19, 25)

# keypoints each body part carries, for rigs that state what is drawn behind an instrument
PART_POINTS: dict[str, tuple[int, ...]] = {
    "legs": (R_KNEE, R_ANKLE, L_KNEE, L_ANKLE, *range(19, 25)),
    "torso": (NECK, MID_HIP, R_HIP, L_HIP),
    "shoulders": (R_SHOULDER, L_SHOULDER),
    "head": (NOSE, R_EYE, L_EYE, R_EAR, L_EAR),
    "r_arm": (R_ELBOW,),
    "l_arm": (L_ELBOW,),
    "r_hand": (R_WRIST, *range(RIGHT_HAND_OFFSET, RIGHT_HAND_OFFSET + 21)),
    "l_hand": (L_WRIST, *range(LEFT_HAND_OFFSET, LEFT_HAND_OFFSET + 21)),
}

SHOE: Color = (38.0, 32.0, 30.0)
EYE: Color = (40.0, 28.0, 24.0)


# ------------------------------------------------------------------------------- geometry


def rotate(v: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Rotate 2-D vectors by ``angle`` radians (clockwise on screen, since y points down).

    Shape:
        v (..., 2), angle broadcastable to (...) → (..., 2).
    """
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def direction(angle: np.ndarray | float) -> np.ndarray:
    """Unit vectors at image angles (0 = right, π/2 = down).

    Shape:
        angle (...) → (..., 2).
    """
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def reach(
    root: np.ndarray, target: np.ndarray, first: float, second: float, bend: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone inverse kinematics: the middle joint of a limb reaching for a target.

    A target out of reach is pulled onto the reachable annulus, so the limb stays intact.

    Args:
        root: the limb's root (shoulder or hip).
        target: where the end (wrist or ankle) should be.
        first, second: the two bone lengths.
        bend: +1 puts the middle joint on the left of the root→target direction as seen on
            screen (clockwise from it, y down), -1 on the right.

    Returns:
        the middle joint and the end actually reached.

    Shape:
        root, target (T, 2) → (T, 2), (T, 2).
    """
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    unit = d / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(first - second) + 1e-6, first + second - 1e-6)
    cos_a = (first**2 + dist**2 - second**2) / (2 * first * dist)
    sin_a = np.sqrt(np.clip(1 - cos_a**2, 0.0, 1.0))
    normal = np.stack([-unit[..., 1], unit[..., 0]], axis=-1) * bend
    joint = root + first * (unit * cos_a + normal * sin_a)
    return joint, root + unit * dist


# --------------------------------------------------------------------------------- posing


@dataclass(frozen=True)
class Body:
    """Segment lengths and widths in body units, from a look's proportions.

    The look's overall ``scale`` is left to the :class:`Camera`; ``shoulders``, ``arms`` and
    ``legs`` change the lengths here, so the same motion needs other elbow and knee angles.
    """

    shoulder: float  # half the shoulder width
    hip: float  # half the hip width
    torso: float  # mid-hip to neck
    neck: float  # neck base to the head's centre
    head: float  # head radius
    upper_arm: float
    forearm: float
    palm: float
    finger: float
    thigh: float
    shin: float
    arm_width: float = 0.042
    forearm_width: float = 0.034
    thigh_width: float = 0.068
    shin_width: float = 0.05
    neck_width: float = 0.036
    palm_width: float = 0.03
    finger_width: float = 0.011
    shoe_width: float = 0.03

    @classmethod
    def of(cls, look: Look) -> Body:
        return cls(
            shoulder=0.085 * look.shoulders,
            hip=0.05 * (0.6 + 0.4 * look.shoulders),
            torso=0.27,
            neck=0.083,
            head=0.056,
            upper_arm=0.14 * look.arms,
            forearm=0.125 * look.arms,
            palm=0.032 * look.arms,
            finger=0.034 * look.arms,
            thigh=0.2 * look.legs,
            shin=0.19 * look.legs,
        )


@dataclass
class Hand:
    """Per-frame hand targets.

    Attributes:
        angle: (T,) image angle of the wrist → middle-finger direction, radians.
        curl: (T,) 0 = open, 1 = fist; curled fingers are foreshortened and bend inwards.
        thumb: +1 puts the thumb clockwise (on screen) of the pointing direction, -1 the other
            side: which side depends on the hand and on whether its palm faces the camera.
    """

    angle: np.ndarray
    curl: np.ndarray
    thumb: float = 1.0


@dataclass
class Targets:
    """Per-frame joint positions of the performer in body units, each (T, 2); ``tilt`` (T,)
    is the head's roll in radians (positive: the top of the head towards the image's right)."""

    head: np.ndarray
    tilt: np.ndarray
    neck: np.ndarray
    r_shoulder: np.ndarray
    r_elbow: np.ndarray
    r_wrist: np.ndarray
    l_shoulder: np.ndarray
    l_elbow: np.ndarray
    l_wrist: np.ndarray
    mid_hip: np.ndarray
    r_hip: np.ndarray
    r_knee: np.ndarray
    r_ankle: np.ndarray
    l_hip: np.ndarray
    l_knee: np.ndarray
    l_ankle: np.ndarray
    r_hand: Hand
    l_hand: Hand

    @classmethod
    def of(
        cls,
        upper: dict[str, np.ndarray],
        lower: dict[str, np.ndarray],
        arms: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        hands: tuple[Hand, Hand],
    ) -> Targets:
        """Targets from :func:`upper_body`, :func:`legs`, the arms' (right elbow, right wrist,
        left elbow, left wrist) and the (right, left) hands."""
        r_elbow, r_wrist, l_elbow, l_wrist = arms
        return cls(head=upper["head"], tilt=upper["tilt"], neck=upper["neck"],
                   r_shoulder=upper["r_shoulder"], r_elbow=r_elbow, r_wrist=r_wrist,
                   l_shoulder=upper["l_shoulder"], l_elbow=l_elbow, l_wrist=l_wrist,
                   mid_hip=lower["mid_hip"], r_hip=lower["r_hip"], r_knee=lower["r_knee"],
                   r_ankle=lower["r_ankle"], l_hip=lower["l_hip"], l_knee=lower["l_knee"],
                   l_ankle=lower["l_ankle"], r_hand=hands[0], l_hand=hands[1])  # fmt: skip


# face points as (right, down) offsets from the head's centre in head radii, before the tilt
_FACE = {NOSE: (0.0, 0.3), R_EYE: (-0.36, 0.0), L_EYE: (0.36, 0.0), R_EAR: (-0.84, 0.1),
         L_EAR: (0.84, 0.1)}  # fmt: skip
# feet seen from the front: toes project below the ankle, the heel just below it
_FOOT = {R_BIG_TOE: (R_ANKLE, (0.008, 0.034)), R_SMALL_TOE: (R_ANKLE, (-0.022, 0.03)),
         R_HEEL: (R_ANKLE, (-0.004, 0.012)), L_BIG_TOE: (L_ANKLE, (-0.008, 0.034)),
         L_SMALL_TOE: (L_ANKLE, (0.022, 0.03)), L_HEEL: (L_ANKLE, (0.004, 0.012))}  # fmt: skip
# per finger (index, middle, ring, little): knuckle offset across the palm and reach factor
_KNUCKLES = ((1.5, 0.96), (0.5, 1.0), (-0.5, 0.97), (-1.5, 0.9))
_PHALANGES = ((0.45, 0.3, 0.25), (0.48, 0.32, 0.26), (0.45, 0.3, 0.25), (0.36, 0.24, 0.2))


def hand_points(wrist: np.ndarray, hand: Hand, body: Body) -> np.ndarray:
    """The 21 OpenPose hand points from the wrist, the hand's orientation and its curl.

    Shape:
        wrist (T, 2) → (T, 21, 2): wrist, then thumb, index, middle, ring, little (4 each).
    """
    t = len(wrist)
    out = np.empty((t, 21, 2))
    out[:, 0] = wrist
    point = direction(hand.angle)  # (T, 2)
    side = hand.thumb * np.stack([-point[:, 1], point[:, 0]], axis=-1)  # towards the thumb
    curl = np.clip(hand.curl, 0.0, 1.0)[:, None]
    spread = 0.3 * body.palm_width
    shorten = 1.0 - 0.55 * curl  # a curled finger points at the camera: it looks shorter
    for f, (across, along) in enumerate(_KNUCKLES):
        joint = wrist + body.palm * along * point + across * spread * side
        out[:, 5 + 4 * f] = joint
        for j, length in enumerate(_PHALANGES[f]):
            bent = rotate(point, hand.thumb * curl[:, 0] * 0.35 * (j + 1))
            joint = joint + body.finger * length * shorten * bent
            out[:, 6 + 4 * f + j] = joint
    # the thumb leaves the palm at the wrist's thumb side and folds in as the hand closes
    thumb_dir = rotate(point, hand.thumb * (0.95 - 0.55 * curl[:, 0]))
    joint = wrist + 0.25 * body.palm * point + 0.9 * spread * side
    out[:, 1] = joint
    for j, length in enumerate((0.42, 0.3, 0.26)):
        joint = joint + body.finger * length * (1.0 - 0.3 * curl) * thumb_dir
        out[:, 2 + j] = joint
    return out


def articulate(targets: Targets, body: Body) -> np.ndarray:
    """The 67 keypoints (BODY_25, left hand, right hand) of posed targets, in body units.

    Shape:
        targets of T frames → (T, 67, 2).
    """
    tg = targets
    t = len(tg.neck)
    pts = np.zeros((t, NUM_KEYPOINTS, 2))
    joints = {NECK: tg.neck, R_SHOULDER: tg.r_shoulder, R_ELBOW: tg.r_elbow,
              R_WRIST: tg.r_wrist, L_SHOULDER: tg.l_shoulder, L_ELBOW: tg.l_elbow,
              L_WRIST: tg.l_wrist, MID_HIP: tg.mid_hip, R_HIP: tg.r_hip, R_KNEE: tg.r_knee,
              R_ANKLE: tg.r_ankle, L_HIP: tg.l_hip, L_KNEE: tg.l_knee,
              L_ANKLE: tg.l_ankle}  # fmt: skip
    for index, value in joints.items():
        pts[:, index] = value
    for index, offset in _FACE.items():
        pts[:, index] = tg.head + rotate(np.asarray(offset) * body.head, tg.tilt)
    for index, (ankle, offset) in _FOOT.items():
        pts[:, index] = pts[:, ankle] + np.asarray(offset)
    pts[:, LEFT_HAND_OFFSET : LEFT_HAND_OFFSET + 21] = hand_points(tg.l_wrist, tg.l_hand, body)
    pts[:, RIGHT_HAND_OFFSET : RIGHT_HAND_OFFSET + 21] = hand_points(tg.r_wrist, tg.r_hand, body)
    return pts


@dataclass(frozen=True)
class Camera:
    """Body units → image coordinates in [0, 1] (x right, y down) for a look.

    Attributes:
        origin: where the body's origin (the mid-hip) sits in the image at nominal framing.
        unit: image sides per body unit at nominal framing.
        look: its ``scale`` grows the body about the origin, ``zoom`` magnifies the image
            about its centre, ``shift`` moves the framing.
    """

    origin: tuple[float, float]
    unit: float
    look: Look

    @property
    def gain(self) -> float:
        """Image sides per body unit."""
        return self.look.zoom * self.unit * self.look.scale

    def image(self, points: np.ndarray) -> np.ndarray:
        """Shape: (..., 2) body units → (..., 2) image coordinates."""
        zoom, (sx, sy) = self.look.zoom, self.look.shift
        ox = 0.5 + zoom * (self.origin[0] - 0.5) + sx
        oy = 0.5 + zoom * (self.origin[1] - 0.5) + sy
        return np.asarray([ox, oy]) + self.gain * np.asarray(points, dtype=np.float64)


# -------------------------------------------------------------------------------- drawing


def _window(
    x0: float, y0: float, x1: float, y1: float, height: int, width: int
) -> tuple[int, int, int, int] | None:
    """The pixel window (y0, y1, x0, x1) covering a box, clipped to the image."""
    wx0, wy0 = max(int(x0) - 1, 0), max(int(y0) - 1, 0)
    wx1, wy1 = min(int(x1) + 2, width), min(int(y1) + 2, height)
    if wx0 >= wx1 or wy0 >= wy1:
        return None
    return wy0, wy1, wx0, wx1


_HALF = np.float32(0.5)


def _grid(win: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a window as broadcastable (1, w) and (h, 1) float32."""
    y0, y1, x0, x1 = win
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + _HALF
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + _HALF
    return xs, ys


def _unit_clip(a: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] in place (np.clip costs several times more on small arrays)."""
    np.maximum(a, 0.0, out=a)
    np.minimum(a, 1.0, out=a)
    return a


class Canvas:
    """One frame being drawn: its colour and the performer's coverage.

    Every shape is blended with its antialiased coverage ``alpha``. A shape of the performer
    raises the coverage to ``alpha`` (as :func:`audiovis.media.draw_segments` does); a shape of
    an instrument lowers it by ``1 - alpha``, because it hides what it is drawn over; its own
    coverage is kept in :attr:`props` to tell which keypoints it occludes.

    Shapes are batched: :meth:`capsules` draws any number of same-coloured capsules as one
    distance field over their joint bounding box, which costs about one capsule's Python
    overhead instead of one per capsule (numpy's per-call overhead, not pixels, dominates at
    these sizes; ``draw_segments`` pays it once per edge).
    """

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.rgb = np.zeros((height, width, 3), np.float32)
        self.coverage = np.zeros((height, width), np.float32)
        self.props = np.zeros((height, width), np.float32)

    def reset(self, base: Canvas) -> None:
        """Start a new frame as a copy of ``base`` (the backdrop and whatever is baked in)."""
        np.copyto(self.rgb, base.rgb)
        np.copyto(self.coverage, base.coverage)
        np.copyto(self.props, base.props)

    def _paint(
        self, win: tuple[int, int, int, int], alpha: np.ndarray, color: Color, performer: bool
    ) -> None:
        y0, y1, x0, x1 = win
        rgb = self.rgb[y0:y1, x0:x1]
        rgb += alpha[..., None] * (np.asarray(color, np.float32) - rgb)
        cover = self.coverage[y0:y1, x0:x1]
        if performer:
            np.maximum(cover, alpha, out=cover)
        else:
            cover *= 1.0 - alpha
            props = self.props[y0:y1, x0:x1]
            np.maximum(props, alpha, out=props)

    def capsules(
        self,
        starts: np.ndarray,
        ends: np.ndarray,
        widths: float | Sequence[float] | np.ndarray,
        color: Color,
        performer: bool = True,
    ) -> None:
        """Antialiased capsules (segments with round caps) of one colour.

        Args:
            starts, ends: (N, 2) pixel x, y; a start equal to its end draws a disc.
            widths: diameters in pixels, one for all or one per capsule.
            color: RGB.
            performer: part of the performer (raises the mask) or of an instrument.
        """
        p = np.asarray(starts, np.float32).reshape(-1, 2)
        q = np.asarray(ends, np.float32).reshape(-1, 2)
        n = len(p)
        r = np.asarray(widths, np.float32).reshape(-1) * _HALF
        pad = float(r.max()) + 0.5
        lo, hi = np.minimum(p, q).min(0), np.maximum(p, q).max(0)
        win = _window(float(lo[0]) - pad, float(lo[1]) - pad, float(hi[0]) + pad,
                      float(hi[1]) + pad, self.height, self.width)  # fmt: skip
        if win is None:
            return
        xs, ys = _grid(win)
        d = (q - p).reshape(n, 2, 1, 1)
        inv = (1.0 / np.maximum((d * d).sum(1), 1e-9)).astype(np.float32)  # (N, 1, 1)
        ox = xs - p[:, 0].reshape(n, 1, 1)  # (N, 1, w)
        oy = ys - p[:, 1].reshape(n, 1, 1)  # (N, h, 1)
        dx, dy = d[:, 0], d[:, 1]
        t = _unit_clip((ox * dx + oy * dy) * inv)  # projection onto each segment
        ex, ey = ox - t * dx, oy - t * dy
        alpha = (r.reshape(-1, 1, 1) + _HALF) - np.sqrt(ex * ex + ey * ey)
        alpha = _unit_clip(alpha[0] if n == 1 else alpha.max(0))
        self._paint(win, alpha, color, performer)

    def ellipse(
        self,
        center: np.ndarray,
        radii: tuple[float, float],
        angle: float,
        color: Color,
        performer: bool = True,
    ) -> None:
        """An antialiased filled ellipse: ``radii`` (along ``angle``, across it) in pixels."""
        a, b = max(float(radii[0]), 0.3), max(float(radii[1]), 0.3)
        c, s = float(np.cos(angle)), float(np.sin(angle))
        ex, ey = float(np.hypot(a * c, b * s)), float(np.hypot(a * s, b * c))
        cx, cy = float(center[0]), float(center[1])
        win = _window(cx - ex, cy - ey, cx + ex, cy + ey, self.height, self.width)
        if win is None:
            return
        xs, ys = _grid(win)
        xs, ys = xs - np.float32(cx), ys - np.float32(cy)
        u = xs * np.float32(c / a) + ys * np.float32(s / a)
        v = ys * np.float32(c / b) - xs * np.float32(s / b)
        k = np.sqrt(u * u + v * v)
        # distance to the outline ≈ (k - 1) / |∇k|, exact on both axes
        grad = np.sqrt((u * np.float32(1 / a)) ** 2 + (v * np.float32(1 / b)) ** 2)
        grad /= np.maximum(k, np.float32(1e-6))
        alpha = _unit_clip(_HALF - (k - 1.0) / np.maximum(grad, np.float32(1e-6)))
        self._paint(win, alpha, color, performer)

    def polygon(self, points: np.ndarray, color: Color, performer: bool = True) -> None:
        """An antialiased filled convex polygon with vertices (N, 2) in pixels, either order."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        lo, hi = pts.min(0), pts.max(0)
        win = _window(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]), self.height,
                      self.width)  # fmt: skip
        if win is None:
            return
        edge = np.concatenate([pts[1:], pts[:1]]) - pts
        normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)
        e0, e1 = edge[0].tolist(), edge[1].tolist()
        if e0[0] * e1[1] - e0[1] * e1[0] < 0:  # counter-clockwise on screen: flip
            normal = -normal
        normal /= np.maximum(np.hypot(normal[:, 0], normal[:, 1]), 1e-9)[:, None]
        offset = (normal * pts).sum(1)
        xs, ys = _grid(win)
        nx = normal[:, 0].astype(np.float32).reshape(-1, 1, 1)
        ny = normal[:, 1].astype(np.float32).reshape(-1, 1, 1)
        # signed distance to a convex polygon: the largest signed distance to its edge lines
        sd = (xs * nx + ys * ny - offset.astype(np.float32).reshape(-1, 1, 1)).max(0)
        self._paint(win, _unit_clip(_HALF - sd), color, performer)

    def sprite(self, sprite: Sprite, shift: tuple[float, float] = (0.0, 0.0)) -> None:
        """Composite an instrument sprite, moved by ``shift`` pixels (bilinear, so sub-pixel
        motion stays smooth)."""
        layer, (y0, x0) = sprite.shifted(shift)
        h, w = layer.shape[:2]
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + h, self.height), min(x0 + w, self.width)
        if ya >= yb or xa >= xb:
            return
        layer = layer[ya - y0 : yb - y0, xa - x0 : xb - x0]
        alpha = layer[..., 3]
        rgb = self.rgb[ya:yb, xa:xb]
        rgb *= 1.0 - alpha[..., None]
        rgb += layer[..., :3]
        cover = self.coverage[ya:yb, xa:xb]
        cover *= 1.0 - alpha
        props = self.props[ya:yb, xa:xb]
        np.maximum(props, alpha, out=props)

    def write(self, frame: np.ndarray, mask: np.ndarray) -> None:
        """Store the frame (H, W, 3) uint8 and the visible performer (H, W) uint8 {0, 1}.

        Every blend is a convex mix of colours in [0, 255], so no clipping is needed.
        """
        np.copyto(frame, self.rgb + _HALF, casting="unsafe")
        np.greater_equal(self.coverage, _HALF, out=mask, casting="unsafe")


class Sprite(Canvas):
    """A transparent layer for an instrument that moves rigidly (or not at all): drawn once
    with the usual shapes, then composited on every frame for the cost of one shape.

    Colours are premultiplied by the layer's alpha, so "over" compositing is one blend.
    """

    def __init__(self, height: int, width: int) -> None:
        super().__init__(height, width)
        self.alpha = np.zeros((height, width), np.float32)
        self._layer: np.ndarray | None = None
        self._corner = (0, 0)

    def _paint(
        self, win: tuple[int, int, int, int], alpha: np.ndarray, color: Color, performer: bool
    ) -> None:
        if performer:
            raise ValueError("a sprite holds instrument shapes only")
        y0, y1, x0, x1 = win
        rgb = self.rgb[y0:y1, x0:x1]
        rgb += alpha[..., None] * (np.asarray(color, np.float32) - rgb)
        a = self.alpha[y0:y1, x0:x1]
        a += alpha * (1.0 - a)
        self._layer = None

    def _crop(self) -> None:
        rows, cols = np.flatnonzero(self.alpha.any(1)), np.flatnonzero(self.alpha.any(0))
        if not len(rows):
            self._layer, self._corner = np.zeros((0, 0, 4), np.float32), (0, 0)
            return
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        self._layer = np.concatenate([self.rgb[y0:y1, x0:x1], self.alpha[y0:y1, x0:x1, None]],
                                     axis=-1)  # fmt: skip
        self._corner = (int(y0), int(x0))

    def shifted(self, shift: tuple[float, float]) -> tuple[np.ndarray, tuple[int, int]]:
        """The premultiplied RGBA layer moved by (dx, dy) pixels, and its top-left corner.

        Shape:
            → (h, w, 4) float32 (one pixel larger each way when the shift has a fraction).
        """
        if self._layer is None:
            self._crop()
        assert self._layer is not None
        ix, iy = int(np.floor(shift[0])), int(np.floor(shift[1]))
        fx, fy = float(shift[0]) - ix, float(shift[1]) - iy
        y0, x0 = self._corner[0] + iy, self._corner[1] + ix
        layer = self._layer
        if fx < 1e-3 and fy < 1e-3:
            return layer, (y0, x0)
        h, w = layer.shape[:2]
        out = np.zeros((h + 1, w + 1, 4), np.float32)
        out[:h, :w] += np.float32((1 - fx) * (1 - fy)) * layer
        out[:h, 1:] += np.float32(fx * (1 - fy)) * layer
        out[1:, :w] += np.float32((1 - fx) * fy) * layer
        out[1:, 1:] += np.float32(fx * fy) * layer
        return out, (y0, x0)


def shade(color: RGB | Color, factor: float) -> Color:
    """A colour darkened (factor < 1) or lightened towards white (factor > 1)."""
    c = np.asarray(color, np.float64)
    out = c * factor if factor <= 1 else c + (255 - c) * (factor - 1)
    return (float(out[0]), float(out[1]), float(out[2]))


@dataclass(frozen=True)
class FigureStyle:
    """Colours and pixel widths of a look's performer at one image size."""

    skin: Color
    hair: Color
    top: Color
    bottom: Color
    ppu: float  # pixels per body unit
    body: Body

    @property
    def sleeve(self) -> Color:
        """Arms a shade darker than the chest, so an arm across the body stays visible."""
        return shade(self.top, 0.84)

    @classmethod
    def of(cls, look: Look, body: Body, ppu: float) -> FigureStyle:
        def f(c: RGB) -> Color:
            return (float(c[0]), float(c[1]), float(c[2]))

        return cls(f(look.skin), f(look.hair), f(look.top), f(look.bottom), ppu, body)

    def px(self, units: float) -> float:
        return max(units * self.ppu, 0.6)


def draw_figure(
    canvas: Canvas,
    style: FigureStyle,
    points: np.ndarray,
    head: np.ndarray,
    tilt: float,
    parts: Iterable[str],
) -> None:
    """Draw body parts of one frame, in the given order.

    Args:
        canvas: the frame.
        style: colours and widths.
        points: (67, 2) keypoints in pixels.
        head: (2,) the head's centre in pixels.
        tilt: the head's roll in radians.
        parts: any of ``legs`` (thighs, shins, shoes), ``torso`` (neck, hips, chest,
            shoulders), ``head`` (hair, face, eyes), ``r_arm``, ``l_arm`` (upper arm and
            forearm), ``r_hand``, ``l_hand``.
    """
    b, p = style.body, points
    for part in parts:
        if part == "legs":
            thighs, shins = style.px(b.thigh_width), style.px(b.shin_width)
            canvas.capsules(p[[R_HIP, R_KNEE, L_HIP, L_KNEE]],
                            p[[R_KNEE, R_ANKLE, L_KNEE, L_ANKLE]],
                            [thighs, shins, thighs, shins], style.bottom)  # fmt: skip
            # a shoe seen from the front: across the toes, and down from the ankle to them
            big, small = p[[R_BIG_TOE, L_BIG_TOE]], p[[R_SMALL_TOE, L_SMALL_TOE]]
            canvas.capsules(np.concatenate([big, p[[R_ANKLE, L_ANKLE]]]),
                            np.concatenate([small, (big + small) / 2]),
                            style.px(b.shoe_width), SHOE)  # fmt: skip
        elif part == "torso":
            # the neck first, so the chest hides its lower cap
            canvas.capsules(p[NECK], head, style.px(b.neck_width), style.skin)
            canvas.capsules(p[R_HIP], p[L_HIP], style.px(b.thigh_width), style.bottom)
            hips = p[[L_HIP, R_HIP]]
            waist = hips + (hips - p[MID_HIP]) * 0.25
            canvas.polygon(np.stack([p[R_SHOULDER], p[L_SHOULDER], waist[0], waist[1]]),
                           style.top)  # fmt: skip
            canvas.capsules(p[R_SHOULDER], p[L_SHOULDER], style.px(b.arm_width), style.top)
        elif part == "head":
            r = b.head * style.ppu
            up = rotate(np.array([0.0, -1.0]), tilt)
            canvas.ellipse(head + 0.1 * r * up, (1.06 * r, 1.04 * r), tilt, style.hair)
            canvas.ellipse(head - 0.14 * r * up, (0.86 * r, 0.88 * r), tilt + np.pi / 2,
                           style.skin)  # fmt: skip
            canvas.capsules(p[[R_EYE, L_EYE]], p[[R_EYE, L_EYE]], max(0.17 * r, 0.8), EYE)
        elif part in ("r_arm", "l_arm"):
            sh, el, wr = (R_SHOULDER, R_ELBOW, R_WRIST) if part == "r_arm" else (
                L_SHOULDER, L_ELBOW, L_WRIST)  # fmt: skip
            canvas.capsules(
                p[[sh, el]],
                p[[el, wr]],
                [style.px(b.arm_width), style.px(b.forearm_width)],
                style.sleeve,
            )
        elif part in ("r_hand", "l_hand"):
            o = RIGHT_HAND_OFFSET if part == "r_hand" else LEFT_HAND_OFFSET
            starts = p[[o, o + 1, o + 5, o + 9, o + 13, o + 17]]
            ends = p[[o + 9, o + 4, o + 8, o + 12, o + 16, o + 20]]
            widths = [style.px(b.palm_width)] + [style.px(b.finger_width)] * 5
            canvas.capsules(starts, ends, widths, style.skin)
        else:
            raise ValueError(f"unknown body part {part!r}")


# ----------------------------------------------------------------------- music to motion


def fit_loudness(loudness: np.ndarray | Sequence[float], num_frames: int) -> np.ndarray:
    """Loudness per frame as (num_frames,) float64 in [0, 1]: clipped, cut or padded with its
    last value (zeros when empty)."""
    loud = np.clip(np.nan_to_num(np.asarray(loudness, np.float64).reshape(-1)), 0.0, 1.0)
    if len(loud) >= num_frames:
        return loud[:num_frames].copy()
    fill = loud[-1] if len(loud) else 0.0
    return np.concatenate([loud, np.full(num_frames - len(loud), fill)])


@dataclass
class NoteTrack:
    """The performer's notes per video frame, on :meth:`Score.roll`'s clock (a note sounds in
    frame t when it covers the frame's centre; a note shorter than a frame owns its onset
    frame).

    Attributes:
        pitch: (T,) float MIDI pitch of the latest-started sounding note (the highest of
            notes started together); NaN in rests.
        active: (T,) bool, a note sounds.
        onset: (T,) bool, a note starts in this frame.
    """

    pitch: np.ndarray
    active: np.ndarray
    onset: np.ndarray


def note_frames(start: float, end: float, fps: float) -> tuple[int, int]:
    """First and one-past-last frame of a note, as :meth:`Score.roll` marks them."""
    first = int(np.ceil(start * fps - 0.5))
    last = int(np.ceil(end * fps - 0.5))
    if last <= first:
        first = int(start * fps)
        last = first + 1
    return first, last


def note_track(score: Score, fps: float, num_frames: int) -> NoteTrack:
    """The sounding note, activity and onsets per frame (see :class:`NoteTrack`)."""
    pitch = np.full(num_frames, np.nan)
    onset = np.zeros(num_frames, bool)
    # later onsets overwrite earlier ones; among simultaneous notes the highest wins
    for note in sorted(score.notes, key=lambda n: (n.start, n.pitch)):
        first, last = note_frames(note.start, note.end, fps)
        first, last = max(first, 0), min(last, num_frames)
        if first >= last:
            continue
        pitch[first:last] = note.pitch
        onset[first] = True
    return NoteTrack(pitch=pitch, active=~np.isnan(pitch), onset=onset)


def runs(*values: np.ndarray) -> list[tuple[int, int]]:
    """Start and stop of each run of frames over which all of ``values`` stay the same.

    Shape:
        values (T,) each → a list of (start, stop) covering 0..T.
    """
    n = len(values[0])
    if n == 0:
        return []
    change = np.zeros(n - 1, bool)
    for v in values:
        change |= v[1:] != v[:-1]
    bounds = np.concatenate([[0], np.flatnonzero(change) + 1, [n]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def follow(
    target: np.ndarray,
    active: np.ndarray,
    rest: float,
    fps: float,
    settle_frames: float = 1.0,
    relax_seconds: float = 0.6,
) -> np.ndarray:
    """A hand following a per-frame target: quickly while notes sound, slowly back to ``rest``
    in rests.

    A one-pole filter whose time constant is ``settle_frames`` frames during notes (so a new
    note is reached within about two frames) and ``relax_seconds`` in rests. It is solved in
    closed form over each run of constant target, so the cost is per note, not per frame.

    Shape:
        target, active (T,) → (T,).
    """
    n = len(target)
    out = np.empty(n)
    goal = np.where(active, target, rest)
    slow = np.exp(-1.0 / max(relax_seconds * fps, 1e-6))
    fast = np.exp(-1.0 / settle_frames)
    value = float(goal[0]) if n else rest
    # within a run of constant goal and activity the filter decays geometrically
    for a, b in runs(goal, active):
        keep = fast if active[a] else slow
        steps = np.arange(1, b - a + 1)
        out[a:b] = goal[a] + (value - goal[a]) * keep**steps
        value = float(out[b - 1])
    return out


def alternate(onset: np.ndarray) -> np.ndarray:
    """A direction that flips at every onset: +1 from the first onset on, then -1, +1 …
    (-1 before the first).

    Shape:
        onset (T,) bool → (T,) float ±1.
    """
    count = np.cumsum(onset)
    return np.where(count % 2 == 1, 1.0, -1.0)


def beat_phase(score: Score, fps: float, num_frames: int) -> np.ndarray:
    """Where each frame's time ``t / fps`` falls between beats: 0 on a beat, rising to 1 at the
    next. Before the first and after the last beat the nearest beat interval continues
    (the score's tempo when it has fewer than two beats).

    Shape:
        → (num_frames,) float64 in [0, 1).
    """
    time = np.arange(num_frames) / fps
    beats = np.asarray(score.beats, np.float64)
    if len(beats) < 2:
        period = 60.0 / max(score.tempo, 1e-6)
        start = float(beats[0]) if len(beats) else 0.0
        return np.mod((time - start) / period, 1.0)
    k = np.clip(np.searchsorted(beats, time, side="right") - 1, 0, len(beats) - 2)
    span = beats[k + 1] - beats[k]
    phase = (time - beats[k]) / np.maximum(span, 1e-9)
    return np.mod(phase, 1.0)


def sway(phase: np.ndarray) -> np.ndarray:
    """The posture sway: a sinusoid at zero phase on every beat.

    Shape:
        phase (T,) → (T,) in [-1, 1].
    """
    return np.sin(2 * np.pi * phase)


# ------------------------------------------------------------------------------ the rigs


@dataclass
class Scene:
    """What a rig poses for a take: the performer and its instrument.

    Attributes:
        targets: the performer's joint targets.
        props: instrument geometry per frame in body units, (T, N, 2) each (broadcast views
            where it does not move).
    """

    targets: Targets
    props: dict[str, np.ndarray]


class FigureRig:
    """The render loop the instrument rigs share.

    A subclass gives the framing (:attr:`origin`, :attr:`unit`, :attr:`horizon`,
    :attr:`seated`), its drawing order (:attr:`layers`: body parts of :func:`draw_figure` and
    names of its instrument's props), the props that move rigidly (:attr:`rigid`), the
    keypoints drawn behind the instrument (:attr:`behind`) and three methods: :meth:`motion`
    (music → motion parameters, independent of the look), :meth:`pose` (motion → joint
    targets and prop geometry) and :meth:`draw_prop` (one prop in one frame).

    Speed: the leading layers that do not move during the take (the legs, a static
    instrument) are drawn once into the backdrop; a rigid prop is drawn once as a
    :class:`Sprite` and composited per frame, shifted by its anchor's motion (the first point
    of its geometry).

    Keypoint confidence is 1, and 0 where a point is off-frame or where a point in
    :attr:`behind` lies under the instrument (its coverage ≥ 0.5 at the point's pixel).
    """

    name: str = ""
    origin: ClassVar[tuple[float, float]] = (0.5, 0.5)
    unit: ClassVar[float] = 1.0
    horizon: ClassVar[float] = 0.25  # body y of the wall/floor line
    seated: ClassVar[bool] = False
    layers: ClassVar[tuple[str, ...]] = ()
    rigid: ClassVar[frozenset[str]] = frozenset()
    behind: ClassVar[tuple[int, ...]] = ()

    def motion(
        self, score: Score, loudness: np.ndarray, fps: float, num_frames: int
    ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def pose(self, motion: dict[str, np.ndarray], body: Body) -> Scene:
        raise NotImplementedError

    def draw_prop(self, canvas: Canvas, name: str, geometry: np.ndarray, ppu: float) -> None:
        """Draw prop ``name`` from its geometry in one frame, (N, 2) pixels."""
        raise NotImplementedError

    def background(self, look: Look, camera: Camera, size: int) -> Canvas:
        """The static backdrop: wall, floor, the performer's shadow and a chair when seated."""
        canvas = Canvas(size, size)
        wall, floor = np.asarray(look.background, np.float32), np.asarray(look.floor, np.float32)
        y_floor = camera.image(np.array([0.0, self.horizon]))[1] * size
        ys = np.arange(size, dtype=np.float32) + 0.5
        a = np.clip(ys - y_floor + 0.5, 0, 1)[:, None, None]
        # the floor darkens slightly towards the camera, for depth
        depth = np.clip((ys - y_floor) / size, 0, 1)[:, None, None]
        canvas.rgb[:] = wall * (1 - a) + floor * (1 - 0.25 * depth) * a
        ppu = camera.gain * size
        feet = camera.image(np.array([0.0, 0.25 if self.seated else 0.43])) * size
        canvas.ellipse(feet, (0.2 * ppu, 0.03 * ppu), 0.0, shade(look.floor, 0.75), False)
        if self.seated:
            chair = (70.0, 60.0, 55.0)
            seat = camera.image(np.array([[-0.17, 0.0], [0.17, 0.0]])) * size
            legs = camera.image(np.array([[-0.15, 0.0], [-0.15, 0.25], [0.15, 0.0],
                                          [0.15, 0.25]])) * size  # fmt: skip
            canvas.capsules(legs[[0, 2]], legs[[1, 3]], 0.018 * ppu, shade(chair, 0.7), False)
            canvas.capsules(seat[0], seat[1], 0.035 * ppu, chair, False)
        canvas.props.fill(0.0)  # the backdrop hides no keypoint
        return canvas

    def render(
        self,
        score: Score,
        loudness: np.ndarray,
        look: Look,
        size: int,
        fps: float,
        num_frames: int,
        style: str = "none",
    ) -> Take:
        """Draw the take: frame t shows time ``t / fps`` (``style`` is for dance and ignored).

        Shape:
            → frames (T, size, size, 3) uint8, mask (T, size, size) uint8,
            keypoints (T, 67, 3) float32.
        """
        if size < 8 or fps <= 0 or num_frames < 0:
            raise ValueError(f"bad render request: size {size}, fps {fps}, frames {num_frames}")
        motion = self.motion(score, loudness, fps, num_frames)
        body = Body.of(look)
        scene = self.pose(motion, body)
        camera = Camera(self.origin, self.unit, look)
        ppu = camera.gain * size
        image_points = camera.image(articulate(scene.targets, body))  # (T, 67, 2) in [0, 1]
        pixels = (image_points * size).astype(np.float32)
        heads = (camera.image(scene.targets.head) * size).astype(np.float32)
        tilts = scene.targets.tilt
        props = {k: (camera.image(v) * size).astype(np.float32) for k, v in scene.props.items()}
        style_ = FigureStyle.of(look, body, ppu)

        def draw(canvas: Canvas, layer: str, t: int) -> None:
            if layer in props:
                self.draw_prop(canvas, layer, props[layer][t], ppu)
            else:
                draw_figure(canvas, style_, pixels[t], heads[t], float(tilts[t]), (layer,))

        def still(layer: str) -> bool:
            if num_frames == 0:
                return False
            if layer in props:
                return layer in self.rigid and bool(np.ptp(props[layer][:, 0], axis=0).max() == 0)
            return layer == "legs" and bool(np.ptp(pixels[:, _LEG_POINTS], axis=0).max() == 0)

        base = self.background(look, camera, size)
        layers = list(self.layers)
        while layers and still(layers[0]):
            draw(base, layers.pop(0), 0)
        sprites: dict[str, Sprite] = {}
        for layer in layers:
            if layer in self.rigid and num_frames:
                sprites[layer] = Sprite(size, size)
                self.draw_prop(sprites[layer], layer, props[layer][0], ppu)

        frames = np.empty((num_frames, size, size, 3), np.uint8)
        mask = np.empty((num_frames, size, size), np.uint8)
        occluded = np.zeros((num_frames, NUM_KEYPOINTS), bool)
        behind = np.asarray(self.behind, np.int64)
        canvas = Canvas(size, size)
        for t in range(num_frames):
            canvas.reset(base)
            for layer in layers:
                if layer in sprites:
                    dx, dy = (props[layer][t, 0] - props[layer][0, 0]).tolist()
                    canvas.sprite(sprites[layer], (dx, dy))
                else:
                    draw(canvas, layer, t)
            canvas.write(frames[t], mask[t])
            if len(behind):
                ix = np.clip(pixels[t, behind].astype(np.int64), 0, size - 1)
                occluded[t, behind] = canvas.props[ix[:, 1], ix[:, 0]] >= 0.5
        inside = ((image_points >= 0) & (image_points <= 1)).all(-1)  # (T, 67)
        keypoints = np.empty((num_frames, NUM_KEYPOINTS, 3), np.float32)
        keypoints[..., :2] = np.clip(image_points, 0.0, 1.0)
        keypoints[..., 2] = inside & ~occluded
        return Take(frames=frames, mask=mask, keypoints=keypoints)


_LEG_POINTS = [R_HIP, L_HIP, *PART_POINTS["legs"]]


def upper_body(
    body: Body, lean: np.ndarray, tilt: np.ndarray, shoulder_drop: float = 0.012
) -> dict[str, np.ndarray]:
    """Neck, shoulders and head of a torso leaning by ``lean`` radians about the mid-hip (the
    head rolls by ``lean + tilt``).

    Shape:
        lean, tilt (T,) → dict of (T, 2) points and ``tilt`` (T,).
    """
    neck = rotate(np.array([0.0, -body.torso]), lean)
    return {
        "neck": neck,
        "r_shoulder": rotate(np.array([-body.shoulder, shoulder_drop - body.torso]), lean),
        "l_shoulder": rotate(np.array([body.shoulder, shoulder_drop - body.torso]), lean),
        "head": neck + rotate(np.array([0.0, -body.neck]), lean + 0.5 * tilt),
        "tilt": lean + tilt,
    }


def legs(
    body: Body,
    num_frames: int,
    seated: bool,
    knee_spread: float = 0.065,
    foot_spread: float = 0.01,
) -> dict[str, np.ndarray]:
    """Hips, knees and ankles of a still lower body: standing, or seated with the thighs
    pointing at the camera (foreshortened) and the shins vertical.

    Shape:
        → dict of (num_frames, 2) points.
    """
    h = body.hip
    if seated:
        knee = np.array([h + knee_spread, 0.035 * body.thigh / 0.2])
        ankle = knee + np.array([foot_spread, 0.92 * body.shin])
    else:
        knee = np.array([h + 0.005, 0.96 * body.thigh])
        ankle = knee + np.array([0.01, 0.98 * body.shin])
    mirror = np.array([-1.0, 1.0])
    one = np.ones((num_frames, 1))
    return {
        "mid_hip": np.zeros((num_frames, 2)),
        "r_hip": one * np.array([-h, 0.0]),
        "l_hip": one * np.array([h, 0.0]),
        "r_knee": one * (knee * mirror),
        "l_knee": one * knee,
        "r_ankle": one * (ankle * mirror),
        "l_ankle": one * ankle,
    }


class Frame:
    """An instrument's own axes in pixels, for drawing it in its own coordinates.

    Built from two points: the instrument's origin and the point one body unit along its
    axis. ``s`` runs along the axis and ``across`` along its normal (the axis turned a
    quarter clockwise on screen), both in body units.
    """

    def __init__(self, axis: np.ndarray) -> None:
        self.origin = np.asarray(axis[0], np.float64)
        self.u = np.asarray(axis[1], np.float64) - self.origin
        self.n = np.array([-self.u[1], self.u[0]])
        self.ppu = float(np.hypot(*self.u))
        self.angle = float(np.arctan2(self.u[1], self.u[0]))

    def at(self, s: float | np.ndarray, across: float | np.ndarray = 0.0) -> np.ndarray:
        """Shape: s, across broadcastable (...) → (..., 2) pixels."""
        s, across = np.asarray(s, np.float64), np.asarray(across, np.float64)
        return self.origin + s[..., None] * self.u + across[..., None] * self.n

    def oval(
        self,
        canvas: Canvas,
        s: float,
        length: float,
        width: float,
        color: Color,
        across: float = 0.0,
    ) -> None:
        """An instrument ellipse centred at (s, across): half ``length`` along, half ``width``
        across."""
        canvas.ellipse(self.at(s, across), (length * self.ppu, width * self.ppu), self.angle,
                       color, performer=False)  # fmt: skip

    def band(
        self,
        canvas: Canvas,
        s0: float,
        s1: float,
        w0: float,
        w1: float,
        color: Color,
        across: float = 0.0,
    ) -> None:
        """An instrument trapezoid along the axis from ``s0`` (half-width ``w0``) to ``s1``."""
        pts = self.at(np.array([s0, s1, s1, s0]), np.array([-w0, -w1, w1, w0]) + across)
        canvas.polygon(pts, color, performer=False)

    def rods(
        self,
        canvas: Canvas,
        segments: Sequence[tuple[float, float, float, float]],
        width: float,
        color: Color,
    ) -> None:
        """Instrument capsules, each (s0, across0, s1, across1), ``width`` in body units."""
        seg = np.asarray(segments, np.float64).reshape(-1, 4)
        canvas.capsules(self.at(seg[:, 0], seg[:, 1]), self.at(seg[:, 2], seg[:, 3]),
                        max(width * self.ppu, 0.5), color, performer=False)  # fmt: skip
