"""A seated guitarist seen from the front, the guitar across the body, neck rising to the
image's right.

Motion rules (:func:`guitar_motion`), deterministic in the score and the loudness:

* the fretting (left) hand slides along the neck with pitch, linearly over the guitar's range
  (higher → closer to the body), settling within about two frames; in rests it drifts slowly
  back to a rest place;
* the picking (right) hand strikes across the strings at every onset, by an amount rising
  with the loudness at the onset, and swings back with a 0.12 s time constant;
* the torso and head sway with a sinusoid at zero phase on every beat.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from audiovis.data.studio.rigs.body import (
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
    sway,
    upper_body,
)
from audiovis.data.studio.score import RANGE, Score

REST_HAND = 0.2
STRIKE_SECONDS = 0.12  # how fast the picking hand swings back after a strike

SPRUCE = (224.0, 178.0, 108.0)
RIM = (112.0, 62.0, 28.0)
HOLE = (28.0, 20.0, 14.0)
NECK = (128.0, 78.0, 40.0)
FRETBOARD = (48.0, 34.0, 26.0)
FRET = (190.0, 190.0, 182.0)
STRING = (206.0, 200.0, 186.0)
BRIDGE = (70.0, 42.0, 24.0)


def guitar_motion(
    score: Score, loudness: np.ndarray, fps: float, num_frames: int
) -> dict[str, np.ndarray]:
    """The motion parameters of the guitarist, per frame.

    Args:
        score: the notes played.
        loudness: the audio's loudness per frame in [0, 1].
        fps: frames per second; frame t is time ``t / fps``.
        num_frames: T.

    Returns:
        ``pitch`` (T,) sounding MIDI pitch, NaN in rests; ``active`` (T,) bool; ``onset`` (T,)
        bool; ``hand_position`` (T,) in [0, 1], the fretting hand along the neck (0: the nut,
        1: the body), rising with pitch; ``strike`` (T,) in [0, 1], how far the picking hand
        is through the strings: ``0.2 + 0.8 * loudness`` at an onset (the louder of the onset
        frame and the next, since a note's energy can land a frame late), decaying after it;
        ``beat_phase`` (T,) in [0, 1); ``sway`` (T,) in [-1, 1].
    """
    track = note_track(score, fps, num_frames)
    loud = fit_loudness(loudness, num_frames)
    lo, hi = RANGE["guitar"]
    target = np.clip((np.nan_to_num(track.pitch, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    frames = np.arange(num_frames)
    last = np.maximum.accumulate(np.where(track.onset, frames, -1)) if num_frames else frames
    peak = np.maximum(loud, np.concatenate([loud[1:], loud[-1:]]))
    amplitude = 0.2 + 0.8 * peak[np.maximum(last, 0)]
    decay = np.exp(-(frames - last) / max(STRIKE_SECONDS * fps, 1e-6))
    phase = beat_phase(score, fps, num_frames)
    return {
        "pitch": track.pitch,
        "active": track.active,
        "onset": track.onset,
        "hand_position": follow(target, track.active, REST_HAND, fps),
        "strike": np.where(last >= 0, amplitude * decay, 0.0),
        "beat_phase": phase,
        "sway": sway(phase),
    }


class GuitarRig(FigureRig):
    """A seated guitarist: the guitar's body on the right thigh, its neck rising across the
    chest to the image's right; the left hand frets, the right hand picks over the sound hole.

    See :func:`guitar_motion` for the rules.
    """

    name = "guitar"
    origin: ClassVar[tuple[float, float]] = (0.5, 0.6)
    unit: ClassVar[float] = 1.12
    horizon: ClassVar[float] = 0.12
    seated: ClassVar[bool] = True
    layers: ClassVar[tuple[str, ...]] = (
        "legs",
        "torso",
        "head",
        "guitar",
        "r_arm",
        "r_hand",
        "l_arm",
        "l_hand",
    )
    rigid: ClassVar[frozenset[str]] = frozenset({"guitar"})
    behind: ClassVar[tuple[int, ...]] = (
        PART_POINTS["legs"] + PART_POINTS["torso"] + PART_POINTS["head"]
    )

    CENTER: ClassVar[tuple[float, float]] = (-0.085, -0.005)  # the lower bout, on the thigh
    ANGLE = -0.55  # the neck rises to the image's right
    NUT, NECK_HIGH = 0.43, 0.22  # the fretting hand's range along the axis
    HOLE = 0.09
    LENGTH = 0.45  # string length, for the frets

    def motion(
        self, score: Score, loudness: np.ndarray, fps: float, num_frames: int
    ) -> dict[str, np.ndarray]:
        """Per-frame motion parameters: see :func:`guitar_motion`."""
        return guitar_motion(score, loudness, fps, num_frames)

    def pose(self, motion: dict[str, np.ndarray], body: Body) -> Scene:
        t = len(motion["sway"])
        lean = 0.03 * motion["sway"]
        upper = upper_body(body, lean, 0.12 + 0.03 * motion["sway"])
        lower = legs(body, t, seated=True, knee_spread=0.04, foot_spread=0.005)
        center = np.asarray(self.CENTER)
        u = direction(self.ANGLE)
        n = np.array([-u[1], u[0]])  # across the strings, downwards
        s = self.NUT - (self.NUT - self.NECK_HIGH) * motion["hand_position"]
        l_target = center + s[:, None] * u + 0.035 * n
        l_elbow, l_wrist = reach(upper["l_shoulder"], l_target, body.upper_arm, body.forearm,
                                 1.0)  # fmt: skip
        l_hand = Hand(angle=np.full(t, np.arctan2(-n[1], -n[0]) + 0.3), curl=np.full(t, 0.6),
                      thumb=-1.0)  # fmt: skip
        hole = center + self.HOLE * u
        r_target = hole - 0.015 * u + (0.085 * motion["strike"][:, None] - 0.065) * n
        r_elbow, r_wrist = reach(upper["r_shoulder"], r_target, body.upper_arm, body.forearm,
                                 1.0)  # fmt: skip
        r_hand = Hand(angle=np.full(t, np.arctan2(n[1], n[0]) + 0.2), curl=np.full(t, 0.45),
                      thumb=1.0)  # fmt: skip
        targets = Targets.of(upper, lower, (r_elbow, r_wrist, l_elbow, l_wrist), (r_hand, l_hand))
        axis = np.broadcast_to(np.stack([center, center + u]), (t, 2, 2))
        return Scene(targets, {"guitar": axis})

    def draw_prop(self, canvas: Canvas, name: str, geometry: np.ndarray, ppu: float) -> None:
        f = Frame(geometry)
        for grow, color in ((0.008, RIM), (0.0, SPRUCE)):
            f.oval(canvas, 0.0, 0.1 + grow, 0.1 + grow, color)
            f.oval(canvas, 0.14, 0.075 + grow, 0.078 + grow, color)
            f.band(canvas, 0.05, 0.1, 0.07 + grow, 0.066 + grow, color)
        f.oval(canvas, self.HOLE, 0.031, 0.031, RIM)
        f.oval(canvas, self.HOLE, 0.025, 0.025, HOLE)
        f.band(canvas, -0.052, -0.036, 0.042, 0.042, BRIDGE)
        f.band(canvas, 0.19, self.NUT + 0.01, 0.018, 0.015, NECK)
        f.band(canvas, 0.2, self.NUT + 0.01, 0.015, 0.012, FRETBOARD)
        f.band(canvas, self.NUT + 0.01, self.NUT + 0.075, 0.017, 0.022, BRIDGE)  # headstock
        frets = self.NUT - self.LENGTH * (1 - 2.0 ** (-np.arange(1, 13) / 12))
        f.rods(canvas, [(s, -0.013, s, 0.013) for s in frets.tolist()], 0.003, FRET)
        f.rods(canvas, [(-0.044, k * 0.0062, self.NUT, k * 0.0045)
                        for k in (-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)], 0.0022, STRING)  # fmt: skip


__all__ = ["GuitarRig", "guitar_motion"]
