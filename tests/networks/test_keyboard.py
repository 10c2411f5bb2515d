"""The piano key geometry and press map a video generator draws pressed keys with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiovis.models.audeo import locate_key_columns, locate_keyboard
from audiovis.networks.keyboard import (
    IS_BLACK,
    KeyPressNet,
    draw_keys,
    key_rects,
    onset_targets,
    render_presses,
)


def _studio_piano(size: int, performer: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame (1, H, W, 3) of the studio's piano under a performer's look and the exact key
    boxes (88, 4) in pixels the rig drew."""
    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.data.studio.score import Note, Score

    score = Score(name="one", notes=[Note(60, 0.0, 0.2)], beats=np.arange(0.0, 1.0, 0.5))
    look, rig = Look.performer_look(performer), PianoRig()
    take = rig.render(score, np.full(1, 0.5), look, size, 25.0, 1)
    return take.frames, rig.key_boxes(size, look)


@pytest.mark.parametrize("performer", [0, 3, 6])
def test_key_rects_of_a_located_keyboard_fall_on_the_keys_the_studio_drew(performer: int) -> None:
    frames, boxes = _studio_piano(128, performer)
    located = torch.from_numpy(locate_key_columns(frames)).float()[None]  # (1, 40)
    truth = (boxes[:, 0] + boxes[:, 2]) / 2
    errors = {}
    for name, keys in (("box", located[:, :4]), ("measured", located)):
        rects = key_rects(keys)[0].numpy() * 128  # (88, 4) pixels
        errors[name] = np.abs((rects[:, 0] + rects[:, 2]) / 2 - truth)
    # every white key within half a pixel whatever the look (a box of whole pixels puts some
    # 0.75 off); black keys, which the rig snaps to whole columns, within 0.85 from the box's
    # geometry and 0.5 where measured (a black key is 1.3 px wide)
    assert errors["box"][~IS_BLACK].max() <= 0.5 and errors["box"][IS_BLACK].max() <= 0.85
    assert errors["measured"][IS_BLACK].max() <= 0.5
    assert np.array_equal(errors["measured"][~IS_BLACK], errors["box"][~IS_BLACK])
    # black keys are the short ones, behind a strip of the white keys as the rig draws them
    assert (rects[IS_BLACK, 3] < rects[~IS_BLACK, 3].min()).all()
    assert np.abs(rects[IS_BLACK, 1] - boxes[IS_BLACK, 1]).max() <= 1.0
    assert (rects[IS_BLACK, 1] > rects[~IS_BLACK, 1].max() + 1).all()
    # the box is locate_keyboard's, refined within a pixel at each end
    x, y, w, h = locate_keyboard(frames)
    rx, ry, rw, rh = located[0, :4].tolist()
    assert (ry, rh) == pytest.approx((y, h)) and abs(rx - x) * 128 <= 1.0
    assert abs(rx + rw - x - w) * 128 <= 1.0
    with pytest.raises(ValueError, match="keys of width 4"):
        key_rects(located[:, :10])


def test_fit_key_columns_recovers_a_keyboard_between_pixels() -> None:
    from audiovis.networks.keyboard import fit_key_columns

    x, w = 10.3, 110.65  # the truth: the darkness its black keys give each of 128 columns
    rects = key_rects(torch.tensor([[x, 0.0, w, 1.0]], dtype=torch.float64) / 128)[0] * 128
    lo, hi = rects[IS_BLACK, 0].numpy()[:, None], rects[IS_BLACK, 2].numpy()[:, None]
    cols = np.arange(128.0)
    darkness = np.clip(np.minimum(hi, cols + 1) - np.maximum(lo, cols), 0, 1).sum(0)
    fx, fw = fit_key_columns(darkness, 10.0, 111.0)  # found a pixel off at each end
    assert fx == pytest.approx(x, abs=0.03) and fw == pytest.approx(w, abs=0.06)


def test_press_map_marks_exactly_the_pressed_keys() -> None:
    keys = torch.tensor([[0.0, 0.25, 1.0, 0.25]])  # the keyboard spans the frame's width
    rects = key_rects(keys)
    probs = torch.zeros(1, 2, 88)
    probs[0, 0, 39] = 1.0  # C4, white; frame 1: C#4, black
    probs[0, 1, 40] = 1.0
    maps = render_presses(probs, rects, 104)  # 2 px per white key
    assert maps.shape == (1, 2, 2, 104, 104) and maps.min() >= 0 and maps.max() <= 1
    white, black = maps[0, 0, 0], maps[0, 1, 1]
    assert maps[0, 0, 1].max() < 1e-3 and maps[0, 1, 0].max() < 1e-3  # the other channel: off
    cols = (white[48] > 0.05).nonzero().flatten()  # a row below the black keys: the whole white key
    x0 = 23 * 2  # C4 is the 24th white key (A0 = the first)
    assert white[48, x0 : x0 + 2].min() > 0.5 and white[48].sum() == pytest.approx(2, abs=0.3)
    assert cols.min() >= x0 - 1 and cols.max() <= x0 + 2
    # under the black key C#4 the white key C4 is cut away; above the keyboard nothing is on
    assert white[30, x0 + 1] < 0.5 and white[10].max() < 1e-3
    assert black[30].argmax() in (x0 + 1, x0 + 2) and black[48].max() < 1e-3


def test_key_press_net_maps_each_frame_to_88_logits_starting_with_keys_up() -> None:
    net = KeyPressNet(audio_dim=12)
    logits = net(torch.randn(3, 7, 12)).down
    assert logits.shape == (3, 7, 88)
    assert torch.sigmoid(logits).mean() < 0.2


def test_pitch_key_head_recognises_a_note_shifted_in_pitch_on_the_shifted_key() -> None:
    torch.manual_seed(0)
    net = KeyPressNet(audio_dim=84, first_key=3)  # a CQT from C1 (key 3) at 12 bins/octave
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape) * 0.3)
    note = torch.zeros(1, 9, 84)
    for harmonic in (0, 12, 19, 24):  # a note's partials on bin 30 (key 33) at frames 3..5
        note[0, 3:6, 30 + harmonic] = 1.0 / (1 + harmonic / 12)
    up = torch.roll(note, 7, dims=2)  # the same note 7 semitones higher
    a, b = net(note).down, net(up).down
    assert a.shape == (1, 9, 88)
    # the same detector reads every key: key 33's logits reappear on key 40
    torch.testing.assert_close(b[0, :, 40], a[0, :, 33])
    assert not torch.allclose(a[0, :, 40], a[0, :, 33])
    # keys below the first bin (A0-B0) and above the last take one learned logit
    assert torch.equal(a[0, :, :3], net.outside.expand(9, 3))
    assert torch.equal(a[0, :, 87:], net.outside.expand(9, 1))


def test_onset_targets_mark_each_stroke_including_a_re_struck_key() -> None:
    roll = torch.zeros(1, 7, 3)
    roll[0, [1, 2, 4, 5], 0] = 1  # struck at 1, up on 3 (the frame before its re-stroke), 4
    roll[0, :, 1] = 1  # held through the clip: no stroke the clip can tell
    roll[0, 6, 2] = 1  # struck on the last frame
    expected = torch.zeros(1, 6, 3)  # frames 1..6
    expected[0, [0, 3], 0] = 1
    expected[0, 5, 2] = 1
    assert torch.equal(onset_targets(roll), expected)


def test_draw_keys_lifts_a_held_key_on_the_frame_before_its_stroke() -> None:
    down = torch.full((1, 8, 4), 0.1)
    onset = torch.full((1, 8, 4), 0.05)
    down[0, :, 0] = 0.9  # key 0: sure it is down throughout, struck again at frame 4
    onset[0, 4, 0], onset[0, 5, 0] = 0.8, 0.6
    onset[0, 2:4, 1] = 0.7  # key 1: a two-frame plateau of stroke, the key itself unsure
    onset[0, 6, 2] = 0.4  # key 2: a stroke below the threshold draws nothing
    down[0, 5:, 3] = 0.7  # key 3: down from 5 with no stroke seen
    drawn = draw_keys(down, onset, 0.5)
    expected = torch.zeros(1, 8, 4)
    expected[0, :, 0] = torch.tensor([1, 1, 1, 0, 1, 1, 1, 1.0])
    expected[0, 3, 1] = 1  # struck once, on the plateau's later frame
    expected[0, 5:, 3] = 1
    assert torch.equal(drawn, expected)
    # without onsets: the threshold alone, the held key never rises
    plain = draw_keys(down, None, 0.5)
    assert torch.equal(plain, (down >= 0.5).float()) and plain[0, :, 0].min() == 1


def test_key_press_net_reads_strokes_beside_the_keys_with_the_same_pitch_detector() -> None:
    torch.manual_seed(0)
    for first_key in (None, 3):
        net = KeyPressNet(audio_dim=84, first_key=first_key, onsets=True)
        out = net(torch.randn(2, 9, 84))
        assert out.down.shape == out.onset.shape == (2, 9, 88)  # type: ignore[union-attr]
        # strokes start rarer than keys down
        assert torch.sigmoid(out.onset).mean() < torch.sigmoid(out.down).mean() < 0.2  # type: ignore[arg-type]
        assert KeyPressNet(audio_dim=84, first_key=first_key)(torch.randn(1, 9, 84)).onset is None
    # a checkpoint of a head without onsets keeps its parameter names
    plain = KeyPressNet(audio_dim=84, first_key=3).state_dict()
    assert set(plain) < set(net.state_dict()) and "outside_onset" in net.state_dict()
    note = torch.zeros(1, 9, 84)
    note[0, 3:6, 30] = 1.0
    up = torch.roll(note, 7, dims=2)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape) * 0.3)
    a, b = net(note).onset, net(up).onset
    assert a is not None and b is not None
    torch.testing.assert_close(b[0, :, 40], a[0, :, 33])
