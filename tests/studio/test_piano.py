"""The piano rig: the keys drawn down are exactly the score's roll, read back from pixels; the
fingers sit on the sounding keys; the hands move smoothly; the mask is the performer."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from audiovis.data.studio.rigs.base import Look, Take
from audiovis.data.studio.rigs.piano import PianoRig, hand_split, is_black
from audiovis.data.studio.score import LOWEST_KEY, NUM_KEYS, Note, Score
from audiovis.skeleton import LEFT_HAND_OFFSET, NUM_KEYPOINTS, RIGHT_HAND_OFFSET

FPS = 25.0
SECONDS = 3.6
TIPS = np.array([4, 8, 12, 16, 20])


def hand_score() -> Score:
    """Chords, a scale with a repeated note, notes shorter than a frame, black-key chords, and
    the extreme keys A0 and C8 reached by fast jumps."""
    notes: list[Note] = []
    # onsets and ends kept off the frame centres of 24.5, 25 and 30 fps
    for i, p in enumerate([60, 62, 64, 64, 65, 67, 69, 71, 72]):  # right: a scale, E repeated
        notes.append(Note(p, 0.013 + 0.2 * i, 0.013 + 0.2 * i + 0.17))
    for i, chord in enumerate([(48, 52, 55), (41, 45, 48), (43, 47, 50)]):  # left: triads
        notes += [Note(p, 0.013 + 0.6 * i, 0.6 * i + 0.55) for p in chord]
    notes += [Note(74, 1.85, 1.86), Note(50, 1.87, 1.875)]  # shorter than a frame
    notes += [Note(p, 2.0, 2.4) for p in (61, 66, 70)]  # black keys, right
    notes += [Note(p, 2.0, 2.4) for p in (37, 44)]  # black keys, left
    notes += [Note(21, 2.6, 2.9), Note(108, 2.65, 2.95)]  # A0 and C8
    notes += [Note(45, 3.0, 3.3), Note(72, 3.02, 3.3), Note(72, 3.3, 3.5)]  # back, repeated C5
    notes.sort(key=lambda n: (n.start, n.pitch))
    return Score("hand_made", notes, beats=np.arange(0.0, SECONDS, 0.5))


SCORE = hand_score()
NUM_FRAMES = int(SECONDS * FPS)
RIG = PianoRig()
LOOK = Look.performer_look(0)


def render(size: int, look: Look = LOOK, fps: float = FPS, score: Score = SCORE) -> Take:
    return RIG.render(score, np.zeros(NUM_FRAMES), look, size, fps, int(SECONDS * fps))


@pytest.fixture(scope="module")
def take128() -> Take:
    return render(128)


def test_shapes_and_dtypes(take128: Take) -> None:
    t = NUM_FRAMES
    assert take128.frames.shape == (t, 128, 128, 3) and take128.frames.dtype == np.uint8
    assert take128.mask.shape == (t, 128, 128) and take128.mask.dtype == np.uint8
    assert set(np.unique(take128.mask)) <= {0, 1}
    kp = take128.keypoints
    assert kp is not None and kp.shape == (t, NUM_KEYPOINTS, 3) and kp.dtype == np.float32
    assert take128.pose3d is None
    hands = np.r_[LEFT_HAND_OFFSET : LEFT_HAND_OFFSET + 42]
    assert np.all(kp[:, hands, 2] == 1) and np.all(
        (kp[:, hands, :2] >= 0) & (kp[:, hands, :2] <= 1)
    )
    body = np.setdiff1d(np.arange(25), [4, 7])
    assert np.all(kp[:, body] == 0)
    np.testing.assert_array_equal(kp[:, 4], kp[:, RIGHT_HAND_OFFSET])
    np.testing.assert_array_equal(kp[:, 7], kp[:, LEFT_HAND_OFFSET])
    assert RIG.name == "piano"


def test_key_boxes_follow_the_keyboard_pattern() -> None:
    for size in (64, 128, 256):
        boxes = RIG.key_boxes(size)
        assert boxes.shape == (NUM_KEYS, 4)
        black = np.array([is_black(LOWEST_KEY + k) for k in range(NUM_KEYS)])
        assert black.sum() == 36 and not black[0] and black[1] and not black[-1]
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= size)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        white = boxes[~black]
        assert np.all(white[1:, 0] == white[:-1, 2])  # white keys tile the keyboard
        # every key right of the one below it (at 64 px a black key may take the one column
        # of its white neighbour, in the black keys' rows)
        centres = np.diff(boxes[:, 0] + boxes[:, 2])
        assert np.all(centres > 0) if size >= 128 else np.all(centres >= 0)
        assert np.all(boxes[black, 3] < white[0, 3])  # black keys are shorter
        width = white[-1, 2] - white[0, 0]
        assert 0.85 * size <= width < size


def expected_roll(score: Score, fps: float, num_frames: int) -> np.ndarray:
    """The roll from the notes' definition, before re-strikes' gaps: a key is down on every
    frame whose centre lies in one of its notes; a note shorter than that marks the frame of
    its onset."""
    roll = np.zeros((num_frames, NUM_KEYS), np.uint8)
    centres = (np.arange(num_frames) + 0.5) / fps
    for n in score.notes:
        hit = (centres >= n.start) & (centres < n.end)
        if not hit.any():
            hit[int(n.start * fps)] = True
        roll[hit, n.pitch - LOWEST_KEY] = 1
    return roll


def onset_frame(note: Note, fps: float) -> int:
    first, last = int(np.ceil(note.start * fps - 0.5)), int(np.ceil(note.end * fps - 0.5))
    return first if last > first else int(note.start * fps)


@pytest.mark.parametrize("fps", [FPS, 30.0, 24.5])
def test_roll_matches_the_notes(fps: float) -> None:
    t = int(SECONDS * fps)
    roll = SCORE.roll(fps, t)
    full = expected_roll(SCORE, fps, t)
    onsets = {(onset_frame(n, fps), n.pitch - LOWEST_KEY) for n in SCORE.notes}
    # the roll is the notes' frames but for one frame up before each re-strike of a held key
    gaps = np.argwhere(full > roll)
    assert not (roll > full).any()
    assert all((f + 1, k) in onsets and full[f - 1, k] for f, k in gaps.tolist())
    restruck = [(f, k) for f, k in onsets if f >= 2 and full[f - 1, k] and full[f - 2, k]
                and (f - 1, k) not in onsets]  # fmt: skip
    assert restruck and all(roll[f - 1, k] == 0 for f, k in restruck)
    for n in SCORE.notes:  # every note is seen: its onset's frame is down
        assert roll[onset_frame(n, fps), n.pitch - LOWEST_KEY]
    assert roll[:, 0].any() and roll[:, -1].any()  # A0 and C8


@pytest.mark.parametrize(("size", "performer", "fps"),
                         [(128, 0, FPS), (128, 2, 30.0), (256, 1, FPS), (64, 3, FPS)])  # fmt: skip
def test_pressed_keys_read_back_exactly(size: int, performer: int, fps: float) -> None:
    look = Look.performer_look(performer)
    take = render(size, look, fps)
    roll = SCORE.roll(fps, len(take.frames)).astype(bool)
    np.testing.assert_array_equal(RIG.pressed_from_pixels(take.frames, look), roll)
    t = int(np.flatnonzero(roll.sum(axis=1) >= 3)[0])  # one frame alone, too
    np.testing.assert_array_equal(RIG.pressed_from_pixels(take.frames[t], look), roll[t])


def test_pressed_keys_look_different(take128: Take) -> None:
    """A pressed key's pixels change over its whole box, not just at the probe."""
    roll = SCORE.roll(FPS, NUM_FRAMES).astype(bool)
    boxes = RIG.key_boxes(128, LOOK)
    idle = np.flatnonzero(~roll.any(axis=1))
    t, k = map(int, np.argwhere(roll)[0])
    x0, y0, x1, y1 = boxes[k]
    y1 = y0 + (y1 - y0) // 3  # the far end: no hand there
    if len(idle):
        base = take128.frames[idle[0], y0:y1, x0:x1].astype(int)
    else:
        base = render(128, LOOK, score=Score("empty", [], np.zeros(0))).frames[0, y0:y1, x0:x1]
    diff = np.abs(take128.frames[t, y0:y1, x0:x1].astype(int) - base).sum(-1)
    assert (diff > 40).mean() > 0.5


def test_fingertips_on_single_notes(take128: Take) -> None:
    kp = take128.keypoints
    assert kp is not None
    roll = SCORE.roll(FPS, NUM_FRAMES).astype(bool)
    boxes = RIG.key_boxes(128, LOOK)
    split = hand_split(SCORE.notes) - LOWEST_KEY
    assert split == 60 - LOWEST_KEY
    checked = 0
    for offset, keys in ((LEFT_HAND_OFFSET, np.arange(split)),
                         (RIGHT_HAND_OFFSET, np.arange(split, NUM_KEYS))):  # fmt: skip
        for t in range(NUM_FRAMES):
            down = keys[roll[t, keys]]
            if len(down) != 1:
                continue
            x0, _, x1, _ = boxes[down[0]]
            tips_x = kp[t, offset + TIPS, 0] * 128
            assert np.any((tips_x >= x0) & (tips_x <= x1)), (t, down[0] + LOWEST_KEY, tips_x)
            checked += 1
    assert checked > 20


def test_hands_move_smoothly(take128: Take) -> None:
    """Wrists move at most 2.5 white keys a frame, except in the half second before an onset
    for which the hand moves more than 6 white keys (a jump); even a jump is spread over
    frames, no one frame taking more than half of it unless the onsets are 2 frames apart."""
    kp = take128.keypoints
    assert kp is not None
    boxes = RIG.key_boxes(128, LOOK)
    white = (boxes[-1, 2] - boxes[0, 0]) / 52
    window = round(0.5 * FPS)
    split = hand_split(SCORE.notes)
    for offset, lo, hi in ((LEFT_HAND_OFFSET, 0, split), (RIGHT_HAND_OFFSET, split, 128)):
        wrist = kp[:, offset, :2] * 128
        step = np.linalg.norm(np.diff(wrist, axis=0), axis=1)  # frame t → t + 1
        onsets = sorted({int(np.ceil(n.start * FPS - 0.5)) for n in SCORE.notes
                         if lo <= n.pitch < hi})  # fmt: skip
        moves = [(a, f, abs(wrist[f, 0] - wrist[a, 0])) for a, f in pairwise(onsets)]
        jumps = [(a, f, d) for a, f, d in moves if d > 6 * white]
        assert jumps, "the score has jumps in both hands"
        for t in np.flatnonzero(step > 2.5 * white):
            assert any(0 <= f - (t + 1) <= window for _, f, _ in jumps), (offset, t, step[t])
        for a, f, travel in jumps:
            if f - a > 2:
                assert step[max(a, f - window - 1) : f].max() <= 0.5 * travel + 1e-3
        assert np.median(step) < 0.5  # mostly still: the hand waits on its keys


def test_mask_covers_the_hands_only(take128: Take) -> None:
    kp = take128.keypoints
    assert kp is not None
    size = 128
    boxes = RIG.key_boxes(size, LOOK)
    white = (boxes[-1, 2] - boxes[0, 0]) / 52
    hands = np.r_[LEFT_HAND_OFFSET : LEFT_HAND_OFFSET + 42]
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    for t in range(0, NUM_FRAMES, 3):
        mask = take128.mask[t]
        pts = kp[t, hands, :2] * size
        cols = np.clip(pts[:, 0].astype(int), 0, size - 1)
        rows = np.clip(pts[:, 1].astype(int), 0, size - 1)
        assert mask[rows, cols].all(), t
        # none above the fingertips; above the wrists only near the hand points
        assert not mask[: int(pts[:, 1].min()) - 1].any()
        above = ys < pts[[0, 21], 1].min()
        near = np.zeros((size, size), bool)
        for x, y in pts:
            near |= np.hypot(xs - x, ys - y) < 3 * white + 2
        assert not (mask.astype(bool) & above & ~near).any(), t
        assert mask[int(pts[:, 1].max()) :].any()  # the arms, below the wrists


def test_hands_leave_the_probes_alone(take128: Take) -> None:
    """Rows above the hands' fingertips are the keyboard alone: the probes are never covered."""
    kp = take128.keypoints
    assert kp is not None
    hands = np.r_[LEFT_HAND_OFFSET : LEFT_HAND_OFFSET + 42]
    top = int((kp[:, hands, 1] * 128).min())
    boxes = RIG.key_boxes(128, LOOK)
    black = np.array([is_black(LOWEST_KEY + k) for k in range(NUM_KEYS)])
    probe_bottom = boxes[black, 1].min() + (boxes[black, 3] - boxes[black, 1]).min() // 3
    assert top > probe_bottom
    assert not take128.mask[:, : top - 1].any()


def test_deterministic(take128: Take) -> None:
    again = render(128)
    np.testing.assert_array_equal(again.frames, take128.frames)
    np.testing.assert_array_equal(again.mask, take128.mask)
    assert again.keypoints is not None and take128.keypoints is not None
    np.testing.assert_array_equal(again.keypoints, take128.keypoints)


def test_looks_change_framing_and_colours() -> None:
    a, b = Look.performer_look(0), Look.performer_look(1)
    boxes_a, boxes_b = RIG.key_boxes(128, a), RIG.key_boxes(128, b)
    assert not np.array_equal(boxes_a, boxes_b)
    for boxes in (boxes_a, boxes_b):  # the keyboard always fits left to right
        assert boxes[:, 0].min() >= 0 and boxes[:, 2].max() <= 128
    frame = render(128, b).frames[0]
    assert tuple(frame[0, 0]) == b.background and tuple(frame[-1, 0]) == b.background


def test_one_handed_score_and_empty_take() -> None:
    melody = [Note(p, 0.25 * i, 0.25 * i + 0.2) for i, p in enumerate(range(62, 86, 2))]
    score = Score("melody", melody, beats=np.arange(0.0, 3.0, 0.5))
    split = hand_split(melody)
    assert 62 < split < 86  # both hands share a wide one-sided melody
    take = RIG.render(score, np.zeros(75), LOOK, 96, FPS, 75)
    roll = score.roll(FPS, 75).astype(bool)
    np.testing.assert_array_equal(RIG.pressed_from_pixels(take.frames, LOOK), roll)
    tiny = RIG.render(score, np.zeros(10), LOOK, 32, FPS, 10)  # coarse, but drawn
    assert tiny.frames.shape == (10, 32, 32, 3) and tiny.mask.any()
    empty = RIG.render(score, np.zeros(0), LOOK, 64, FPS, 0)
    assert empty.frames.shape == (0, 64, 64, 3) and empty.mask.shape == (0, 64, 64)
    assert empty.keypoints is not None and empty.keypoints.shape == (0, NUM_KEYPOINTS, 3)


def test_keyboard_alone_without_the_hands(take128: Take) -> None:
    bare = PianoRig().render(SCORE, np.zeros(NUM_FRAMES), LOOK, 128, FPS, NUM_FRAMES, hands=False)
    assert not bare.mask.any()
    np.testing.assert_array_equal(bare.keypoints, take128.keypoints)  # the hands that would play
    # every pixel the hands covered shows the keyboard again; a pixel further than one from
    # them (past the hands' antialiased edge) is the drawn take's
    from scipy import ndimage

    changed = (bare.frames != take128.frames).any(-1)
    assert changed[take128.mask > 0].all()
    near = np.stack([ndimage.binary_dilation(m, iterations=1) for m in take128.mask])
    assert not changed[~near].any()
    # the keys still read back exactly, now without a hand in the way
    roll = PianoRig().pressed_from_pixels(bare.frames, LOOK)
    np.testing.assert_array_equal(roll, SCORE.roll(FPS, NUM_FRAMES))
