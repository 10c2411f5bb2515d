"""A standing trombonist seen from the front, the slide reaching down in front of the body.

Motion rules (:func:`trombone_motion`), deterministic in the score:

* each pitch maps to one of the seven slide positions, linearly over the trombone's range
  and ordered by pitch: the highest notes in first position (slide closed), the lowest in
  seventh (slide out); the right hand moves the slide there within about two frames, and in
  rests slowly closes it;
* the torso and head sway with a sinusoid at zero phase on every beat.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from audiovis.data.studio.rigs.body import (
    L_ELBOW,
    PART_POINTS,
    Body,
    Canvas,
    FigureRig,
    Frame,
    Hand,
    Scene,
    Targets,
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

POSITIONS = 7
BRASS = (214.0, 172.0, 64.0)
DARK_BRASS = (150.0, 112.0, 34.0)
THROAT = (104.0, 72.0, 20.0)
SILVER = (198.0, 198.0, 204.0)


def slide_position(pitch: np.ndarray) -> np.ndarray:
    """The slide position (1 = closed … 7 = out) of MIDI pitches: the trombone's range split
    into seven equal bands, higher pitch → lower position.

    Shape:
        pitch (...) → (...) int64 in 1..7.
    """
    lo, hi = RANGE["trombone"]
    frac = (hi - np.clip(np.asarray(pitch, np.float64), lo, hi)) / (hi - lo)
    return 1 + np.round((POSITIONS - 1) * frac).astype(np.int64)


def trombone_motion(
    score: Score, loudness: np.ndarray, fps: float, num_frames: int
) -> dict[str, np.ndarray]:
    """The motion parameters of the trombonist, per frame.

    Args:
        score: the notes played.
        loudness: the audio's loudness per frame in [0, 1] (returned as ``loudness``; the
            slide does not depend on it).
        fps: frames per second; frame t is time ``t / fps``.
        num_frames: T.

    Returns:
        ``pitch`` (T,) sounding MIDI pitch, NaN in rests; ``active`` (T,) bool; ``onset``
        (T,) bool; ``position`` (T,) int 1..7 of the sounding note, 0 in rests;
        ``hand_position`` (T,) in [0, 1], the slide's extension (0: first position, 1:
        seventh), falling as pitch rises; ``loudness`` (T,); ``beat_phase`` (T,) in [0, 1);
        ``sway`` (T,) in [-1, 1].
    """
    track = note_track(score, fps, num_frames)
    position = np.where(track.active, slide_position(np.nan_to_num(track.pitch)), 0)
    target = np.clip((position - 1) / (POSITIONS - 1), 0.0, 1.0)
    phase = beat_phase(score, fps, num_frames)
    return {
        "pitch": track.pitch,
        "active": track.active,
        "onset": track.onset,
        "position": position,
        "hand_position": follow(target, track.active, 0.0, fps),
        "loudness": fit_loudness(loudness, num_frames),
        "beat_phase": phase,
        "sway": sway(phase),
    }


class TromboneRig(FigureRig):
    """A standing trombonist: the mouthpiece at the lips, the slide running down and to the
    image's left in front of the body, the bell on the player's left. The right hand holds the
    slide's brace at the note's position; the left hand holds the instrument.

    See :func:`trombone_motion` for the rules.
    """

    name = "trombone"
    origin: ClassVar[tuple[float, float]] = (0.5, 0.49)
    unit: ClassVar[float] = 0.95
    horizon: ClassVar[float] = 0.3
    layers: ClassVar[tuple[str, ...]] = (
        "legs",
        "torso",
        "head",
        "l_arm",
        "bell",
        "slide",
        "l_hand",
        "r_arm",
        "r_hand",
    )
    rigid: ClassVar[frozenset[str]] = frozenset({"bell"})
    behind: ClassVar[tuple[int, ...]] = (
        PART_POINTS["legs"]
        + PART_POINTS["torso"]
        + PART_POINTS["head"]
        + PART_POINTS["shoulders"]
        + (L_ELBOW,)
    )

    ANGLE = 2.05  # the slide's direction on screen: down and to the image's left
    FIRST, SEVENTH = 0.15, 0.34  # the brace's distance from the mouthpiece
    BELL = -0.068  # the bell section's offset across the slide (the player's left)

    def motion(
        self, score: Score, loudness: np.ndarray, fps: float, num_frames: int
    ) -> dict[str, np.ndarray]:
        """Per-frame motion parameters: see :func:`trombone_motion`."""
        return trombone_motion(score, loudness, fps, num_frames)

    def pose(self, motion: dict[str, np.ndarray], body: Body) -> Scene:
        t = len(motion["sway"])
        lean = 0.03 * motion["sway"]
        upper = upper_body(body, lean, 0.03 * motion["sway"])
        lower = legs(body, t, seated=False)
        mouth = upper["head"] + rotate(np.array([0.0, 0.62 * body.head]), upper["tilt"])
        v = direction(self.ANGLE)
        n = np.array([-v[1], v[0]])  # across the slide, towards the player's right
        s = self.FIRST + (self.SEVENTH - self.FIRST) * motion["hand_position"]
        brace = mouth + s[:, None] * v
        r_wrist = brace + 0.028 * n
        r_elbow, r_wrist = reach(upper["r_shoulder"], r_wrist, body.upper_arm, body.forearm, 1.0)
        r_hand = Hand(angle=np.full(t, np.arctan2(-n[1], -n[0]) + 0.2), curl=np.full(t, 0.7),
                      thumb=-1.0)  # fmt: skip
        l_target = mouth + 0.1 * v + (self.BELL - 0.03) * n
        l_elbow, l_wrist = reach(upper["l_shoulder"], l_target, body.upper_arm, body.forearm,
                                 -1.0)  # fmt: skip
        l_hand = Hand(angle=np.full(t, np.arctan2(n[1], n[0]) - 0.3), curl=np.full(t, 0.7),
                      thumb=1.0)  # fmt: skip
        targets = Targets.of(upper, lower, (r_elbow, r_wrist, l_elbow, l_wrist), (r_hand, l_hand))
        axis = np.stack([mouth, mouth + v], axis=1)
        return Scene(targets, {"bell": axis, "slide": np.concatenate([axis, brace[:, None]], 1)})

    def draw_prop(self, canvas: Canvas, name: str, geometry: np.ndarray, ppu: float) -> None:
        f = Frame(geometry[:2])
        if name == "bell":
            self.draw_bell(canvas, f)
            return
        s = float(np.hypot(*(geometry[2] - geometry[0]))) / f.ppu
        # inner tubes from the mouthpiece, the outer slide over them, the bend at its end
        out = s + 0.12
        f.rods(canvas, [(0.03, 0.013, s - 0.03, 0.013), (0.03, -0.013, s - 0.03, -0.013)],
               0.009, BRASS)  # fmt: skip
        f.rods(canvas, [(s - 0.04, 0.014, out, 0.014), (s - 0.04, -0.014, out, -0.014),
                        (out, 0.014, out, -0.014)], 0.013, BRASS)  # fmt: skip
        f.rods(canvas, [(s, 0.016, s, -0.016)], 0.008, DARK_BRASS)

    def draw_bell(self, canvas: Canvas, f: Frame) -> None:
        """What moves with the mouthpiece: bell section, braces, mouthpiece."""
        b = self.BELL
        f.rods(canvas, [(0.03, 0.013, 0.03, -0.013), (0.09, 0.0, 0.09, b)], 0.008, DARK_BRASS)
        f.rods(canvas, [(0.02, b, 0.15, b), (0.02, b, -0.015, 0.6 * b)], 0.014, BRASS)
        f.band(canvas, 0.12, 0.235, 0.009, 0.066, BRASS, across=b)
        # the bell faces the camera: a nearly round rim around a dark throat
        f.oval(canvas, 0.24, 0.04, 0.08, DARK_BRASS, across=b)
        f.oval(canvas, 0.242, 0.034, 0.071, BRASS, across=b)
        f.oval(canvas, 0.246, 0.023, 0.048, THROAT, across=b)
        f.rods(canvas, [(0.0, 0.0, 0.025, 0.0)], 0.011, SILVER)  # mouthpiece


__all__ = ["TromboneRig", "slide_position", "trombone_motion"]
