"""The dance rig: steps locked to the beats, figures per style, loudness, and the Take."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from audiovis.data.studio.rigs.base import Look, Take
from audiovis.data.studio.rigs.dance import (
    DANCE_EDGES,
    DANCE_JOINTS,
    DANCE_PARENTS,
    FIGURES,
    STYLES,
    DanceMotion,
    DanceRig,
    J,
    dance_motion,
    foot_contact,
    project,
    steps,
)
from audiovis.data.studio.score import Score

FPS = 25.0
BPM = 120.0
FIRST_BEAT = 0.4  # so the first step's swing is inside the video
SECONDS = 11.0
NUM_FRAMES = int(SECONDS * FPS)
ANKLE_H = 0.08  # the rig's planted ankle height at look.scale = 1


def score_for(style: str, meter: int | None = None, beats: np.ndarray | None = None) -> Score:
    """Beats at 120 bpm for ten seconds; 3/4 for the waltz, 4/4 otherwise."""
    if beats is None:
        beats = FIRST_BEAT + np.arange(0.0, 10.0, 60.0 / BPM)
    meter = meter if meter is not None else (3 if style == "waltz" else 4)
    return Score(name=f"test_{style}", notes=[], beats=beats, meter=meter, tempo=BPM)


@functools.cache
def motion_of(style: str, level: float) -> DanceMotion:
    return dance_motion(score_for(style), np.full(NUM_FRAMES, level), FPS, NUM_FRAMES, style)


def landings(joints: np.ndarray) -> list[set[int]]:
    """Frames where each foot comes to rest on the floor after being in the air."""
    contact = foot_contact(joints)
    return [set((np.flatnonzero(contact[1:, k] & ~contact[:-1, k]) + 1).tolist()) for k in (0, 1)]


def planted_spots(joints: np.ndarray) -> list[np.ndarray]:
    """Per foot, the ankle's floor position at each landing, in order."""
    spots = []
    for k, ankle in enumerate((J["l_ankle"], J["r_ankle"])):
        frames = sorted(landings(joints)[k])
        spots.append(joints[frames, ankle][:, [0, 2]])
    return spots


# ---------------------------------------------------------------------------------- skeleton


def test_skeleton_is_a_tree_of_23_joints() -> None:
    assert len(DANCE_JOINTS) == 23 == len(DANCE_PARENTS)
    assert len(DANCE_EDGES) == 22
    assert DANCE_PARENTS[0] == -1
    for child, parent in enumerate(DANCE_PARENTS[1:], start=1):
        assert 0 <= parent < child  # parents come first: a forward-kinematics order
    for side in ("l", "r"):
        chain = [f"{side}_{n}" for n in ("hip", "knee", "ankle", "toe")]
        for a, b in itertools.pairwise(chain):
            assert (J[a], J[b]) in DANCE_EDGES


# ---------------------------------------------------------------------------------- beat lock


@pytest.mark.parametrize("style", STYLES)
def test_every_step_lands_on_a_beat(style: str) -> None:
    score = score_for(style)
    events = steps(score, style, FPS, NUM_FRAMES)
    assert events, "no steps planned"
    for e in events:
        whole = np.floor(e.beat)
        if e.beat == whole:
            beat_time = score.beats[int(whole)]
            assert e.time == pytest.approx(beat_time)
        else:  # the cha-cha's "and": halfway between two beats
            assert style == "chacha" and e.beat - whole == 0.5
            beat_time = 0.5 * (score.beats[int(whole)] + score.beats[int(whole) + 1])
        assert abs(e.frame - round(beat_time * FPS)) <= 1
    # steps are weight transfers: they alternate feet
    feet = [e.foot for e in events]
    assert all(a != b for a, b in itertools.pairwise(feet))


@pytest.mark.parametrize("style", STYLES)
def test_feet_reach_the_floor_and_stop_on_the_step_frames(style: str) -> None:
    m = motion_of(style, 0.8)
    found = landings(m.joints)
    for k, name in enumerate(("left", "right")):
        ankle = m.joints[:, J[f"{name[0]}_ankle"]]
        expected = {e.frame for e in steps(score_for(style), style, FPS, NUM_FRAMES)
                    if e.foot == name and e.frame < NUM_FRAMES - 1}  # fmt: skip
        for f in expected:
            # on the floor, with ~0 vertical velocity, at the beat frame
            assert abs(ankle[f, 1] - ANKLE_H) < 0.003, (name, f)
            assert abs(ankle[f + 1, 1] - ankle[f, 1]) < 0.002, (name, f)
            # and a landing (air → floor) is detected within a frame of it
            assert any(abs(f - g) <= 1 for g in found[k]), (name, f, sorted(found[k]))
        for g in found[k]:  # no landing that the figure does not plan
            assert any(abs(f - g) <= 1 for f in expected), (name, g, sorted(expected))


@pytest.mark.parametrize("style", STYLES)
def test_steps_per_bar_match_the_figure(style: str) -> None:
    figure = FIGURES[style]
    score = score_for(style)
    beats = np.array([e.beat for e in steps(score, style, FPS, NUM_FRAMES)])
    # waltz 3 per bar of 3; cha-cha 5 per 4 beats; tango 5 per 2 bars of 4; rumba 3 per bar
    window = {"waltz": 3, "chacha": 4, "tango": 8, "rumba": 4}[style]
    count = {"waltz": 3, "chacha": 5, "tango": 5, "rumba": 3}[style]
    assert figure.per_bar * window / figure.bar == count
    full = int((len(score.beats) - 1) // window)
    assert full >= 2
    for bar in range(full):
        inside = (beats >= bar * window) & (beats < (bar + 1) * window)
        assert inside.sum() == count, (bar, beats[inside])


def test_waltz_counts_in_three_whatever_the_meter() -> None:
    score = score_for("waltz", meter=4)
    events = steps(score, "waltz", FPS, NUM_FRAMES)
    beats = [e.beat for e in events]
    assert beats == list(range(len(beats)))  # a step on every beat
    assert [e.foot for e in events[:6]] == ["left", "right"] * 3


def test_cha_cha_triple_on_four_and_one() -> None:
    beats = np.array([e.beat for e in steps(score_for("chacha"), "chacha", FPS, NUM_FRAMES)])
    counts = np.mod(beats, 4)  # 0 = count 1
    assert set(np.round(counts, 2).tolist()) == {0.0, 1.0, 2.0, 3.0, 3.5}


def test_tango_slow_slow_quick_quick_slow() -> None:
    beats = np.array([e.beat for e in steps(score_for("tango"), "tango", FPS, NUM_FRAMES)])
    gaps = np.diff(beats[:6])  # S S Q Q S: 2, 2, 1, 1, 2 beats until the next step
    assert gaps.tolist() == [2, 2, 1, 1, 2]


# ------------------------------------------------------------------------------- the motion


@pytest.mark.parametrize("style", STYLES)
def test_louder_means_bigger_steps(style: str) -> None:
    def sizes(level: float) -> tuple[float, float]:
        m = motion_of(style, level)
        steps_len = np.mean([np.linalg.norm(np.diff(s, axis=0), axis=1).mean()
                             for s in planted_spots(m.joints)])  # fmt: skip
        travel = float(np.linalg.norm(np.diff(m.root[:, [0, 2]], axis=0), axis=1).sum())
        return float(steps_len), travel

    quiet, loud = sizes(0.3), sizes(1.0)
    assert loud[0] > 1.3 * quiet[0]
    assert loud[1] > 1.2 * quiet[1]


@pytest.mark.parametrize("style", STYLES)
def test_planted_feet_do_not_slide_and_nothing_teleports(style: str) -> None:
    m = motion_of(style, 1.0)
    for ankle in (J["l_ankle"], J["r_ankle"]):
        a = m.joints[:, ankle].astype(np.float64)
        down = np.abs(a[:, 1] - ANKLE_H) < 1e-5
        both = down[1:] & down[:-1]
        slide = np.linalg.norm(np.diff(a[:, [0, 2]], axis=0), axis=1)[both]
        assert slide.max() < 1e-4
    speed = np.linalg.norm(np.diff(m.joints, axis=0), axis=-1) * FPS
    assert speed.max() < 4.0  # m/s: no joint jumps between frames
    # the dancer stays on the floor: no foot below it, the pelvis above the knees
    assert m.joints[:, [J["l_toe"], J["r_toe"]], 1].min() > 0.0
    assert (m.joints[:, J["pelvis"], 1] > m.joints[:, J["l_knee"], 1]).all()


def knee_angle(joints: np.ndarray) -> float:
    """Mean hip-knee-ankle angle in degrees (180 = straight)."""
    angles = []
    for side in ("l", "r"):
        up = joints[:, J[f"{side}_hip"]] - joints[:, J[f"{side}_knee"]]
        down = joints[:, J[f"{side}_ankle"]] - joints[:, J[f"{side}_knee"]]
        cos = np.sum(up * down, -1) / np.linalg.norm(up, axis=-1) / np.linalg.norm(down, axis=-1)
        angles.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return float(np.mean(angles))


def test_styles_are_distinguishable() -> None:
    knees = {s: knee_angle(motion_of(s, 0.8).joints) for s in STYLES}
    for other in ("waltz", "chacha", "rumba"):
        assert knees["tango"] < knees[other] - 5, knees  # tango: flat, knees bent
    poses = {s: (motion_of(s, 0.8).joints - motion_of(s, 0.8).root[:, None]).mean(0)
             for s in STYLES}  # fmt: skip
    for i, a in enumerate(STYLES):
        for b in STYLES[i + 1 :]:
            assert np.abs(poses[a] - poses[b]).mean() > 0.01, (a, b)
    # rumba's Cuban motion tilts the hips far more than the waltz's level hips
    tilt = {s: np.ptp(np.diff(motion_of(s, 0.8).joints[:, [J["l_hip"], J["r_hip"]], 1], axis=1))
            for s in ("waltz", "rumba")}  # fmt: skip
    assert tilt["rumba"] > 3 * tilt["waltz"] + 0.01


def test_waltz_rise_and_fall() -> None:
    m = motion_of("waltz", 1.0)
    score = score_for("waltz")
    frames = np.round(score.beats * FPS).astype(int)
    count = np.arange(len(frames)) % 3
    height = m.root[frames, 1]
    assert height[count == 0].mean() < height[count == 2].mean() - 0.02  # down on 1, up on 3


def test_no_beats_stands_with_an_idle_sway() -> None:
    score = score_for("rumba", beats=np.zeros(0))
    m = dance_motion(score, np.full(200, 0.8), FPS, 200, "rumba")
    assert m.steps == [] and steps(score, "rumba", FPS, 200) == []
    feet = m.joints[:, [J["l_ankle"], J["r_ankle"], J["l_toe"], J["r_toe"]]]
    assert np.ptp(feet, axis=0).max() < 1e-6
    drift = np.ptp(m.root[:, [0, 2]], axis=0).max()
    assert 0.005 < drift < 0.04


def test_same_inputs_same_dance() -> None:
    rig, look = DanceRig(), Look.performer_look(1)
    score = score_for("chacha")
    loud = np.linspace(0, 1, 60)
    a = rig.render(score, loud, look, 64, FPS, 60, "chacha")
    b = rig.render(score, loud, look, 64, FPS, 60, "chacha")
    for name in ("frames", "mask", "keypoints", "pose3d"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("style", ["salsa", "none", ""])
def test_unknown_style_is_named(style: str) -> None:
    with pytest.raises(ValueError, match=f"'{style}'") as err:
        DanceRig().render(score_for("waltz"), np.zeros(4), Look.performer_look(0), 64, FPS, 4,
                          style)  # fmt: skip
    for known in STYLES:
        assert known in str(err.value)
    with pytest.raises(ValueError, match="salsa"):
        steps(score_for("waltz"), "salsa", FPS, 10)


# --------------------------------------------------------------------------------- the take


@pytest.fixture(scope="module")
def takes() -> dict[str, tuple[Take, DanceMotion, Look]]:
    out = {}
    for i, style in enumerate(STYLES):
        look = Look.performer_look(i)
        loud = 0.5 + 0.5 * np.sin(np.arange(100) / 9.0)
        take = DanceRig().render(score_for(style), loud, look, 128, FPS, 100, style)
        out[style] = (take, dance_motion(score_for(style), loud, FPS, 100, style, look), look)
    return out


@pytest.mark.parametrize("style", STYLES)
def test_take_shapes_dtypes_and_root_centring(
    style: str, takes: dict[str, tuple[Take, DanceMotion, Look]]
) -> None:
    take, m, _ = takes[style]
    assert take.frames.shape == (100, 128, 128, 3) and take.frames.dtype == np.uint8
    assert take.mask.shape == (100, 128, 128) and take.mask.dtype == np.uint8
    assert set(np.unique(take.mask).tolist()) <= {0, 1}
    assert take.keypoints is not None and take.pose3d is not None
    assert take.keypoints.shape == (100, 67, 3) and take.keypoints.dtype == np.float32
    assert take.pose3d.shape == (100, 23, 3) and take.pose3d.dtype == np.float32
    assert np.abs(take.pose3d[:, J["pelvis"]]).max() < 1e-6
    np.testing.assert_allclose(take.pose3d + m.root[:, None], m.joints, atol=1e-5)
    height = take.pose3d[:, J["head"], 1] - np.minimum(take.pose3d[:, J["l_toe"], 1],
                                                        take.pose3d[:, J["r_toe"], 1])  # fmt: skip
    assert height.min() > 1.3 and height.max() < 1.9  # metres: a person


@pytest.mark.parametrize("style", STYLES)
def test_keypoints_follow_the_projected_joints(
    style: str, takes: dict[str, tuple[Take, DanceMotion, Look]]
) -> None:
    take, m, look = takes[style]
    kp = take.keypoints
    assert kp is not None
    seen = kp[..., 2] > 0
    assert ((kp[..., :2] >= 0) & (kp[..., :2] <= 1)).all()
    assert seen[:, [1, 8]].all()  # neck and mid-hip always visible
    assert seen.mean() > 0.6
    pix = project(m.joints, look, 128) / 128
    for slot, joint in ((4, "r_wrist"), (7, "l_wrist"), (11, "r_ankle"), (14, "l_ankle")):
        np.testing.assert_allclose(kp[:, slot, :2], pix[:, J[joint]], atol=1e-4)


@pytest.mark.parametrize("style", STYLES)
def test_mask_covers_the_dancer_only(
    style: str, takes: dict[str, tuple[Take, DanceMotion, Look]]
) -> None:
    take, m, look = takes[style]
    pix = np.floor(project(m.joints, look, 128)).astype(int)
    inside = ((pix >= 0) & (pix < 128)).all(-1)
    t = np.broadcast_to(np.arange(len(pix))[:, None], inside.shape)
    assert take.mask[t[inside], pix[inside][:, 1], pix[inside][:, 0]].all()
    assert take.mask[:, :8, :8].max() == 0 and take.mask[:, :8, -8:].max() == 0
    coverage = take.mask.mean(axis=(1, 2))
    assert (coverage > 0.02).all() and (coverage < 0.3).all()
    # the body is drawn in the look's colours where the mask is
    assert (take.frames[take.mask == 0] != take.frames[take.mask == 1].mean(0)).any()


@pytest.mark.parametrize(("size", "fps"), [(64, 30.0), (256, 12.5)])
def test_any_size_and_frame_rate(size: int, fps: float) -> None:
    take = DanceRig().render(score_for("tango"), np.ones(20), Look.performer_look(3), size, fps,
                             20, "tango")  # fmt: skip
    assert take.frames.shape == (20, size, size, 3)
    assert take.mask.any(axis=(1, 2)).all()
    m = dance_motion(score_for("tango"), np.ones(20), fps, 20, "tango")
    for e in m.steps:
        assert e.frame == round(e.time * fps)
