"""The dance rig: a ballroom dancer whose steps land on the score's beats.

Motion is a deterministic function of the score's beats, the style and the loudness:

* **Steps.** A style's *figure* is a table of steps (which foot, where to, on which count) that
  repeats over the beats. Each step is a weight transfer: the free foot lifts off after the
  other foot has landed and reaches the floor, with zero velocity, at its count's time (a beat
  of ``score.beats``, or halfway between two beats for the cha-cha's "and"), or up to half a
  frame earlier so that the frame showing the beat, ``round(time * fps)``, shows the foot
  planted. A planted foot does not move until it lifts again; the pelvis follows the weight
  from foot to foot and is lowered where needed so both legs always reach their feet.
* **Figures** (:data:`FIGURES`; L/R = left/right foot):

  - ``waltz``: box step, L fwd, R side, L close | R back, L side, R close, with rise and
    fall (down on 1, rising through 2, up on 3). 3 steps per bar of 3, counted in threes over
    the beats whatever the score's meter.
  - ``chacha``: 2 rock, 3 replace, 4-&-1 chassé (the cha-cha-cha) to the left, then the
    same mirrored backwards and to the right, with Cuban hip motion. 5 steps per 4 beats (on
    2, 3, 4, &, 1).
  - ``tango``: slow-slow-quick-quick-slow walking forward (L, R, L fwd, R side, L close), then
    the same backwards; flat (no rise), knees bent, leaning into the walk, staccato feet and
    head snaps on the quicks. 5 steps per 2 bars of 4 (beats 1, 3, 5, 6, 7).
  - ``rumba``: quick-quick-slow, 2 L fwd, 3 R replace, 4-1 L side | 2 R back, 3 L replace,
    4-1 R side, with strong Cuban hip motion. 3 steps per bar of 4 (on 2, 3, 4).

  Waltz and tango hold a partner's frame with the arms; cha-cha and rumba extend one arm to
  the side in turn.
* **Amplitude.** Step length, lift, rise and fall, hip motion and arm styling scale with the
  loudness (0..1, smoothed over half a second).
* **No beats.** The dancer stands in the style's posture with a slight idle sway.

The skeleton is our own 23-joint layout (:data:`DANCE_JOINTS`, :data:`DANCE_PARENTS`): the
Music-to-Dance dataset's joint order is not documented, so this one is not claimed to match.
World coordinates are metres: ``y`` up, the floor at ``y = 0``, the camera in front of the
dancer's start pose (``+z``) and to its left (``+x``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from audiovis.data.studio.rigs.base import Look, Take
from audiovis.data.studio.score import Score
from audiovis.media import draw_segments
from audiovis.skeleton import LEFT_HAND_OFFSET, NUM_KEYPOINTS, RIGHT_HAND_OFFSET

# ------------------------------------------------------------------------------- skeleton

DANCE_JOINTS: tuple[str, ...] = (
    "pelvis", "spine", "chest", "neck", "head",
    "l_clavicle", "l_shoulder", "l_elbow", "l_wrist", "l_hand",
    "r_clavicle", "r_shoulder", "r_elbow", "r_wrist", "r_hand",
    "l_hip", "l_knee", "l_ankle", "l_toe",
    "r_hip", "r_knee", "r_ankle", "r_toe",
)  # fmt: skip
"""The 23 joints: the root (pelvis, between the hip joints and a little above), lower spine,
chest (top of the thoracic spine), base of the neck, head (centre of the skull; there is no
head-top joint), per arm the clavicle (sternal end), shoulder, elbow, wrist and hand (middle
knuckle), per leg the hip, knee, ankle and toe (ball of the foot). ``l_`` is the dancer's own
left."""

DANCE_PARENTS: tuple[int, ...] = (
    -1, 0, 1, 2, 3, 2, 5, 6, 7, 8, 2, 10, 11, 12, 13, 0, 15, 16, 17, 0, 19, 20, 21,
)  # fmt: skip
"""Parent of each joint in :data:`DANCE_JOINTS` (-1 for the root)."""

DANCE_EDGES: tuple[tuple[int, int], ...] = tuple(
    (p, i) for i, p in enumerate(DANCE_PARENTS) if p >= 0
)
"""The 22 bones as (parent, child) pairs."""

J = {name: i for i, name in enumerate(DANCE_JOINTS)}  # joint name → index
NUM_JOINTS = len(DANCE_JOINTS)
STYLES: tuple[str, ...] = ("waltz", "chacha", "tango", "rumba")
FOOT_NAMES = ("left", "right")

# Body proportions in metres for look.scale = 1 (a 1.72 m dancer).
_ANKLE_H = 0.08  # ankle joint above the floor when the foot is flat
_TOE_H = 0.025  # ball of the foot above the floor
_FOOT = 0.14  # ankle to ball of the foot, horizontally
_THIGH, _SHIN = 0.43, 0.41
_HIP_HALF, _HIP_DOWN = 0.09, 0.05  # hip joints relative to the pelvis
_SPINE, _CHEST, _NECK, _HEAD = 0.11, 0.22, 0.16, 0.13
_CLAV_UP, _CLAV_SIDE, _SHOULDER = 0.12, 0.035, 0.15
_UPPER_ARM, _FOREARM, _HAND = 0.29, 0.26, 0.08
_STANCE = 0.09  # half the distance between the ankles in the closed stance


# -------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    """A style's repeating step pattern.

    Attributes:
        cycle: beats before the figure repeats.
        bar: beats per bar the figure counts in.
        per_bar: steps per bar (for documentation and tests).
        steps: ``(beat, foot, stance, side, forward)`` per step: the count as a beat offset from
            the cycle's start (x.5 = the "and" between two beats), the foot (0 left, 1 right)
            and where it lands in the dancer's frame: ``stance`` half-stance widths plus
            ``side`` step lengths to the dancer's left, ``forward`` step lengths ahead.
    """

    cycle: float
    bar: int
    per_bar: float
    steps: tuple[tuple[float, int, float, float, float], ...]


FIGURES: dict[str, Figure] = {
    # box step: L fwd, R side, L close | R back, L side, R close
    "waltz": Figure(6, 3, 3, (
        (0, 0, 1, 0, 1), (1, 1, -1, -0.8, 1), (2, 0, 1, -0.8, 1),
        (3, 1, -1, -0.8, 0), (4, 0, 1, 0, 0), (5, 1, -1, 0, 0),
    )),
    # 1: R side (end of the previous chassé) | 2: L rock fwd, 3: R replace, 4-&-1: L R L to
    # the left | 2: R rock back, 3: L replace, 4-&: R L to the right (1 opens the next cycle)
    "chacha": Figure(8, 4, 5, (
        (0, 1, -1, 0, 0), (1, 0, 1, 0, 1), (2, 1, -1, 0, 0), (3, 0, 1, 0.5, 0),
        (3.5, 1, -0.2, 0.5, 0), (4, 0, 1, 1, 0), (5, 1, -0.2, 0.5, -1), (6, 0, 1, 1, 0),
        (7, 1, -1, 0.5, 0), (7.5, 0, 0.2, 0.5, 0),
    )),
    # S S Q Q S forward (L, R, L fwd, R side, L close), then S S Q Q S back (R, L, R back,
    # L side, R close)
    "tango": Figure(16, 4, 2.5, (
        (0, 0, 1, 0, 1), (2, 1, -1, 0, 2), (4, 0, 1, 0, 3), (5, 1, -1, -0.6, 3),
        (6, 0, 1, -0.6, 3), (8, 1, -1, -0.6, 2), (10, 0, 1, -0.6, 1), (12, 1, -1, -0.6, 0),
        (13, 0, 1, 0, 0), (14, 1, -1, 0, 0),
    )),
    # Q Q S: 2 L fwd, 3 R replace, 4-1 L side | 2 R back, 3 L replace, 4-1 R side
    "rumba": Figure(8, 4, 3, (
        (1, 0, 1, 0, 1), (2, 1, -1, -0.4, 0), (3, 0, 1, 0.4, 0),
        (5, 1, -1, 0, -1), (6, 0, 1, 0.4, 0), (7, 1, -1, -0.4, 0),
    )),
}  # fmt: skip


@dataclass(frozen=True)
class _Style:
    """How a style moves (lengths in metres, angles in radians)."""

    step: float  # step length at full loudness
    lift: float  # how high the free foot lifts
    swing: float  # fraction of the time between steps the free foot is in the air
    crouch: float  # pelvis lowered below the standing height (knee bend)
    rise: float  # rise and fall (waltz)
    commit: float  # share of the weight left on the old foot after a step
    hip: float  # Cuban motion: pelvis pushed out over the standing leg
    roll: float  # Cuban motion: the standing leg's hip lifted
    twist: float  # Cuban motion: the pelvis turned towards the standing leg
    lean: float  # upper body pitched forward (negative: stretched back)
    bend: float  # upper body bent to the dancer's left
    heading: float  # which way the dancer faces (0: the audience; positive: turned left)
    sway: float  # heading swings this much over a figure cycle
    turnout: float  # toes turned out
    staccato: bool  # the body stops on every step instead of flowing through


_STYLES: dict[str, _Style] = {
    "waltz": _Style(0.36, 0.025, 0.85, 0.02, 0.035, 0.3, 0.0, 0.0, 0.0, -0.06, 0.06,
                    0.0, 0.35, 0.12, False),
    "chacha": _Style(0.26, 0.05, 0.75, 0.03, 0.0, 0.2, 0.03, 0.08, 0.12, 0.02, 0.0,
                     0.25, 0.15, 0.3, False),
    "tango": _Style(0.34, 0.03, 0.45, 0.065, 0.0, 0.3, 0.0, 0.0, 0.0, 0.12, 0.0,
                    -0.8, 0.0, 0.06, True),
    "rumba": _Style(0.22, 0.035, 0.6, 0.015, 0.0, 0.1, 0.05, 0.12, 0.18, 0.0, 0.0,
                    0.3, 0.15, 0.3, False),
}  # fmt: skip


def _check_style(style: str) -> None:
    if style not in FIGURES:
        raise ValueError(f"unknown dance style {style!r}; known styles: {list(STYLES)}")


class Step(NamedTuple):
    """One weight transfer: the foot lands, with zero velocity, at ``time``.

    Attributes:
        frame: ``round(time * fps)``, the video frame of the landing.
        foot: ``"left"`` or ``"right"``.
        time: seconds: a beat time of ``score.beats``, or the midpoint between two beats
            (the foot may land up to half a frame earlier, on the frame showing the beat).
        beat: fractional index into the sorted ``score.beats`` (``3.5``: halfway from beat 3
            to beat 4).
    """

    frame: int
    foot: str
    time: float
    beat: float


class _Planned(NamedTuple):
    beat: float
    time: float
    foot: int
    row: int  # index into the figure's steps


def _clean_beats(beats: np.ndarray) -> np.ndarray:
    b = np.asarray(beats, np.float64).ravel()
    return np.unique(b[np.isfinite(b)])


def _beat_period(beats: np.ndarray, tempo: float) -> float:
    if len(beats) > 1:
        return float(np.median(np.diff(beats)))
    return 60.0 / tempo if tempo > 0 else 0.5


def _plan(beats: np.ndarray, figure: Figure) -> list[_Planned]:
    """Every step of the figure repeated over the beats, in time order."""
    n = len(beats)
    out: list[_Planned] = []
    for k in range(int(np.ceil(n / figure.cycle)) + 1):
        for row, (offset, foot, *_) in enumerate(figure.steps):
            q = k * figure.cycle + offset
            if q > n - 1 + 1e-9:
                continue
            i = int(np.floor(q))
            frac = q - i
            t = beats[i] if frac < 1e-9 else beats[i] + frac * (beats[i + 1] - beats[i])
            out.append(_Planned(float(q), float(t), int(foot), row))
    return sorted(out, key=lambda p: p.beat)


def steps(score: Score, style: str, fps: float, num_frames: int) -> list[Step]:
    """The step events of a style over a score's beats, those landing inside the video.

    Args:
        score: its ``beats`` (seconds) place the steps.
        style: ``waltz``, ``chacha``, ``tango`` or ``rumba``.
        fps: video frame rate.
        num_frames: video length; steps landing at frame ``num_frames`` or later are left out.

    Returns:
        the steps in time order (they alternate feet).

    Raises:
        ValueError: an unknown style.
    """
    _check_style(style)
    out = []
    for p in _plan(_clean_beats(score.beats), FIGURES[style]):
        frame = round(p.time * fps)
        if 0 <= frame < num_frames:
            out.append(Step(frame, FOOT_NAMES[p.foot], p.time, p.beat))
    return out


def foot_contact(joints: np.ndarray, scale: float = 1.0, tolerance: float = 0.003) -> np.ndarray:
    """Which feet are planted: flat on the floor and not moving to the next frame.

    Args:
        joints: world joints in metres (``DanceMotion.joints``, or ``Take.pose3d`` plus
            ``DanceMotion.root``).
        scale: the look's body scale (the ankle's height above the floor scales with it).
        tolerance: metres the ankle may sit above its planted height or move in a frame.

    Shape:
        joints (T, 23, 3) → (T, 2) bool, left foot then right foot.
    """
    ankles = np.asarray(joints, np.float64)[:, [J["l_ankle"], J["r_ankle"]]]
    low = np.abs(ankles[..., 1] - _ANKLE_H * scale) <= tolerance
    move = np.zeros(low.shape)
    if len(ankles) > 1:
        move[:-1] = np.linalg.norm(np.diff(ankles, axis=0), axis=-1)
        move[-1] = move[-2]
    return low & (move <= tolerance)


# ------------------------------------------------------------------------------ geometry


def _rot(yaw: np.ndarray, pitch: np.ndarray | float = 0.0,
         roll: np.ndarray | float = 0.0) -> np.ndarray:  # fmt: skip
    """Rotation matrices ``Ry(yaw) @ Rx(pitch) @ Rz(roll)`` mapping the body frame (x: the
    dancer's left, y: up, z: forward) to the world.

    Positive yaw turns left, positive pitch leans forward, positive roll lifts the left side.

    Shape:
        yaw (T,), pitch and roll (T,) or scalars → (T, 3, 3).
    """
    yaw = np.asarray(yaw, np.float64)
    pitch, roll = np.broadcast_to(pitch, yaw.shape), np.broadcast_to(roll, yaw.shape)
    cy, sy, cp, sp, cr, sr = (np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch),
                              np.cos(roll), np.sin(roll))  # fmt: skip
    zero, one = np.zeros_like(yaw), np.ones_like(yaw)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*yaw.shape, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(*yaw.shape, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(*yaw.shape, 3, 3)
    return ry @ rx @ rz


def _apply(rot: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Rotate body-frame offsets: (T, 3, 3) with (3,) or (T, 3) → (T, 3)."""
    return np.einsum("tij,tj->ti", rot, np.broadcast_to(local, (len(rot), 3)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _two_bone(root: np.ndarray, target: np.ndarray, upper: float, lower: float,
              pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Analytic two-bone IK: the middle joint bends towards ``pole``.

    An unreachable target pulls the end in along the line to it.

    Shape:
        root, target, pole (..., 3) → middle joint and end joint (..., 3).
    """
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    reach = np.clip(dist, abs(upper - lower) + 1e-4, (upper + lower) * 0.9995)
    along = (upper**2 - lower**2 + reach**2) / (2 * reach)
    height = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    side = _unit(pole - np.sum(pole * u, axis=-1, keepdims=True) * u)
    return root + u * along + side * height, root + u * reach


def _eased(phase: np.ndarray, keys: Sequence[tuple[float, float]], period: float) -> np.ndarray:
    """A periodic curve through ``(phase, value)`` keys (the first at 0, the last at
    ``period``), eased with a half cosine between keys so it is smooth and rests on each key."""
    kp = np.array([k[0] for k in keys])
    kv = np.array([k[1] for k in keys])
    p = np.mod(phase, period)
    i = np.clip(np.searchsorted(kp, p, side="right") - 1, 0, len(kp) - 2)
    u = np.clip((p - kp[i]) / (kp[i + 1] - kp[i]), 0.0, 1.0)
    return kv[i] + (kv[i + 1] - kv[i]) * (0.5 - 0.5 * np.cos(np.pi * u))


def _spline(times: np.ndarray, values: np.ndarray, t: np.ndarray, flowing: bool) -> np.ndarray:
    """Interpolate keyframes: Catmull-Rom (velocity carried through keys) when ``flowing``,
    else eased to a stop at each key; held before the first key and after the last.

    Shape:
        times (K,), values (K, D), t (T,) → (T, D).
    """
    k = len(times)
    if k == 1:
        return np.repeat(values[:1], len(t), axis=0)
    tangents = np.zeros_like(values)
    if flowing and k > 2:
        tangents[1:-1] = (values[2:] - values[:-2]) / (times[2:] - times[:-2])[:, None]
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, k - 2)
    dt = times[i + 1] - times[i]
    s = np.clip((t - times[i]) / dt, 0.0, 1.0)[:, None]
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return (h00 * values[i] + h10 * dt[:, None] * tangents[i] + h01 * values[i + 1]
            + h11 * dt[:, None] * tangents[i + 1])  # fmt: skip


def _min_jerk(s: np.ndarray) -> np.ndarray:
    """0 → 1 with zero velocity and acceleration at both ends (a reaching movement)."""
    return s**3 * (10 - 15 * s + 6 * s**2)


# ---------------------------------------------------------------------------------- motion


@dataclass(frozen=True)
class _Body:
    """Bone lengths of one look, in metres."""

    scale: float
    thigh: float
    shin: float
    upper_arm: float
    forearm: float
    hand: float
    shoulder: float

    @classmethod
    def of(cls, look: Look | None) -> _Body:
        if look is None:
            return cls(1.0, _THIGH, _SHIN, _UPPER_ARM, _FOREARM, _HAND, _SHOULDER)
        s = look.scale
        return cls(s, _THIGH * s * look.legs, _SHIN * s * look.legs, _UPPER_ARM * s * look.arms,
                   _FOREARM * s * look.arms, _HAND * s * look.arms,
                   _SHOULDER * s * look.shoulders)  # fmt: skip


@dataclass
class DanceMotion:
    """A dancer's motion in world coordinates.

    Attributes:
        joints: (T, 23, 3) float32 metres, :data:`DANCE_JOINTS` order, the floor at y = 0.
        root: (T, 3) float32, the pelvis (``joints[:, 0]``): the dancer's path on the floor.
        head_axes: (T, 3, 3) float32, the head's frame (columns: left, up, forward).
        steps: the step events (all planned ones, including any past the last frame).
        amplitude: (T,) float32 in [0.35, 1], the smoothed loudness the movement scales with.
    """

    joints: np.ndarray
    root: np.ndarray
    head_axes: np.ndarray
    steps: list[Step]
    amplitude: np.ndarray


def _amplitude(loudness: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """Loudness per frame, resampled to ``num_frames``, smoothed over half a second so steps
    that belong together (a box, a chassé) keep one size, mapped to [0.35, 1]."""
    loud = np.nan_to_num(np.asarray(loudness, np.float64).ravel(), nan=0.0)
    if len(loud) == 0:
        loud = np.zeros(max(num_frames, 1))
    if len(loud) != num_frames and num_frames > 0:
        loud = np.interp(np.linspace(0, len(loud) - 1, num_frames), np.arange(len(loud)), loud)
    loud = np.clip(loud[:num_frames], 0.0, 1.0)
    width = max(1, round(0.5 * fps))
    if num_frames > 1 and width > 1:
        padded = np.pad(loud, (width // 2, width - 1 - width // 2), mode="edge")
        loud = np.convolve(padded, np.ones(width) / width, mode="valid")
    return 0.35 + 0.65 * loud


def _beat_phase(t: np.ndarray, beats: np.ndarray, period: float) -> np.ndarray:
    """Fractional beat index at times ``t``, extrapolated at the beat period beyond the ends."""
    if len(beats) == 0:
        return t / period
    phase = np.interp(t, beats, np.arange(len(beats), dtype=np.float64))
    phase = np.where(t < beats[0], (t - beats[0]) / period, phase)
    return np.where(t > beats[-1], len(beats) - 1 + (t - beats[-1]) / period, phase)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _activity(t: np.ndarray, first: float | None, last: float | None,
              period: float) -> np.ndarray:  # fmt: skip
    """1 while the dancer dances, easing in before the first step and out after the last."""
    if first is None or last is None:
        return np.zeros_like(t)
    rise = _smoothstep((t - (first - 2 * period)) / (1.5 * period))
    fall = 1.0 - _smoothstep((t - (last + 0.5 * period)) / (1.5 * period))
    return rise * fall


def _arm_pose(style: str, phase: np.ndarray, amp: np.ndarray,
              act: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Wrist targets relative to each shoulder and elbow poles, in the chest's frame with the
    first coordinate mirrored per side (positive: away from the body), plus the head's yaw.

    The ballroom styles hold a partner's frame (left hand raised, right arm around the
    partner); the Latin styles extend one arm to the side while the other rests at the waist.

    Shape:
        phase, amp, act (T,) → targets (T, 2, 3), poles (T, 2, 3), head yaw (T,).
    """
    n = len(phase)
    cycle = FIGURES[style].cycle
    if style in ("waltz", "tango"):
        if style == "waltz":
            held = np.array([[0.38, 0.08, 0.3], [-0.08, -0.04, 0.3]])
            poles = np.array([[1.0, -0.6, -0.3], [1.0, 0.2, -0.2]])
            breathe = 0.03 * amp * act * np.sin(2 * np.pi * phase / 3)
            head = np.full(n, 0.45)
        else:
            held = np.array([[0.22, 0.04, 0.36], [-0.06, -0.08, 0.3]])
            poles = np.array([[1.0, -0.8, -0.2], [1.0, 0.1, -0.2]])
            breathe = np.zeros(n)
            # staccato head snaps to the right on the quicks of each half
            keys = [(0, 1), (3.8, 1), (4.0, -1), (5.8, -1), (6, 1), (11.8, 1), (12, -1),
                    (13.8, -1), (14, 1), (16, 1)]  # fmt: skip
            snap = _eased(phase, keys, cycle)
            head = 0.1 * (1 - act) + act * (0.05 + 0.45 * snap)  # left, snapping right
        targets = np.broadcast_to(held, (n, 2, 3)).copy()
        targets[:, :, 1] += breathe[:, None]
        return targets, np.broadcast_to(poles, (n, 2, 3)).copy(), head
    if style == "chacha":
        rest, out = np.array([0.1, -0.3, 0.22]), np.array([0.58, 0.04, 0.05])
        keys_r = [(0, 0), (1, 0), (2, 1), (4.5, 1), (5.5, 0), (8, 0)]
    else:
        rest, out = np.array([0.15, -0.32, 0.12]), np.array([0.5, 0.24, 0.14])
        keys_r = [(0, 0), (2.5, 0), (3.5, 1), (5, 1), (6, 0), (8, 0)]
    ext_r = _eased(phase, keys_r, cycle) * amp * act
    ext_l = _eased(phase - cycle / 2, keys_r, cycle) * amp * act
    ext = np.stack([ext_l, ext_r], axis=1)[..., None]  # (T, 2, 1)
    targets = rest + ext * (out - rest)
    # a small lift and fall of the arms with every beat
    targets[:, :, 1] += (0.025 * amp * act * np.sin(np.pi * phase) ** 2)[:, None]
    poles = np.broadcast_to(np.array([1.0, -1.0, -0.3]), (n, 2, 3)).copy()
    return targets, poles, 0.35 * (ext_l - ext_r)


def dance_motion(score: Score, loudness: np.ndarray, fps: float, num_frames: int, style: str,
                 look: Look | None = None) -> DanceMotion:  # fmt: skip
    """The dancer's world-space motion: what :meth:`DanceRig.render` draws.

    Args:
        score: the beats place the steps.
        loudness: per-frame loudness in [0, 1] (resampled when its length differs).
        fps: frame rate; frame t is time ``t / fps``.
        num_frames: frames to make.
        style: ``waltz``, ``chacha``, ``tango`` or ``rumba``.
        look: body proportions (nominal ones when ``None``).

    Raises:
        ValueError: an unknown style or a non-positive fps.
    """
    _check_style(style)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    fig, st, body = FIGURES[style], _STYLES[style], _Body.of(look)
    sc = body.scale
    n = int(num_frames)
    t = np.arange(n, dtype=np.float64) / fps
    beats = _clean_beats(score.beats)
    period = _beat_period(beats, score.tempo)
    plan = [p for p in _plan(beats, fig) if p.time <= (n + 1) / fps + 2 * period]
    amp = _amplitude(loudness, n, fps)
    first = plan[0].time if plan else None
    last = plan[-1].time if plan else None
    act = _activity(t, first, last, period)
    phase = _beat_phase(t, beats, period)
    heading = st.heading + st.sway * np.sin(2 * np.pi * phase / fig.cycle) * act

    def amp_at(time: float) -> float:
        return float(amp[min(max(round(time * fps), 0), n - 1)]) if n else 1.0

    def world(h: float, s: float, f: float) -> np.ndarray:
        """Body-frame (left, forward) → world (x, z) for heading h."""
        return np.array([s * np.cos(h) + f * np.sin(h), -s * np.sin(h) + f * np.cos(h)])

    # --- the feet: planted positions and the swings between them
    rows = np.array([r[2:] for r in fig.steps], np.float64)
    centre = rows[:, 1:].mean(axis=0)  # the figure is centred on the origin
    h0 = st.heading
    pos = [world(h0, _STANCE * sc, 0.0), world(h0, -_STANCE * sc, 0.0)]
    planted: list[list[tuple[float, float, np.ndarray, float, float]]] = [[], []]
    keys_t = [(first if first is not None else 0.0) - period]
    keys_v = [np.zeros(4)]  # support point x, z; pelvis roll; pelvis twist
    prev = None
    for p in plan:
        a = st.step * sc * amp_at(p.time)
        hk = st.heading + st.sway * np.sin(2 * np.pi * p.beat / fig.cycle)
        stance, side, fwd = rows[p.row]
        target = world(hk, stance * _STANCE * sc + (side - centre[0]) * a, (fwd - centre[1]) * a)
        window = p.time - prev if prev is not None else period
        lift = st.lift * sc * (0.6 + 0.4 * amp_at(p.time))
        sign = 1.0 if p.foot == 0 else -1.0
        # land on the beat, or up to half a frame before it when the frame showing the beat
        # comes first, so that frame always shows the foot planted
        land = min(p.time, round(p.time * fps) / fps)
        planted[p.foot].append((land - st.swing * window, land, target,
                                hk + sign * st.turnout, lift))  # fmt: skip
        pos[p.foot] = target
        support = (1 - st.commit) * target + st.commit * pos[1 - p.foot]
        level = amp_at(p.time)
        support = support + world(hk, sign * st.hip * sc * level, 0.0)
        key = np.array([*support, sign * st.roll * level, sign * st.twist * level])
        # the body waits for the foot to lift (staccato) or starts moving just before it
        # (flowing): it never leaves its support before the step is under way
        lift_off = land - st.swing * window
        if lift_off > keys_t[-1] + 1e-3:
            lead = 0.0 if st.staccato else 0.15
            keys_t.append(lift_off)
            keys_v.append(keys_v[-1] + lead * (key - keys_v[-1]))
        keys_t.append(land)
        keys_v.append(key)
        prev = p.time

    feet = np.zeros((n, 2, 3))
    foot_yaw = np.zeros((n, 2))
    for side in (0, 1):
        events = planted[side]
        start_pos = world(h0, (1 if side == 0 else -1) * _STANCE * sc, 0.0)
        start_yaw = h0 + (st.turnout if side == 0 else -st.turnout)
        spots = np.array([start_pos] + [e[2] for e in events])  # (E + 1, 2)
        yaws = np.array([start_yaw] + [e[3] for e in events])
        never = 1e18  # after the last landing the foot stays where it is
        lands = np.array([e[1] for e in events] + [never])
        lifts_at = np.array([e[0] for e in events] + [never])
        heights = np.array([e[4] for e in events] + [0.0])
        j = np.searchsorted(lands[:-1], t, side="right")  # landings so far
        span = np.maximum(lands[j] - lifts_at[j], 1e-9)
        s = np.clip((t - lifts_at[j]) / span, 0.0, 1.0)
        nxt = np.minimum(j + 1, len(spots) - 1)
        m = _min_jerk(s)[:, None]
        feet[:, side, [0, 2]] = spots[j] + (spots[nxt] - spots[j]) * m
        feet[:, side, 1] = _ANKLE_H * sc + heights[j] * np.sin(np.pi * s) ** 2
        foot_yaw[:, side] = yaws[j] + (yaws[nxt] - yaws[j]) * m[:, 0]

    # --- the pelvis: over the supporting foot, hips rolled and twisted by the Cuban motion
    keys = _spline(np.array(keys_t), np.array(keys_v), t, flowing=not st.staccato)
    sway = 0.012 * sc * np.sin(2 * np.pi * 0.25 * t) * (1 - 0.6 * act)
    root = np.zeros((n, 3))
    root[:, 0] = keys[:, 0] + sway * np.cos(heading)
    root[:, 2] = keys[:, 1] - sway * np.sin(heading)
    roll, twist = keys[:, 2] * act, keys[:, 3] * act
    if style == "waltz":  # rise and fall: down on 1, rising through 2, up on 3, lowering
        rf = [(0, -1), (0.6, -0.7), (1.2, 0.3), (2.0, 1.0), (2.6, 1.0), (3, -1)]
        rise = _eased(phase, rf, 3) * st.rise * sc * amp * act
    else:
        rise = np.zeros(n)
    leg = body.thigh + body.shin
    root[:, 1] = _ANKLE_H * sc + leg + (_HIP_DOWN - st.crouch) * sc + rise
    pelvis_rot = _rot(heading + twist, 0.0, roll)
    hips = np.stack([_apply(pelvis_rot, np.array([sgn * _HIP_HALF, -_HIP_DOWN, 0.0]) * sc)
                     for sgn in (1.0, -1.0)], axis=1)  # fmt: skip
    # lower the pelvis where a leg would otherwise not reach its planted foot
    horiz = np.linalg.norm((root[:, None, [0, 2]] + hips[..., [0, 2]]) - feet[..., [0, 2]], axis=-1)
    reach = np.sqrt(np.maximum((0.99 * leg) ** 2 - horiz**2, 0.0))
    root[:, 1] = np.minimum(root[:, 1], np.min(feet[..., 1] + reach - hips[..., 1], axis=1))
    hips = hips + root[:, None]
    knee_pole = np.stack([np.sin(foot_yaw), np.zeros_like(foot_yaw), np.cos(foot_yaw)], -1)
    knees, ankles = _two_bone(hips, feet, body.thigh, body.shin, knee_pole)
    toe_drop = np.full_like(foot_yaw, (_TOE_H - _ANKLE_H) * sc)
    toes = ankles + np.stack([_FOOT * sc * np.sin(foot_yaw), toe_drop,
                              _FOOT * sc * np.cos(foot_yaw)], -1)  # fmt: skip

    # --- the upper body: counter-rotated against the hips, leaning and bent per style
    spine = root + _apply(_rot(heading + 0.5 * twist, 0.5 * st.lean, 0.6 * roll),
                          np.array([0.0, _SPINE * sc, 0.0]))  # fmt: skip
    chest_rot = _rot(heading - 0.3 * twist, st.lean * (0.5 + 0.5 * act),
                     -st.bend * act - 0.4 * roll)  # fmt: skip
    chest = spine + _apply(chest_rot, np.array([0.0, _CHEST * sc, 0.0]))
    neck = chest + _apply(chest_rot, np.array([0.0, _NECK * sc, 0.0]))
    arm_targets, arm_poles, head_yaw = _arm_pose(style, phase, amp, act)
    head_rot = _rot(heading - 0.3 * twist + head_yaw, -0.05 - 0.5 * st.lean,
                    -0.8 * st.bend * act)  # fmt: skip
    head = neck + _apply(head_rot, np.array([0.0, _HEAD * sc, 0.02 * sc]))
    # the targets are set for the nominal arm: scale them with this look's arms
    arm_scale = (body.upper_arm + body.forearm) / (_UPPER_ARM + _FOREARM)
    arms = []
    for k, sgn in enumerate((1.0, -1.0)):
        mirror = np.array([sgn, 1.0, 1.0])
        clav = chest + _apply(chest_rot, np.array([sgn * _CLAV_SIDE, _CLAV_UP, 0.0]) * sc)
        shoulder = clav + _apply(chest_rot, np.array([sgn * body.shoulder, 0.0, -0.01 * sc]))
        target = shoulder + _apply(chest_rot, arm_targets[:, k] * mirror * arm_scale)
        pole = _apply(chest_rot, arm_poles[:, k] * mirror)
        elbow, wrist = _two_bone(shoulder, target, body.upper_arm, body.forearm, pole)
        hand = wrist + _unit(wrist - elbow) * body.hand
        arms.append((clav, shoulder, elbow, wrist, hand))

    joints = np.stack([root, spine, chest, neck, head, *arms[0], *arms[1],
                       hips[:, 0], knees[:, 0], ankles[:, 0], toes[:, 0],
                       hips[:, 1], knees[:, 1], ankles[:, 1], toes[:, 1]], axis=1)  # fmt: skip
    step_list = [Step(round(p.time * fps), FOOT_NAMES[p.foot], p.time, p.beat) for p in plan]
    return DanceMotion(joints.astype(np.float32), root.astype(np.float32),
                       head_rot.astype(np.float32), step_list, amp.astype(np.float32))  # fmt: skip


# ---------------------------------------------------------------------------------- camera

_CAM_AZIMUTH = np.radians(30.0)  # the camera stands in front of the dancer and to its left
_CAM_DISTANCE, _CAM_HEIGHT, _CAM_AIM = 4.6, 1.3, 0.8
_FOCAL = 1.9  # focal length in image sides: about 2.4 m of height framed at the dancer
_WALL = 3.5  # the backdrop stands this far behind the dancer


@dataclass(frozen=True)
class _Camera:
    eye: np.ndarray
    axes: np.ndarray  # rows: right, up, forward
    focal: float
    centre: np.ndarray

    def view(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (..., 2) and depth (...) of world points (..., 3)."""
        cam = (np.asarray(points, np.float64) - self.eye) @ self.axes.T
        depth = np.maximum(cam[..., 2], 1e-3)
        xy = np.stack([cam[..., 0], -cam[..., 1]], -1) * (self.focal / depth)[..., None]
        return xy + self.centre, depth


@functools.lru_cache(maxsize=32)
def _camera(look: Look, size: int) -> _Camera:
    eye = np.array([_CAM_DISTANCE * np.sin(_CAM_AZIMUTH), _CAM_HEIGHT,
                    _CAM_DISTANCE * np.cos(_CAM_AZIMUTH)])  # fmt: skip
    forward = _unit(np.array([0.0, _CAM_AIM, 0.0]) - eye)
    right = _unit(np.cross(forward, [0.0, 1.0, 0.0]))
    up = np.cross(right, forward)
    centre = size / 2 + np.array(look.shift) * size
    return _Camera(eye, np.stack([right, up, forward]), _FOCAL * size * look.zoom, centre)


def project(points3d: np.ndarray, look: Look, size: int) -> np.ndarray:
    """Project world points through the rig's perspective camera.

    Args:
        points3d: world coordinates in metres (``DanceMotion.joints``, not the root-centred
            ``Take.pose3d``).
        look: its zoom and shift frame the camera.
        size: image side in pixels.

    Shape:
        points3d (..., 3) → (..., 2) pixel x, y (float; the image spans [0, size)).
    """
    return _camera(look, size).view(points3d)[0]


# -------------------------------------------------------------------------------- drawing

# What is drawn, back to front by depth: (joint a, joint b, width in metres, colour part).
# Index 23 is an extra point: the hair's centre, a little behind and above the head's.
_HAIR = NUM_JOINTS
_PARTS: tuple[tuple[int, int, float, str], ...] = (
    (J["l_hip"], J["r_hip"], 0.17, "bottom"),
    (J["pelvis"], J["spine"], 0.29, "bottom"),
    (J["spine"], J["chest"], 0.29, "top"),
    (J["l_shoulder"], J["r_shoulder"], 0.12, "top"),
    (J["neck"], J["head"], 0.085, "skin"),
    (_HAIR, _HAIR, 0.215, "hair"),
    (J["head"], J["head"], 0.2, "skin"),
    (J["l_shoulder"], J["l_elbow"], 0.09, "top"),
    (J["r_shoulder"], J["r_elbow"], 0.09, "top"),
    (J["l_elbow"], J["l_wrist"], 0.07, "skin"),
    (J["r_elbow"], J["r_wrist"], 0.07, "skin"),
    (J["l_wrist"], J["l_hand"], 0.065, "skin"),
    (J["r_wrist"], J["r_hand"], 0.065, "skin"),
    (J["l_hip"], J["l_knee"], 0.145, "bottom"),
    (J["r_hip"], J["r_knee"], 0.145, "bottom"),
    (J["l_knee"], J["l_ankle"], 0.11, "bottom"),
    (J["r_knee"], J["r_ankle"], 0.11, "bottom"),
    (J["l_ankle"], J["l_toe"], 0.08, "shoes"),
    (J["r_ankle"], J["r_toe"], 0.08, "shoes"),
)
# Draw-order nudges (metres of depth): the torso before the limbs that overlap it at equal
# depth, the head after the neck and hair.
_BIAS = {0: 0.06, 1: 0.05, 2: 0.04, 3: 0.02, 4: 0.05, 6: -0.02}


@functools.lru_cache(maxsize=32)
def _backdrop(look: Look, size: int) -> np.ndarray:
    """The empty stage: a parquet floor in perspective up to a wall, 2×2 supersampled.

    Shape:
        → (size, size, 3) float32.
    """
    cam = _camera(look, size)
    sub = (np.arange(2 * size) + 0.5) / 2
    ys, xs = np.meshgrid(sub, sub, indexing="ij")
    right, up, forward = cam.axes
    rays = (forward + ((xs - cam.centre[0]) / cam.focal)[..., None] * right
            - ((ys - cam.centre[1]) / cam.focal)[..., None] * up)  # fmt: skip
    floor_col = np.array(look.floor, np.float64)
    wall_col = np.array(look.background, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.where(rays[..., 1] < 0, -cam.eye[1] / rays[..., 1], np.inf)
    hit = cam.eye + rays * np.where(np.isfinite(dist), dist, 0.0)[..., None]
    # the wall is a plane facing the camera, _WALL behind the origin
    flat = _unit(np.array([forward[0], 0.0, forward[2]]))
    behind = hit[..., [0, 2]] @ flat[[0, 2]]
    on_floor = np.isfinite(dist) & (behind < _WALL)
    # planks 0.2 m wide running away from the camera, their ends staggered every 1.2 m
    across = hit[..., [0, 2]] @ np.array([flat[2], -flat[0]])
    plank = np.floor(across / 0.2)
    along = behind + 0.37 * plank
    seam = (np.abs(across / 0.2 - np.round(across / 0.2)) < 0.04) | (
        np.abs(along / 1.2 - np.round(along / 1.2)) < 0.01
    )
    tone = 1.0 + 0.05 * np.sin(plank * 2.3) - 0.12 * seam
    fade = np.clip(1.0 - np.abs(behind) / 12.0, 0.5, 1.0)  # far boards lose contrast
    floor = floor_col * (1.0 + (tone - 1.0) * fade)[..., None]
    image = np.where(on_floor[..., None], floor, wall_col)
    image = image.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))
    return np.clip(image, 0, 255).astype(np.float32)


def _colors(look: Look) -> dict[str, np.ndarray]:
    shoes = np.array(look.bottom, np.float64) * 0.35 + 10
    return {"top": np.array(look.top, np.float64), "bottom": np.array(look.bottom, np.float64),
            "skin": np.array(look.skin, np.float64), "hair": np.array(look.hair, np.float64),
            "shoes": shoes}  # fmt: skip


def _draw(joints: np.ndarray, head_axes: np.ndarray, look: Look,
          size: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Render frames and masks: the stage, a soft shadow under the feet, the body as depth-
    sorted capsules (parts further from the camera than the pelvis slightly darker)."""
    n = len(joints)
    cam = _camera(look, size)
    sc = look.scale
    hair = joints[:, J["head"]] + np.einsum("tij,j->ti", head_axes, [0.0, 0.035, -0.03]) * sc
    points3d = np.concatenate([joints, hair[:, None]], axis=1)
    pix, depth = cam.view(points3d)
    a = np.array([p[0] for p in _PARTS])
    b = np.array([p[1] for p in _PARTS])
    mid_depth = 0.5 * (depth[:, a] + depth[:, b])
    widths = np.array([p[2] for p in _PARTS]) * sc * cam.focal / mid_depth
    order = np.argsort(-(mid_depth + np.array([_BIAS.get(i, 0.0) for i in range(len(_PARTS))])),
                       axis=1, kind="stable")  # fmt: skip
    palette = _colors(look)
    base = np.array([palette[p[3]] for p in _PARTS])
    shade = 1.0 - 0.18 * np.clip((mid_depth - depth[:, :1]) / 0.25, -0.5, 1.0)
    colors = base[None] * shade[..., None]
    edges = list(zip(a.tolist(), b.tolist(), strict=True))
    floor = np.array(look.floor, np.float32)
    ankles = joints[:, [J["l_ankle"], J["r_ankle"]]].astype(np.float64)
    ankles[..., 1] = 0.0
    ground, ground_depth = cam.view(ankles)
    shadow_w = 0.2 * sc * cam.focal / ground_depth.mean(axis=1)
    bg = _backdrop(look, size)
    frames = np.empty((n, size, size, 3), np.uint8)
    mask = np.empty((n, size, size), np.uint8)
    visible = np.ones(points3d.shape[1], bool)
    for i in range(n):
        canvas = bg.copy()
        draw_segments(
            canvas, ground[i], [(0, 1)], [(floor * 0.7).tolist()], [shadow_w[i]], visible[:2]
        )
        cover = np.zeros((size, size), np.float32)
        idx = order[i]
        draw_segments(canvas, pix[i], [edges[k] for k in idx], colors[i, idx], widths[i, idx],
                      visible, cover)  # fmt: skip
        np.add(canvas, 0.5, out=canvas)
        np.clip(canvas, 0, 255, out=canvas)
        frames[i] = canvas
        mask[i] = cover >= 0.5
    return frames, mask


# ------------------------------------------------------------------------------ keypoints

# BODY_25 slot → dance joint, for the slots with a direct counterpart
_BODY25_FROM_JOINT = {
    1: J["neck"], 2: J["r_shoulder"], 3: J["r_elbow"], 4: J["r_wrist"], 5: J["l_shoulder"],
    6: J["l_elbow"], 7: J["l_wrist"], 9: J["r_hip"], 10: J["r_knee"], 11: J["r_ankle"],
    12: J["l_hip"], 13: J["l_knee"], 14: J["l_ankle"],
}  # fmt: skip
# Points that the torso can hide: everything on the limbs
_OCCLUDABLE = (2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23, 24)


def _keypoints(joints: np.ndarray, head_axes: np.ndarray, look: Look, size: int) -> np.ndarray:
    """The 67 OpenPose points: body joints mapped to their BODY_25 slots, face and foot points
    placed from the head and feet, a simple open hand on each wrist.

    Confidence is 0 off-frame, for face points turned away from the camera, and for limb
    points behind the torso; 1 otherwise (0.8 for the hands' fingers).

    Shape:
        joints (T, 23, 3), head_axes (T, 3, 3) → (T, 67, 3) float32.
    """
    n = len(joints)
    sc = look.scale
    cam = _camera(look, size)
    pts = np.zeros((n, NUM_KEYPOINTS, 3))
    conf = np.ones((n, NUM_KEYPOINTS))
    for slot, joint in _BODY25_FROM_JOINT.items():
        pts[:, slot] = joints[:, joint]
    pts[:, 8] = 0.5 * (joints[:, J["l_hip"]] + joints[:, J["r_hip"]])
    head = joints[:, J["head"]]
    left, up, fwd = (head_axes[..., k] for k in range(3))
    to_cam = _unit(cam.eye - head)
    facing = np.sum(fwd * to_cam, -1)
    pts[:, 0] = head + (0.1 * fwd - 0.01 * up) * sc
    conf[:, 0] = facing > 0.1
    for slot, sgn in ((15, -1.0), (16, 1.0)):  # r_eye, l_eye
        pts[:, slot] = head + (0.085 * fwd + 0.03 * up + sgn * 0.033 * left) * sc
        conf[:, slot] = (facing > 0.1) & (np.sum(sgn * left * to_cam, -1) > -0.6)
    for slot, sgn in ((17, -1.0), (18, 1.0)):  # r_ear, l_ear
        pts[:, slot] = head + (sgn * 0.075 * left) * sc
        conf[:, slot] = np.sum(sgn * left * to_cam, -1) > -0.1
    for (big, small, heel), (ankle, toe), sgn in (
        ((19, 20, 21), (J["l_ankle"], J["l_toe"]), 1.0),
        ((22, 23, 24), (J["r_ankle"], J["r_toe"]), -1.0),
    ):
        along = joints[:, toe] - joints[:, ankle]
        along[:, 1] = 0.0
        f = _unit(along)
        outward = sgn * np.stack([f[:, 2], np.zeros(n), -f[:, 0]], -1)  # the foot's outer side
        pts[:, big] = joints[:, toe] + (0.04 * f - 0.025 * outward) * sc
        pts[:, small] = joints[:, toe] + (0.01 * f + 0.035 * outward) * sc
        pts[:, heel] = joints[:, ankle] - 0.06 * f * sc
        pts[:, heel, 1] = 0.03 * sc
    # hands: wrist, then thumb, index, middle, ring, little (4 points each): a flat open hand
    # along the forearm, the thumb on the side the chest faces (as on a relaxed arm)
    chest_fwd = np.cross(joints[:, J["l_shoulder"]] - joints[:, J["r_shoulder"]],
                         joints[:, J["neck"]] - joints[:, J["spine"]])  # fmt: skip
    for offset, wrist_j, hand_j in (
        (LEFT_HAND_OFFSET, J["l_wrist"], J["l_hand"]),
        (RIGHT_HAND_OFFSET, J["r_wrist"], J["r_hand"]),
    ):
        wrist = joints[:, wrist_j]
        d = _unit(joints[:, hand_j] - wrist)
        # the chest's forward direction across the hand (its up when the hand points forward)
        across = chest_fwd - np.sum(chest_fwd * d, -1, keepdims=True) * d
        across = np.where(np.linalg.norm(across, axis=-1, keepdims=True) > 1e-3, across, up)
        across = _unit(across - np.sum(across * d, -1, keepdims=True) * d)
        pts[:, offset] = wrist
        for finger, spread in enumerate((0.035, 0.022, 0.0, -0.018, -0.034)):
            length = (0.06, 0.075, 0.085, 0.08, 0.065)[finger] * sc
            if finger == 0:  # the thumb starts near the wrist and points out to the side
                base = wrist + (0.03 * d + 0.03 * across) * sc
                direction = _unit(d + 0.9 * across)
            else:  # fingers start at the knuckles, fanned slightly
                base = wrist + (0.09 * d + spread * across) * sc
                direction = _unit(d + 2.0 * spread * across)
            for k in range(4):
                pts[:, offset + 1 + 4 * finger + k] = base + direction * length * k / 3
        conf[:, offset : offset + 21] = 0.8
        conf[:, offset] = 1.0

    pix, depth = cam.view(pts)
    # limb points behind the torso (pelvis to neck) are hidden where the torso covers them
    torso, torso_depth = cam.view(joints[:, [J["pelvis"], J["neck"]]])
    seg = torso[:, 1] - torso[:, 0]
    rel = pix[:, _OCCLUDABLE] - torso[:, :1]
    u = np.clip(np.sum(rel * seg[:, None], -1) / np.maximum(np.sum(seg * seg, -1), 1e-9)[:, None],
                0.0, 1.0)  # fmt: skip
    near = np.linalg.norm(rel - u[..., None] * seg[:, None], axis=-1)
    axis_depth = (1 - u) * torso_depth[:, :1] + u * torso_depth[:, 1:]
    radius = 0.12 * sc * cam.focal / axis_depth
    hidden = (near < radius) & (depth[:, _OCCLUDABLE] > axis_depth + 0.06 * sc)
    conf[:, _OCCLUDABLE] *= ~hidden
    xy = pix / size
    inside = np.all((xy >= 0) & (xy <= 1), axis=-1)
    conf *= inside
    out = np.concatenate([np.clip(xy, 0, 1), conf[..., None]], -1)
    return out.astype(np.float32)


# -------------------------------------------------------------------------------------- rig


class DanceRig:
    """A ballroom dancer (waltz, cha-cha, tango, rumba) whose steps land on the beats.

    ``render`` returns frames, masks, OpenPose keypoints and ``pose3d``: the 23 joints of
    :data:`DANCE_JOINTS` in metres, root-centred (the pelvis subtracted each frame; the path on
    the floor is ``dance_motion(...).root``).
    """

    name = "dance"

    def motion(self, score: Score, loudness: np.ndarray, fps: float, num_frames: int,
               style: str, look: Look | None = None) -> DanceMotion:  # fmt: skip
        """The world-space motion; see :func:`dance_motion`."""
        return dance_motion(score, loudness, fps, num_frames, style, look)

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
        """Dance ``num_frames`` frames of ``style`` to the score at ``fps``.

        Args:
            score: the beats place the steps.
            loudness: per-frame loudness in [0, 1]: step length, lift and arm styling follow it.
            look: the dancer's colours, proportions and camera framing.
            size: image side (64..256 are the sizes it is made for).
            fps: frame rate.
            num_frames: frames to render.
            style: ``waltz``, ``chacha``, ``tango`` or ``rumba``.

        Shape:
            frames (T, size, size, 3) uint8, mask (T, size, size) uint8, keypoints (T, 67, 3)
            float32, pose3d (T, 23, 3) float32.

        Raises:
            ValueError: an unknown style (``"none"`` included) or a non-positive fps.
        """
        m = dance_motion(score, loudness, fps, num_frames, style, look)
        frames, mask = _draw(m.joints, m.head_axes, look, size)
        keypoints = _keypoints(m.joints, m.head_axes, look, size)
        pose3d = (m.joints - m.root[:, None]).astype(np.float32)
        return Take(frames=frames, mask=mask, keypoints=keypoints, pose3d=pose3d)
