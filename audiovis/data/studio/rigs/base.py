"""What every performer rig shares: the performer's look, the rendered take, the interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from audiovis.data.studio.score import Score

RGB = tuple[int, int, int]
NUM_PERFORMERS = 4


@dataclass(frozen=True)
class Look:
    """A performer's identity: body proportions, colours, background and camera framing.

    Appearance varies between performers while motion stays a function of the music.

    Attributes:
        performer: label stored in meta.json (``p0`` …).
        skin, hair, top, bottom: colours of the body, hair, upper and lower clothing.
        background: backdrop colour; ``floor`` the floor's.
        scale: overall body size (1 = nominal).
        shoulders: shoulder width factor; ``arms``, ``legs`` limb length factors.
        zoom: camera zoom (1 = nominal framing); ``shift`` the framing offset (x, y) as a
            fraction of the image side.
    """

    performer: str
    skin: RGB
    hair: RGB
    top: RGB
    bottom: RGB
    background: RGB
    floor: RGB
    scale: float = 1.0
    shoulders: float = 1.0
    arms: float = 1.0
    legs: float = 1.0
    zoom: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def performer_look(cls, index: int) -> Look:
        """The look of performer ``index``: fixed for an index, different between indices."""
        rng = np.random.default_rng(1_000 + index)
        skins = [(241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 56, 31)]
        hairs = [(30, 20, 15), (90, 60, 30), (200, 170, 90), (120, 120, 120), (60, 30, 20)]

        def color(lo: int, hi: int) -> RGB:
            return tuple(int(c) for c in rng.integers(lo, hi, 3))  # type: ignore[return-value]

        return cls(
            performer=f"p{index}",
            skin=skins[index % len(skins)],
            hair=hairs[(index * 3) % len(hairs)],
            top=color(40, 230),
            bottom=color(20, 150),
            background=color(150, 235),
            floor=color(90, 170),
            scale=float(rng.uniform(0.92, 1.08)),
            shoulders=float(rng.uniform(0.9, 1.12)),
            arms=float(rng.uniform(0.94, 1.06)),
            legs=float(rng.uniform(0.94, 1.06)),
            zoom=float(rng.uniform(0.9, 1.08)),
            shift=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.03, 0.03))),
        )


@dataclass
class Take:
    """What a rig renders for one performance, frame by frame.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        mask: (T, H, W) uint8 {0, 1}: the performer (body and hands; not the instrument).
        keypoints: (T, 67, 3) float32 OpenPose BODY_25 + two hands, x, y in [0, 1], confidence
            (0 where a point is occluded, off-frame or has no counterpart).
        pose3d: (T, 23, 3) float32 joints in metres, root-centred (dance only).
    """

    frames: np.ndarray
    mask: np.ndarray
    keypoints: np.ndarray | None = None
    pose3d: np.ndarray | None = None


class Rig(Protocol):
    """A performer whose motion is a deterministic function of the score.

    ``render`` draws ``num_frames`` frames at ``fps``: frame t shows the performer at time
    ``t / fps``. ``loudness`` is the audio's RMS per frame normalised to [0, 1] (what the bow
    speed, strum force or dance amplitude follow). ``style`` is the dance style (``waltz``,
    ``chacha``, ``tango``, ``rumba``) or ``"none"``.
    """

    name: str

    def render(
        self,
        score: Score,
        loudness: np.ndarray,
        look: Look,
        size: int,
        fps: float,
        num_frames: int,
        style: str = "none",
    ) -> Take: ...
