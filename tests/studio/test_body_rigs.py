"""The cello, violin, trombone and guitar rigs: motion rules checked on hand-built scores, and
the rendered frames, masks and keypoints checked against each other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audiovis.data.studio.rigs.base import Look, Take
from audiovis.data.studio.rigs.body import (
    MID_HIP,
    NECK,
    R_WRIST,
    Body,
    FigureRig,
    follow,
    note_frames,
)
from audiovis.data.studio.rigs.guitar import GuitarRig
from audiovis.data.studio.rigs.strings import CelloRig, ViolinRig
from audiovis.data.studio.rigs.trombone import TromboneRig, slide_position
from audiovis.data.studio.score import RANGE, Note, Score

RIGS: dict[str, FigureRig] = {
    "cello": CelloRig(), "violin": ViolinRig(), "trombone": TromboneRig(), "guitar": GuitarRig(),
}  # fmt: skip
FPS = 25.0


def _score(notes: list[Note], tempo: float = 120.0) -> Score:
    duration = max(n.end for n in notes)
    return Score(name="t", notes=notes, beats=np.arange(0, duration, 60 / tempo), tempo=tempo)


def _legato(pitches: list[int], seconds: float, tempo: float = 120.0) -> Score:
    """Notes back to back, each ``seconds`` long."""
    return _score([Note(p, i * seconds, (i + 1) * seconds) for i, p in enumerate(pitches)], tempo)


def _frames(score: Score) -> int:
    return round(score.duration * FPS)


def _onset_frames(score: Score) -> np.ndarray:
    return np.array([note_frames(n.start, n.end, FPS)[0] for n in score.notes])


def _kp(take: Take) -> np.ndarray:
    assert take.keypoints is not None
    return take.keypoints


def _melody(instrument: str, count: int = 10) -> Score:
    lo, hi = RANGE[instrument]
    rng = np.random.default_rng(0)
    return _legato(rng.integers(lo, hi + 1, count).tolist(), 0.3)


@pytest.mark.parametrize("name", ["cello", "violin", "guitar"])
def test_left_hand_rises_along_the_neck_with_pitch(name: str) -> None:
    lo, hi = RANGE[name]
    score = _legato(list(range(lo, hi + 1, 4)), 0.32)
    motion = RIGS[name].motion(score, np.full(_frames(score), 0.5), FPS, _frames(score))
    # where each note has settled: its last frame
    ends = [note_frames(n.start, n.end, FPS)[1] - 1 for n in score.notes]
    settled = motion["hand_position"][ends]
    assert np.all(np.diff(settled) > 0.02)
    assert settled[0] < 0.05 and settled[-1] > 0.9
    assert np.all((motion["hand_position"] >= 0) & (motion["hand_position"] <= 1))
    # smoothed, not instantaneous: two frames into a note the hand is nearly there
    first = note_frames(score.notes[5].start, 1, FPS)[0]
    step = settled[5] - settled[4]
    assert 0.5 * step < motion["hand_position"][first] - settled[4] < step
    assert abs(motion["hand_position"][first + 2] - settled[5]) < 0.15 * step


def test_left_hand_drifts_slowly_back_to_rest_between_notes() -> None:
    lo, hi = RANGE["cello"]
    score = _score([Note(hi, 0.0, 0.4), Note(lo, 3.0, 3.4)])
    t = _frames(score)
    hand = CelloRig().motion(score, np.full(t, 0.5), FPS, t)["hand_position"]
    rest = slice(note_frames(0.0, 0.4, FPS)[1], note_frames(3.0, 3.4, FPS)[0])
    drift = hand[rest]
    assert np.all(np.diff(drift) < 0)  # towards the rest place…
    assert drift[2] > 0.8 * hand[rest.start - 1]  # …slowly
    assert drift[-1] < 0.4


def test_trombone_positions_are_ordered_by_pitch() -> None:
    lo, hi = RANGE["trombone"]
    pitches = np.arange(lo, hi + 1)
    positions = slide_position(pitches)
    assert positions[0] == 7 and positions[-1] == 1
    assert set(positions.tolist()) == set(range(1, 8))
    assert np.all(np.diff(positions) <= 0)
    score = _legato(list(range(lo, hi + 1, 3)), 0.32)
    t = _frames(score)
    motion = TromboneRig().motion(score, np.full(t, 0.5), FPS, t)
    ends = [note_frames(n.start, n.end, FPS)[1] - 1 for n in score.notes]
    assert np.all(np.diff(motion["position"][ends]) <= 0)
    slide = motion["hand_position"][ends]
    assert np.all(np.diff(slide) <= 1e-6) and slide[0] > 0.95 and slide[-1] < 0.05
    assert np.allclose(slide, (motion["position"][ends] - 1) / 6, atol=0.02)
    # the drawn slide hand follows: it is closest to the mouth on the highest note
    take = TromboneRig().render(score, np.full(t, 0.5), Look.performer_look(0), 96, FPS, t)
    wrist = _kp(take)[ends, R_WRIST, :2]
    mouth = _kp(take)[ends, 0, :2]
    reach = np.linalg.norm(wrist - mouth, axis=-1)
    assert reach[0] > reach[-1] + 0.05
    assert np.all(np.diff(reach) < 1e-3)


def _slow_beats(score: Score) -> Score:
    """The score with beats a minute apart: the sway is still, so hands show only the bow."""
    return dataclasses.replace(score, beats=np.array([0.0, 60.0]), tempo=1.0)


@pytest.mark.parametrize("name", ["cello", "violin"])
def test_bow_changes_direction_exactly_at_onsets(name: str) -> None:
    lengths = [0.4, 0.24, 0.6, 0.32, 0.2, 0.52, 0.28, 0.44]
    starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    lo, hi = RANGE[name]
    score = _slow_beats(
        _score(
            [
                Note(lo + 7 + 2 * i, s, s + d)
                for i, (s, d) in enumerate(zip(starts, lengths, strict=True))
            ]
        )
    )
    t = _frames(score)
    loud = 0.4 + 0.5 * np.abs(np.sin(np.arange(t) / 5.0))
    rig = RIGS[name]
    motion = rig.motion(score, loud, FPS, t)
    onsets = _onset_frames(score)
    assert np.array_equal(np.flatnonzero(motion["onset"]), onsets)
    flips = np.flatnonzero(np.diff(motion["bow_direction"]) != 0) + 1
    assert np.array_equal(flips, onsets[1:])
    assert motion["bow_direction"][onsets[0]] == 1  # down-bow first
    # the bow moves the way it points, every sounding frame
    step = np.diff(motion["bow_position"])
    assert np.all(np.sign(step[onsets[0] :]) == motion["bow_direction"][onsets[0] + 1 :])
    # and so does the drawn hand: its motion along the bow reverses within a frame of onsets
    take = rig.render(score, loud, Look.performer_look(2), 128, FPS, t)
    wrist = _kp(take)[:, R_WRIST, :2].astype(np.float64)
    axis = np.linalg.svd(wrist - wrist.mean(0), full_matrices=False)[2][0]
    along = np.diff(wrist @ axis)
    sign = np.sign(along)
    reversals = np.flatnonzero(sign[1:] != sign[:-1]) + 2  # first frame of the new heading
    assert len(reversals) == len(onsets) - 1
    assert np.all(np.abs(reversals - onsets[1:]) <= 1)


@pytest.mark.parametrize("name", ["cello", "violin"])
def test_bow_moves_further_per_frame_when_louder(name: str) -> None:
    lo, _ = RANGE[name]
    score = _slow_beats(_legato([lo + 12] * 8, 0.4))
    t = _frames(score)
    loud_notes = [0.9, 0.9, 0.3, 0.3, 0.9, 0.9, 0.3, 0.3]
    loud = np.zeros(t)
    bounds = [note_frames(n.start, n.end, FPS) for n in score.notes]
    for (a, b), level in zip(bounds, loud_notes, strict=True):
        loud[a:b] = level
    rig = RIGS[name]
    motion = rig.motion(score, loud, FPS, t)
    step = np.abs(np.diff(motion["bow_position"], prepend=motion["bow_position"][0]))
    speed = motion["bow_speed"]
    is_loud = loud > 0.5
    inner = np.ones(t, bool)
    inner[[a for a, _ in bounds]] = False  # skip onset frames
    assert step[is_loud & inner].min() > 2.5 * step[~is_loud & inner].max()
    assert np.allclose(speed[inner] / loud[inner], speed[inner][0] / loud[inner][0])
    take = rig.render(score, loud, Look.performer_look(1), 128, FPS, t)
    wrist = _kp(take)[:, R_WRIST, :2]
    moved = np.linalg.norm(np.diff(wrist, axis=0, prepend=wrist[:1]), axis=-1)
    assert moved[is_loud & inner].mean() > 2.5 * moved[~is_loud & inner].mean()


def test_guitar_strikes_at_onsets_harder_when_louder() -> None:
    score = _legato([52, 55, 59, 64, 67, 71], 0.4)
    t = _frames(score)
    onsets = _onset_frames(score)
    loud = np.zeros(t)
    levels = [0.9, 0.2, 0.9, 0.2, 0.9, 0.2]
    for (a, b), level in zip([note_frames(n.start, n.end, FPS) for n in score.notes], levels,
                             strict=True):  # fmt: skip
        loud[a:b] = level
    motion = GuitarRig().motion(score, loud, FPS, t)
    strike = motion["strike"]
    peaks = np.flatnonzero((strike > np.roll(strike, 1)) & (strike >= np.roll(strike, -1)))
    assert np.array_equal(peaks, onsets)
    assert np.all(strike[onsets[::2]] > 2 * strike[onsets[1::2]])
    take = GuitarRig().render(score, loud, Look.performer_look(0), 128, FPS, t)
    wrist = _kp(take)[:, R_WRIST, :2].astype(np.float64)
    swing = np.linalg.norm(wrist - wrist[onsets[0] - 1 if onsets[0] else -1], axis=-1)
    assert swing[onsets[0]] > 0.02


@pytest.mark.parametrize("name", list(RIGS))
def test_sway_is_locked_to_the_beat(name: str) -> None:
    fps = 24.0  # 12 frames a beat at 120 bpm
    score = _legato([RANGE[name][0] + 10] * 12, 0.5)
    t = int(score.duration * fps)
    rig = RIGS[name]
    motion = rig.motion(score, np.full(t, 0.5), fps, t)
    beats = np.round(score.beats * fps).astype(int)
    assert np.allclose(motion["beat_phase"][beats], 0.0, atol=1e-9)
    assert np.allclose(motion["sway"][beats], 0.0, atol=1e-9)
    assert np.allclose(motion["sway"][beats[:-1] + 3], 1.0)  # a quarter beat on
    assert np.allclose(motion["sway"][beats[:-1] + 9], -1.0)
    take = rig.render(score, np.full(t, 0.5), Look.performer_look(3), 96, fps, t)
    lean = _kp(take)[:, NECK, 0] - _kp(take)[:, MID_HIP, 0]
    assert np.corrcoef(lean, motion["sway"])[0, 1] > 0.99


def _check_take(take: Take, t: int, size: int) -> None:
    assert take.frames.shape == (t, size, size, 3) and take.frames.dtype == np.uint8
    assert take.mask.shape == (t, size, size) and take.mask.dtype == np.uint8
    assert take.keypoints is not None
    assert take.keypoints.shape == (t, 67, 3) and take.keypoints.dtype == np.float32
    assert set(np.unique(take.mask).tolist()) <= {0, 1}
    kp = take.keypoints
    conf = kp[..., 2] > 0
    assert set(np.unique(kp[..., 2]).tolist()) <= {0.0, 1.0}
    assert np.all((kp[..., :2][conf] >= 0) & (kp[..., :2][conf] <= 1))
    assert np.all(take.mask.reshape(t, -1).sum(1) > 0.03 * size * size)
    c = max(size // 16, 2)
    for corner in (take.mask[:, :c, :c], take.mask[:, :c, -c:], take.mask[:, -c:, :c],
                   take.mask[:, -c:, -c:]):  # fmt: skip
        assert not corner.any()
    # confident body points lie on the performer's mask
    ix = np.clip((kp[..., :2] * size).astype(int), 0, size - 1)
    on = take.mask[np.arange(t)[:, None], ix[..., 1], ix[..., 0]] > 0
    assert on[:, :25][conf[:, :25]].mean() > 0.97
    assert conf[:, :25].mean() > 0.75


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("name", list(RIGS))
def test_take_shapes_mask_and_keypoints_agree(name: str, size: int) -> None:
    score = _melody(name)
    t = 40
    for index in (0, 1):
        take = RIGS[name].render(score, np.full(t, 0.6), Look.performer_look(index), size, FPS,
                                 t)  # fmt: skip
        _check_take(take, t, size)


@pytest.mark.parametrize("name", ["cello", "guitar"])
def test_points_behind_the_instrument_are_hidden(name: str) -> None:
    score = _melody(name)
    take = RIGS[name].render(score, np.full(10, 0.5), Look.performer_look(0), 128, FPS, 10)
    assert take.keypoints is not None
    assert np.all(_kp(take)[:, MID_HIP, 2] == 0)  # the instrument's body covers the lap
    assert np.all(_kp(take)[:, NECK, 2] == 1)


def test_points_off_frame_have_no_confidence() -> None:
    look = dataclasses.replace(Look.performer_look(0), shift=(0.42, 0.0))
    score = _melody("violin")
    take = ViolinRig().render(score, np.full(10, 0.5), look, 64, FPS, 10)
    assert take.keypoints is not None
    assert (_kp(take)[..., 2] == 0).any() and (_kp(take)[..., 2] == 1).any()
    assert np.all((_kp(take)[..., :2] >= 0) & (_kp(take)[..., :2] <= 1))
    hands = _kp(take)[:, 25:46]  # the left hand, off the right edge
    assert np.all(hands[..., 2] == 0)


@pytest.mark.parametrize("name", list(RIGS))
def test_same_inputs_same_take_and_looks_change_only_appearance(name: str) -> None:
    rig = RIGS[name]
    score = _melody(name)
    t = 16
    loud = np.linspace(0.2, 0.9, t)
    a = rig.render(score, loud, Look.performer_look(0), 64, 30.0, t)
    b = rig.render(score, loud, Look.performer_look(0), 64, 30.0, t)
    c = rig.render(score, loud, Look.performer_look(2), 64, 30.0, t)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.mask, b.mask)
    assert a.keypoints is not None and b.keypoints is not None
    assert np.array_equal(a.keypoints, b.keypoints)
    assert not np.array_equal(a.frames, c.frames)
    first, again = rig.motion(score, loud, 30.0, t), rig.motion(score, loud, 30.0, t)
    assert first.keys() == again.keys()
    for key in first:
        assert np.array_equal(first[key], again[key], equal_nan=True)
    # the same motion on other proportions: the instrument and bow stay where they were
    pose_a = rig.pose(first, Body.of(Look.performer_look(0)))
    pose_c = rig.pose(first, Body.of(Look.performer_look(2)))
    for key in pose_a.props:
        assert np.allclose(pose_a.props[key], pose_c.props[key])


def test_odd_inputs() -> None:
    rig = CelloRig()
    score = _melody("cello")
    empty = rig.render(score, np.zeros(0), Look.performer_look(0), 64, FPS, 0)
    assert empty.frames.shape == (0, 64, 64, 3)
    assert empty.keypoints is not None and empty.keypoints.shape == (0, 67, 3)
    # loudness shorter than the take is extended; an odd size and fps work
    take = rig.render(score, np.full(3, 0.5), Look.performer_look(1), 97, 29.97, 12)
    _check_take(take, 12, 97)
    silent = _score([Note(50, 5.0, 6.0)])
    still = rig.render(silent, np.zeros(8), Look.performer_look(1), 64, FPS, 8)
    assert still.keypoints is not None and np.isfinite(still.keypoints).all()


def test_follow_settles_in_two_frames_and_relaxes_slowly() -> None:
    target = np.array([0.0] * 3 + [1.0] * 6 + [0.0] * 6)
    active = np.array([True] * 9 + [False] * 6)
    y = follow(target, active, rest=0.5, fps=25.0)
    assert y[3] > 0.6 and y[4] > 0.85 and y[8] > 0.99
    assert 0.9 < y[9] < y[8] and np.all(np.diff(y[9:]) < 0) and y[-1] > 0.7
