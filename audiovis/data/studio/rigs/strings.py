"""Bowed strings: a seated cellist and a standing violinist.

Motion rules (:func:`string_motion`), deterministic in the score and the loudness:

* the left hand's place along the neck follows the pitch of the sounding note, linearly over
  the instrument's range (higher → closer to the bridge), settling within about two frames;
  in rests it drifts slowly back to a rest place;
* the bow changes direction at every onset (down-bow on the first note) and moves at a speed
  proportional to the frame's loudness; a stroke that would run off the bow's end is slowed
  as a whole, the way a player divides the bow, so within a note speed stays ∝ loudness;
* the bow tilts with the string the pitch is played on (strings a fifth apart);
* the torso and head sway with a sinusoid at zero phase on every beat.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import numpy as np

from audiovis.data.studio.rigs.body import (
    L_ELBOW,
    L_SHOULDER,
    PART_POINTS,
    R_SHOULDER,
    Body,
    Canvas,
    FigureRig,
    Frame,
    Hand,
    Scene,
    Targets,
    alternate,
    beat_phase,
    direction,
    fit_loudness,
    follow,
    legs,
    note_track,
    reach,
    rotate,
    sway,
    upper_body,
)
from audiovis.data.studio.score import RANGE, Score

OPEN_STRINGS = {"cello": (36, 43, 50, 57), "violin": (55, 62, 69, 76)}
BOW_GAIN = 0.8  # bow lengths per second at full loudness
REST_HAND = 0.25  # where the left hand waits in rests, along the neck
REST_BOW = 0.5  # the bow's contact point the arm drifts back to in rests

WOOD = {"cello": (150.0, 72.0, 32.0), "violin": (178.0, 92.0, 36.0)}
EDGE = (78.0, 36.0, 16.0)
EBONY = (30.0, 24.0, 22.0)
STRING = (178.0, 172.0, 160.0)  # thin: muted, or they read as a white stripe
BRIDGE = (228.0, 198.0, 142.0)
STICK = (72.0, 42.0, 24.0)
HAIR = (238.0, 234.0, 218.0)
METAL = (160.0, 160.0, 165.0)


def bow_travel(
    onset: np.ndarray,
    active: np.ndarray,
    loudness: np.ndarray,
    fps: float,
    gain: float = BOW_GAIN,
    rest: float = REST_BOW,
    relax_seconds: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """The bow's contact point along the bow, stroke by stroke.

    Each stroke runs from an onset to the next. While its note sounds the bow moves in the
    stroke's direction (:func:`alternate`) by ``gain * loudness / fps`` per frame, scaled down
    for the whole stroke if it would otherwise leave [0, 1]; after the note ends it drifts
    back to ``rest``.

    Returns:
        position (T,) in [0, 1] (0: the frog is at the string, 1: the tip), and speed (T,) in
        bow lengths per second (0 in rests).
    """
    n = len(onset)
    position, speed = np.empty(n), np.zeros(n)
    heading = alternate(onset)
    keep = np.exp(-1.0 / max(relax_seconds * fps, 1e-6))
    value = rest
    bounds = [0, *np.flatnonzero(onset).tolist(), n]
    for a, b in itertools.pairwise(bounds):
        if a == b:
            continue
        quiet = np.flatnonzero(~active[a:b])
        m = int(quiet[0]) if len(quiet) else b - a  # the stroke's sounding frames come first
        if m:
            step = gain * loudness[a : a + m] / fps
            room = (1.0 - value) if heading[a] > 0 else value
            total = float(step.sum())
            if total > 0.98 * room:
                step = step * (0.98 * room / total)
            position[a : a + m] = value + heading[a] * np.cumsum(step)
            speed[a : a + m] = step * fps
            value = float(position[a + m - 1])
        if m < b - a:
            steps = np.arange(1, b - a - m + 1)
            position[a + m : b] = rest + (value - rest) * keep**steps
            value = float(position[b - 1])
    return np.clip(position, 0.0, 1.0), speed


def string_motion(
    score: Score, loudness: np.ndarray, fps: float, num_frames: int, instrument: str
) -> dict[str, np.ndarray]:
    """The motion parameters of a bowed-string player, per frame.

    Args:
        score: the notes played.
        loudness: the audio's loudness per frame in [0, 1].
        fps: frames per second; frame t is time ``t / fps``.
        num_frames: T.
        instrument: ``cello`` or ``violin`` (its range and open strings).

    Returns:
        ``pitch`` (T,) sounding MIDI pitch, NaN in rests; ``active`` (T,) bool; ``onset`` (T,)
        bool; ``hand_position`` (T,) in [0, 1], the left hand along the neck (0: the nut,
        1: towards the bridge), rising with pitch; ``bow_direction`` (T,) ±1 (+1 down-bow:
        the hand moves away from the string); ``bow_position`` (T,) in [0, 1], the contact
        point from frog to tip; ``bow_speed`` (T,) bow lengths per second; ``string`` (T,)
        0..3 (lowest to highest), smoothed; ``beat_phase`` (T,) in [0, 1); ``sway`` (T,)
        in [-1, 1].
    """
    track = note_track(score, fps, num_frames)
    loud = fit_loudness(loudness, num_frames)
    lo, hi = RANGE[instrument]
    pitch = np.nan_to_num(track.pitch, nan=lo)
    target = np.clip((pitch - lo) / (hi - lo), 0.0, 1.0)
    opened = np.asarray(OPEN_STRINGS[instrument], np.float64)
    string = np.clip(np.searchsorted(opened, pitch, side="right") - 1, 0, 3).astype(np.float64)
    position, speed = bow_travel(track.onset, track.active, loud, fps)
    phase = beat_phase(score, fps, num_frames)
    return {
        "pitch": track.pitch,
        "active": track.active,
        "onset": track.onset,
        "hand_position": follow(target, track.active, REST_HAND, fps),
        "bow_direction": alternate(track.onset),
        "bow_position": position,
        "bow_speed": speed,
        "string": follow(string, track.active, 1.5, fps),
        "beat_phase": phase,
        "sway": sway(phase),
    }


def _bow(canvas: Canvas, bow: np.ndarray, ppu: float) -> None:
    """The bow: a dark stick with pale hair beside it, frog at ``bow[0]``, tip at ``bow[1]``."""
    along = bow[1] - bow[0]
    normal = np.array([along[1], -along[0]]) / max(float(np.hypot(*along)), 1e-6)
    gap = 0.006 * ppu * normal
    canvas.capsules(bow[0] + gap, bow[1] + 0.4 * gap, max(0.006 * ppu, 0.6), HAIR, False)
    canvas.capsules(bow[0] - 0.2 * gap, bow[1], max(0.007 * ppu, 0.7), STICK, False)
    canvas.capsules(bow[0], bow[0] - 2.0 * gap, max(0.014 * ppu, 0.9), EBONY, False)  # the frog


class CelloRig(FigureRig):
    """A seated cellist seen from the front: the cello stands between the knees, its scroll
    beside the head; the bow crosses the strings horizontally below the fingerboard.

    The left hand's place on the fingerboard follows pitch, the bow reverses at every onset
    with speed ∝ loudness, the torso sways on the beat (see :func:`string_motion`).
    """

    name = "cello"
    origin: ClassVar[tuple[float, float]] = (0.5, 0.6)
    unit: ClassVar[float] = 1.12
    horizon: ClassVar[float] = 0.12
    seated: ClassVar[bool] = True
    layers: ClassVar[tuple[str, ...]] = (
        "legs",
        "torso",
        "head",
        "cello",
        "bow",
        "r_arm",
        "r_hand",
        "l_arm",
        "l_hand",
    )
    rigid: ClassVar[frozenset[str]] = frozenset({"cello"})
    behind: ClassVar[tuple[int, ...]] = (
        PART_POINTS["legs"] + PART_POINTS["torso"] + PART_POINTS["head"]
    )

    # the cello in its own axes: from the endpin's tip on the floor, leaning right
    FLOOR: ClassVar[tuple[float, float]] = (-0.03, 0.215)
    LEAN: ClassVar[float] = 0.17
    NUT, NECK_LOW = 0.53, 0.28  # the left hand's range along the axis
    CONTACT = 0.225  # where the bow meets the strings
    BOW, BOW_NEAR, BOW_FAR = 0.3, 0.05, 0.21  # bow length; frog-to-string distance range

    def motion(
        self, score: Score, loudness: np.ndarray, fps: float, num_frames: int
    ) -> dict[str, np.ndarray]:
        """Per-frame motion parameters: see :func:`string_motion`."""
        return string_motion(score, loudness, fps, num_frames, "cello")

    def _axis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = np.array([np.sin(self.LEAN), -np.cos(self.LEAN)])
        return np.asarray(self.FLOOR), u, np.array([-u[1], u[0]])

    def pose(self, motion: dict[str, np.ndarray], body: Body) -> Scene:
        t = len(motion["sway"])
        lean = 0.035 * motion["sway"]
        upper = upper_body(body, lean, 0.09 + 0.05 * motion["sway"])
        lower = legs(body, t, seated=True, knee_spread=0.085)
        floor, u, n = self._axis()
        # left hand: from the nut down the fingerboard as pitch rises; wrist right of the neck
        s = self.NUT - (self.NUT - self.NECK_LOW) * motion["hand_position"]
        l_target = floor + s[:, None] * u + 0.045 * n
        l_elbow, l_wrist = reach(upper["l_shoulder"], l_target, body.upper_arm, body.forearm,
                                 1.0)  # fmt: skip
        l_hand = Hand(angle=np.full(t, np.arctan2(-n[1], -n[0]) - 0.35), curl=np.full(t, 0.65),
                      thumb=-1.0)  # fmt: skip
        # bow: along a nearly horizontal line through the contact point, tilted by string
        beta = -0.05 + 0.06 * (1.5 - motion["string"])
        b = direction(beta)
        contact = floor + self.CONTACT * u
        d = self.BOW_NEAR + (self.BOW_FAR - self.BOW_NEAR) * motion["bow_position"]
        frog = contact - d[:, None] * b
        tip = frog + self.BOW * b
        r_target = frog + 0.028 * rotate(b, -np.pi / 2)
        r_elbow, r_wrist = reach(upper["r_shoulder"], r_target, body.upper_arm, body.forearm,
                                 1.0)  # fmt: skip
        r_hand = Hand(angle=beta + np.pi / 2 + 0.35, curl=np.full(t, 0.5), thumb=1.0)
        targets = Targets.of(upper, lower, (r_elbow, r_wrist, l_elbow, l_wrist), (r_hand, l_hand))
        axis = np.broadcast_to(np.stack([floor, floor + u]), (t, 2, 2))
        return Scene(targets, {"cello": axis, "bow": np.stack([frog, tip], axis=1)})

    def draw_prop(self, canvas: Canvas, name: str, geometry: np.ndarray, ppu: float) -> None:
        if name == "cello":
            self.draw_cello(canvas, Frame(geometry))
        else:
            _bow(canvas, geometry, ppu)

    @staticmethod
    def draw_cello(canvas: Canvas, f: Frame) -> None:
        """The cello in its axes (``s`` up from the endpin's tip, in body units)."""
        wood = WOOD["cello"]
        f.rods(canvas, [(0.0, 0.0, 0.09, 0.0)], 0.008, METAL)  # endpin
        for grow, color in ((0.007, EDGE), (0.0, wood)):  # a dark rim, then the top
            f.oval(canvas, 0.17, 0.085 + grow, 0.095 + grow, color)
            f.oval(canvas, 0.32, 0.07 + grow, 0.08 + grow, color)
            f.band(canvas, 0.2, 0.3, 0.064 + grow, 0.062 + grow, color)
        f.rods(canvas, [(0.205, -0.045, 0.255, -0.042), (0.205, 0.045, 0.255, 0.042)], 0.006,
               EDGE)  # f-holes  # fmt: skip
        f.band(canvas, 0.1, 0.16, 0.016, 0.028, EBONY)  # tailpiece
        f.band(canvas, 0.38, 0.555, 0.015, 0.013, EDGE)  # neck
        f.band(canvas, 0.555, 0.6, 0.012, 0.01, EDGE)  # pegbox
        f.oval(canvas, 0.615, 0.02, 0.018, EDGE)  # scroll
        f.band(canvas, 0.24, 0.555, 0.019, 0.011, EBONY)  # fingerboard
        f.rods(canvas, [(0.185, -0.03, 0.185, 0.03)], 0.009, BRIDGE)
        f.rods(canvas, [(0.13, k * 0.0065, 0.555, k * 0.0045) for k in (-1.5, -0.5, 0.5, 1.5)],
               0.0028, STRING)  # fmt: skip


class ViolinRig(FigureRig):
    """A standing violinist seen from the front: the violin under the chin on the left
    shoulder, pointing to the image's right; the left arm raised to the neck; the bow crossing
    the strings diagonally. Violin and bow move with the swaying torso.

    Motion rules as :class:`CelloRig` (see :func:`string_motion`).
    """

    name = "violin"
    origin: ClassVar[tuple[float, float]] = (0.5, 0.49)
    unit: ClassVar[float] = 0.95
    horizon: ClassVar[float] = 0.3
    layers: ClassVar[tuple[str, ...]] = (
        "legs",
        "torso",
        "l_arm",
        "violin",
        "head",
        "l_hand",
        "bow",
        "r_arm",
        "r_hand",
    )
    rigid: ClassVar[frozenset[str]] = frozenset({"violin"})
    behind: ClassVar[tuple[int, ...]] = (
        PART_POINTS["legs"] + PART_POINTS["torso"] + (R_SHOULDER, L_SHOULDER, L_ELBOW)
    )

    END: ClassVar[tuple[float, float]] = (0.012, -0.262)  # the violin's end, under the chin
    ANGLE = 0.28  # the violin's axis, below the horizontal
    NUT, NECK_LOW = 0.22, 0.1
    CONTACT = 0.07
    BOW, BOW_NEAR, BOW_FAR = 0.34, 0.045, 0.24
    BOW_ANGLE = -0.5

    def motion(
        self, score: Score, loudness: np.ndarray, fps: float, num_frames: int
    ) -> dict[str, np.ndarray]:
        """Per-frame motion parameters: see :func:`string_motion`."""
        return string_motion(score, loudness, fps, num_frames, "violin")

    def pose(self, motion: dict[str, np.ndarray], body: Body) -> Scene:
        t = len(motion["sway"])
        lean = 0.03 * motion["sway"]
        upper = upper_body(body, lean, 0.2 + 0.04 * motion["sway"])
        upper["head"] = upper["head"] + rotate(np.array([0.012, 0.006]), lean)
        lower = legs(body, t, seated=False)
        # the violin rests on the collarbone: it follows the swaying torso (moving without
        # turning; the sway's turn is a few hundredths of a radian)
        end = rotate(np.asarray(self.END), lean)
        u = np.broadcast_to(direction(self.ANGLE), (t, 2))
        n = np.stack([-u[:, 1], u[:, 0]], axis=-1)
        s = self.NUT - (self.NUT - self.NECK_LOW) * motion["hand_position"]
        l_wrist = end + s[:, None] * u + 0.03 * n
        # the left upper arm points at the camera, so planar IK would fling the elbow
        # sideways; it hangs under the violin instead, following the hand a little
        shoulder = upper["l_shoulder"]
        l_elbow = (
            shoulder
            + np.array([0.035, 0.6 * body.upper_arm])
            + 0.3 * (l_wrist - shoulder - np.array([0.08, 0.05]))
        )
        l_hand = Hand(angle=np.arctan2(-n[:, 1], -n[:, 0]) - 0.35, curl=np.full(t, 0.6),
                      thumb=1.0)  # fmt: skip
        beta = self.BOW_ANGLE + lean + 0.06 * (motion["string"] - 1.5)
        b = direction(beta)
        contact = end + self.CONTACT * u
        d = self.BOW_NEAR + (self.BOW_FAR - self.BOW_NEAR) * motion["bow_position"]
        frog = contact - d[:, None] * b
        tip = frog + self.BOW * b
        r_target = frog + 0.025 * rotate(b, -np.pi / 2)
        r_elbow, r_wrist = reach(upper["r_shoulder"], r_target, body.upper_arm, body.forearm,
                                 1.0)  # fmt: skip
        r_hand = Hand(angle=beta + np.pi / 2 + 0.25, curl=np.full(t, 0.5), thumb=1.0)
        targets = Targets.of(upper, lower, (r_elbow, r_wrist, l_elbow, l_wrist), (r_hand, l_hand))
        axis = np.stack([end, end + u], axis=1)
        return Scene(targets, {"violin": axis, "bow": np.stack([frog, tip], axis=1)})

    def draw_prop(self, canvas: Canvas, name: str, geometry: np.ndarray, ppu: float) -> None:
        if name == "violin":
            self.draw_violin(canvas, Frame(geometry))
        else:
            _bow(canvas, geometry, ppu)

    @staticmethod
    def draw_violin(canvas: Canvas, f: Frame) -> None:
        """The violin in its axes (``s`` from the end button towards the scroll)."""
        wood = WOOD["violin"]
        for grow, color in ((0.005, EDGE), (0.0, wood)):
            f.oval(canvas, 0.046, 0.048 + grow, 0.057 + grow, color)
            f.oval(canvas, 0.132, 0.041 + grow, 0.048 + grow, color)
            f.band(canvas, 0.069, 0.115, 0.039 + grow, 0.037 + grow, color)
        f.band(canvas, 0.008, 0.04, 0.009, 0.014, EBONY)  # tailpiece
        f.band(canvas, 0.172, 0.23, 0.01, 0.009, EDGE)  # neck
        f.band(canvas, 0.23, 0.262, 0.009, 0.007, EDGE)  # pegbox
        f.oval(canvas, 0.274, 0.014, 0.013, EDGE)  # scroll
        f.band(canvas, 0.08, 0.23, 0.014, 0.009, EBONY)  # fingerboard
        f.rods(canvas, [(0.054, -0.02, 0.054, 0.02)], 0.006, BRIDGE)
        f.rods(canvas, [(0.03, k * 0.0045, 0.23, k * 0.0035) for k in (-1.5, -0.5, 0.5, 1.5)],
               0.002, STRING)  # fmt: skip


__all__ = ["CelloRig", "ViolinRig", "bow_travel", "string_motion"]
