"""Keypoint layouts shared by every family: OpenPose BODY_25 plus two 21-point hands.

The zoo's keypoint stream holds K = 67 points per frame in OpenPose order: the 25 body joints,
then the left hand's 21 points, then the right hand's 21 points.
"""

from __future__ import annotations

BODY_25_NAMES: tuple[str, ...] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye",
    "r_ear", "l_ear", "l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel",
)  # fmt: skip

BODY_25_EDGES: tuple[tuple[int, int], ...] = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
    (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18),
    (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
)  # fmt: skip

# Wrist (0), then four joints per finger: thumb, index, middle, ring, little.
HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    (0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4)
)

NUM_BODY = 25
NUM_HAND = 21
NUM_KEYPOINTS = NUM_BODY + 2 * NUM_HAND  # 67
LEFT_HAND_OFFSET = NUM_BODY
RIGHT_HAND_OFFSET = NUM_BODY + NUM_HAND


def openpose_edges() -> list[tuple[int, int]]:
    """All edges of the 67-point layout: body, then each hand joined to its body wrist."""
    edges = list(BODY_25_EDGES)
    for offset, wrist in ((LEFT_HAND_OFFSET, 7), (RIGHT_HAND_OFFSET, 4)):
        edges.append((wrist, offset))
        edges.extend((offset + a, offset + b) for a, b in HAND_EDGES)
    return edges


def edge_colors(num_edges: int) -> list[tuple[int, int, int]]:
    """Distinct, stable RGB colours for drawing limbs (a hue wheel)."""
    import colorsys

    return [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(num_edges, 1), 0.85, 1.0))  # type: ignore[misc]
        for i in range(num_edges)
    ]
