"""Audeo: network shapes, crops and sampler, roll → notes → MIDI round trip, checkpoints, and
both models through the real CLI."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from audiovis.errors import AudiovisError, FileProblem
from audiovis.models.audeo import (
    BalancedMultilabelSampler,
    Roll2Midi,
    Video2Roll,
    _partners,
    clean_roll,
    crop_box,
    key_mix,
    keyboard_crops,
    load_roll2midi,
    load_video2roll,
    locate_keyboard,
    stack_context,
    transcribe,
)
from audiovis.music import midi_to_roll, roll_to_midi, roll_to_notes
from audiovis.networks.audeo import PatchDiscriminator, Roll2MidiGenerator, Video2RollNet
from tests.conftest import CONF, assert_ok, run_cli

TINY_V2R = dict(key_offset=0, num_keys=88, input_size=(16, 64), keyboard_box=(0.0, 0.0, 1.0, 1.0),
                width=8, sample_rate=8000)  # fmt: skip


def save_video2roll(path: Path, **overrides: Any) -> Path:
    """A tiny untrained Video2Roll checkpoint, as Lightning writes its two keys we read."""
    torch.manual_seed(0)
    model = Video2Roll(**{**TINY_V2R, **overrides})
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.config)}, path)
    return path


def save_roll2midi(path: Path, video2roll: Path) -> Path:
    model = Roll2Midi(video2roll_checkpoint=str(video2roll), window=20, base=4)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


# ------------------------------------------------------------------------------- networks


@pytest.mark.parametrize(("size", "keys"), [((100, 900), 51), ((32, 128), 88), ((17, 75), 51)])
def test_video2roll_net_shapes(size: tuple[int, int], keys: int) -> None:
    net = Video2RollNet(num_keys=keys, width=8)
    assert net(torch.rand(2, 5, *size)).shape == (2, keys)


def test_video2roll_net_is_resnet18_sized() -> None:
    net = Video2RollNet(num_keys=51)
    assert net.stem[0].weight.shape == (64, 5, 11, 11)  # 5 stacked frames, 11x11 stride-2 stem
    assert net.layer4[-1].conv2.weight.shape == (512, 512, 3, 3)
    assert len(net.layer1) == len(net.layer4) == 2


def test_video2roll_net_position_heads() -> None:
    net = Video2RollNet(num_keys=88, in_frames=15, width=8, head_grid=(1, 6),
                        detector=(4, 2, 48))  # fmt: skip
    assert net(torch.rand(2, 15, 32, 192)).shape == (2, 88)
    assert net.fc.in_features == 16 * 6 and net.detector_fc.in_features == 4 * 2 * 48
    # the heads keep where things are: a bright patch moved along the keyboard changes the
    # keys, which the original's global average (no head) can only tell by the channels
    net.eval()
    x = torch.zeros(2, 15, 32, 192)
    x[0, :, :, 10:20], x[1, :, :, 170:180] = 1.0, 1.0
    logits = net(x)
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)


def test_residual_roll2midi_starts_as_its_input() -> None:
    gen = Roll2MidiGenerator(base=4, residual=True).eval()
    x = torch.rand(2, 1, 88, 20)
    assert torch.allclose(gen(x), x, atol=1e-3)  # an untrained refiner changes nothing
    assert not torch.allclose(Roll2MidiGenerator(base=4).eval()(x), x, atol=0.1)


def test_roll2midi_networks_keep_the_grid() -> None:
    gen, disc = Roll2MidiGenerator(base=4), PatchDiscriminator(base=4)
    x = torch.rand(2, 1, 51, 100)
    out = gen(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert disc(out).shape == (2, 1, 7, 13)  # the original's PatchGAN grid for 51 x 100
    assert Roll2MidiGenerator(base=64).down6.block[0].weight.shape[0] == 1024


# ---------------------------------------------------------------------- crops and sampler


def test_keyboard_crops_cut_the_box_and_turn_grey() -> None:
    video = -torch.ones(3, 3, 40, 80)  # black frames in [-1, 1]
    video[:, :, 10:20, 40:80] = 1.0  # white right half of the box rows
    crops = keyboard_crops(video, (0.0, 0.25, 1.0, 0.25), (10, 80))
    assert crops.shape == (3, 10, 80)
    assert crops[:, :, :38].max() < 0.05 and crops[:, :, 42:].min() > 0.95
    byte = keyboard_crops(((video + 1) * 127.5).to(torch.uint8), (0.0, 0.25, 1.0, 0.25),
                          (10, 80), value_range="byte")  # fmt: skip
    assert torch.allclose(byte, crops, atol=1e-2)


def test_keyboard_crops_in_colour() -> None:
    video = torch.zeros(2, 3, 40, 80, dtype=torch.uint8)
    video[:, 2, 10:20, :] = 255  # a blue band: greyscale keeps only 0.114 of it
    crops = keyboard_crops(video, (0.0, 0.25, 1.0, 0.25), (10, 80), "byte", colour=True)
    assert crops.shape == (2, 3, 10, 80)
    assert crops[:, 2].min() > 0.95 and crops[:, :2].max() < 0.05
    grey = keyboard_crops(video, (0.0, 0.25, 1.0, 0.25), (10, 80), "byte")
    assert grey.shape == (2, 10, 80) and abs(grey.mean().item() - 0.114) < 0.01
    # colour stacks hold the 5 frames' RGB one after the other
    stacks = stack_context(torch.arange(4.0)[:, None, None, None].expand(4, 3, 2, 2),
                           torch.tensor([1]))  # fmt: skip
    assert stacks.shape == (1, 15, 2, 2)
    assert stacks[0, :, 0, 0].tolist() == [0.0] * 6 + [1.0] * 3 + [2.0] * 3 + [3.0] * 3


# ------------------------------------------------------------------- keyboard registration

WHITE = np.array([(k + 9) % 12 not in (1, 3, 6, 8, 10) for k in range(88)])


def _piano(size: int, performer: int, frames: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) of the studio's piano under a performer's look, hands playing
    across the keyboard, and the exact key boxes (88, 4) the rig drew."""
    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.data.studio.score import Note, Score

    notes = [Note(21 + (29 * i) % 88, 0.04 * i, 0.04 * i + 0.1) for i in range(frames)]
    score = Score(name="spread", notes=notes, beats=np.arange(0.0, 1.0, 0.5))
    look, rig = Look.performer_look(performer), PianoRig()
    take = rig.render(score, np.full(frames, 0.5), look, size, 25.0, frames)
    return take.frames, rig.key_boxes(size, look)


@pytest.mark.parametrize("size", [64, 128])
def test_locate_keyboard_finds_the_keys_under_every_look(size: int) -> None:
    """The located box is the keys' outer edges the rig drew, within a pixel, whatever the
    look's zoom and framing (the keyboard moves by several keys between looks)."""
    lefts = []
    for performer in range(5):
        frames, boxes = _piano(size, performer)
        truth = np.array([boxes[0, 0], boxes[WHITE, 1].min(), boxes[87, 2], boxes[WHITE, 3].max()])
        for video in (frames, frames[2:3]):  # several frames (their median) or a single one
            x, y, w, h = locate_keyboard(video)
            got = np.array([x, y, x + w, y + h]) * size
            assert np.abs(got - truth).max() <= 1.0, (performer, got, truth)
        lefts.append(truth[0])
        # the same from tensors as batches hold them, (T, 3, H, W) in [-1, 1]
        signed = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
        assert np.allclose(locate_keyboard(signed, "signed"), locate_keyboard(frames), atol=1e-6)
    assert max(lefts) - min(lefts) >= 2  # the looks do move the keyboard


def test_locate_keyboard_without_a_keyboard_is_one_error(tmp_path: Path) -> None:
    blank = np.full((3, 64, 64, 3), 200, np.uint8)
    with pytest.raises(AudiovisError, match="no piano keyboard found"):
        locate_keyboard(blank)
    noise = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(FileProblem, match="clip.mp4.*no piano keyboard found"):
        locate_keyboard(noise, name=tmp_path / "clip.mp4")


def test_auto_box_puts_each_key_at_the_same_crop_position() -> None:
    """With keyboard_box "auto" a key lands on the same crop column under every look (to a
    crop pixel), where the fixed box moves it by several pixels; the crop spans the model's
    key range only."""
    model = Video2Roll(**{**TINY_V2R, "keyboard_box": "auto", "input_size": (16, 96)})
    narrow = Video2Roll(**{**TINY_V2R, "keyboard_box": "auto", "key_offset": 15, "num_keys": 51})
    fixed = Video2Roll(**{**TINY_V2R, "keyboard_box": (0.0, 0.2, 1.0, 0.45)})
    auto_cols, fixed_cols = [], []
    for performer in range(4):
        frames, boxes = _piano(128, performer)
        video = torch.from_numpy(frames).permute(0, 3, 1, 2)
        centres = (boxes[:, 0] + boxes[:, 2]) / 2 / 128  # each key's centre, frame fractions
        for m, cols in ((model, auto_cols), (fixed, fixed_cols)):
            x, _, w, _ = m.box_for(video, "byte")
            cols.append((centres - x) / w * m.input_size[1])  # crop columns of the keys
        x, _, w, _ = narrow.box_for(video, "byte")
        first, last = (centres[[15, 65]] - x) / w  # the range's keys fill the narrow crop
        assert 0 < first < 0.05 and 0.95 < last < 1, (first, last)
        assert model.crops(video, value_range="byte").shape == (5, 16, 96)
    # a key's spread over the looks, in crop pixels: under a white key's width (96 / 52) and
    # mostly the rig's own rounding of key edges to whole frame pixels, against several keys
    auto_spread, fixed_spread = np.ptp(np.stack(auto_cols), 0), np.ptp(np.stack(fixed_cols), 0)
    assert auto_spread.max() < 1.5 and np.median(auto_spread) < 0.8, auto_spread
    assert fixed_spread.max() >= 3.0
    assert crop_box((0.0, 0.0, 1.0, 0.9)) == (0.0, 0.0, 1.0, 1.0)  # clipped to the frame


def test_auto_box_trains_and_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A training step locates each sample's keyboard in its 5 frames, or under a trainer
    once per performance (the same boxes); the "auto" option survives the checkpoint;
    anything else than a box or "auto" is one error."""
    import audiovis.models.audeo as audeo

    clips = []
    for performer in (1, 3):  # two looks: the keyboard sits elsewhere in each
        frames, _ = _piano(64, performer)
        clips.append(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1)
    video = torch.stack([clips[0], clips[1], clips[0].flip(0), clips[1].flip(0)])
    batch = {"video": video, "roll": torch.zeros(4, 5, 88)}
    model = Video2Roll(**{**TINY_V2R, "keyboard_box": "auto"}).eval()
    loss = model.training_step(batch, 0)
    assert torch.isfinite(loss)
    with torch.no_grad():
        each, _ = model._step(batch)
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> tuple[float, float, float, float]:
        calls.append(1)
        return locate_keyboard(*args, **kwargs)

    monkeypatch.setattr(audeo, "locate_keyboard", counted)
    model._trainer = types.SimpleNamespace(state=types.SimpleNamespace(stage="train"))  # type: ignore[assignment]
    with torch.no_grad():
        cached, _ = model._step({**batch, "performance": torch.tensor([0, 1, 0, 1])})
        model._step({**batch, "performance": torch.tensor([1, 0, 1, 0])})
    assert len(calls) == 2  # one per performance, not per sample or batch
    assert len(set(model._boxes.values())) == 2
    torch.testing.assert_close(cached, each)
    path = save_video2roll(tmp_path / "auto.ckpt", keyboard_box="auto")
    assert load_video2roll(path).keyboard_box == "auto"
    with pytest.raises(AudiovisError, match='or "auto"'):
        Video2Roll(keyboard_box="find")  # type: ignore[arg-type]


def test_stack_context_repeats_the_edges() -> None:
    crops = torch.arange(6.0)[:, None, None].expand(6, 2, 2)
    stacks = stack_context(crops, torch.tensor([0, 3, 5]))
    assert stacks[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [1, 2, 3, 4, 5], [3, 4, 5, 5, 5]]


def test_balanced_sampler_evens_out_rare_keys() -> None:
    labels = np.zeros((1000, 3), np.uint8)
    labels[:900, 0] = 1  # common key
    labels[900:990, 1] = 1  # rare key; 10 silent frames
    drawn = np.array(list(BalancedMultilabelSampler(labels, 3000, seed=0)))
    rare, silent = (drawn >= 900) & (drawn < 990), drawn >= 990
    assert abs(rare.mean() - 1 / 3) < 0.05 and abs(silent.mean() - 1 / 3) < 0.05


# ------------------------------------------------------------------------------ roll → MIDI


def test_roll_notes_midi_round_trip() -> None:
    roll = np.zeros((50, 88), np.uint8)
    roll[0:10, 39] = 1  # middle C, 0.0-0.4 s
    roll[12:13, 39] = 1  # a one-frame repeat
    roll[5:30, 43] = 1
    roll[40:50, 87] = 1  # the top key, held to the end
    notes = roll_to_notes(roll, fps=25)
    assert [(n.pitch, n.start, n.end) for n in notes] == [
        (60, 0.0, 0.4), (64, 0.2, 1.2), (60, 0.48, 0.52), (108, 1.6, 2.0)]  # fmt: skip
    assert all(n.velocity == 100 for n in notes)
    midi = roll_to_midi(roll, fps=25, program=40)
    assert midi.instruments[0].program == 40
    np.testing.assert_array_equal(midi_to_roll(midi, 25, 50), roll)
    assert len(roll_to_notes(roll, 25, min_frames=2)) == 3  # the blip is dropped


def test_velocity_from_confidence() -> None:
    probs = np.zeros((10, 88), np.float32)
    probs[0:4, 10], probs[5:9, 20] = 0.5, 1.0
    loud = {n.pitch: n.velocity for n in roll_to_notes(probs, 25, threshold=0.5, velocity=None)}
    assert loud == {31: 40, 41: 120}


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoints_load_and_refuse_others(tmp_path: Path) -> None:
    v2r_path = save_video2roll(tmp_path / "v2r.ckpt")
    r2m_path = save_roll2midi(tmp_path / "r2m.ckpt", v2r_path)
    v2r = load_video2roll(v2r_path)
    r2m = load_roll2midi(r2m_path, v2r)
    assert r2m.num_keys == 88 and r2m.window == 20
    crops = torch.rand(33, 16, 64)
    out = transcribe(crops, v2r, r2m)
    assert out["probabilities"].shape == out["refined"].shape == out["roll"].shape == (33, 88)
    with pytest.raises(FileProblem, match="not a Video2Roll checkpoint"):
        load_video2roll(r2m_path)
    with pytest.raises(FileProblem, match="not a Roll2Midi checkpoint"):
        load_roll2midi(v2r_path)
    colour = load_video2roll(save_video2roll(tmp_path / "rgb.ckpt", colour=True,
                                             head_grid=(1, 2), detector=(2, 2, 32)))  # fmt: skip
    assert colour.colour and colour.net.in_frames == 15
    video = torch.randint(0, 256, (7, 3, 24, 32), dtype=torch.uint8)
    assert transcribe(colour.crops(video, value_range="byte"), colour)["roll"].shape == (7, 88)
    with pytest.raises(AudiovisError, match="reads colour crops"):
        colour.predict_probabilities(torch.rand(7, 16, 64))  # greyscale crops
    other = load_video2roll(save_video2roll(tmp_path / "v51.ckpt", key_offset=15, num_keys=51))
    with pytest.raises(FileProblem, match="refines keys 0..87 but the Video2Roll predicts"):
        load_roll2midi(r2m_path, other)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(FileProblem, match="not a readable checkpoint"):
        load_video2roll(tmp_path / "junk.ckpt")
    with pytest.raises(AudiovisError, match="video2roll_checkpoint"):
        Roll2Midi()
    with pytest.raises(AudiovisError, match="not inside the frame"):
        Video2Roll(keyboard_box=(0.5, 0.0, 0.6, 1.0))


# ------------------------------------------------------------------------------------- CLI


def test_video2roll_fast_dev_run(fixture_root: Path, tmp_path: Path) -> None:
    result = run_cli("fit", "--config", str(CONF / "audeo_video2roll.yaml"), "--data.root",
                     str(fixture_root), "--trainer.fast_dev_run", "1",
                     "--trainer.default_root_dir", str(tmp_path))  # fmt: skip
    assert_ok(result)


def test_roll2midi_fast_dev_run(fixture_root: Path, tmp_path: Path) -> None:
    v2r = save_video2roll(tmp_path / "v2r.ckpt")
    cache = tmp_path / "cache"
    result = run_cli("fit", "--config", str(CONF / "audeo_roll2midi.yaml"), "--data.root",
                     str(fixture_root), "--trainer.fast_dev_run", "1",
                     "--model.init_args.video2roll_checkpoint", str(v2r),
                     "--model.init_args.prediction_cache", str(cache),
                     "--trainer.default_root_dir", str(tmp_path))  # fmt: skip
    assert_ok(result)
    cached = sorted(cache.rglob("*.npy"))  # Video2Roll's predictions, one per performance
    assert len(cached) == 6 and np.load(cached[0]).shape == (50, 88)


def test_roll2midi_without_video2roll_is_one_error(
    fixture_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audiovis.cli import main

    status = main(["fit", "--config", str(CONF / "audeo_roll2midi.yaml"), "--data.root",
                   str(fixture_root), "--trainer.fast_dev_run", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and "video2roll_checkpoint" in err and "Traceback" not in err


@pytest.mark.slow
def test_video2roll_fit_then_predict_writes_media(fixture_root: Path, tmp_path: Path) -> None:
    from audiovis.media import probe, write_video

    conf = str(CONF / "audeo_video2roll.yaml")
    common = ("--data.root", str(fixture_root), "--trainer.default_root_dir", str(tmp_path))
    assert_ok(run_cli("fit", "--config", conf, *common))
    frames = np.load(fixture_root / "perf01" / "frames.npy")
    video = write_video(tmp_path / "keys.mp4", frames, 25)
    assert_ok(run_cli("predict", "--config", conf, *common, "--ckpt_path", "last",
                      "--data.predict_video", str(video)))  # fmt: skip
    out = tmp_path / "predictions"
    info = probe(out / "keys.mp4")
    assert info["video"]["frames"] == 50 and info["audio"]["sample_rate"] == 8000
    assert (out / "keys.mid").is_file() and (out / "keys.roll.png").is_file()
    assert np.load(out / "keys.roll.npy").shape == (50, 88)


def test_fast_inference_paths_match_the_plain_forward(tmp_path: Path) -> None:
    """The channels-last batches give the network's own numbers; bf16 autocast stays close
    and gives the same shapes (``audiovis transcribe --bf16``)."""
    v2r = load_video2roll(save_video2roll(tmp_path / "v2r.ckpt"))
    crops = torch.rand(21, 16, 64)
    with torch.no_grad():
        plain = torch.sigmoid(v2r(stack_context(crops, torch.arange(21))))
    fast = v2r.predict_probabilities(crops, batch_size=8)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)
    half = v2r.predict_probabilities(crops, batch_size=8, bf16=True)
    assert half.dtype == torch.float32 and half.shape == (21, 88)
    assert (half - plain).abs().max() < 0.25
    assert transcribe(crops, v2r, bf16=True)["roll"].shape == (21, 88)


def test_studio_box_is_the_nominal_framing() -> None:
    """Where no keyboard is located, an "auto" model crops the keys where the studio draws
    them at zoom 1 without shift; a fixed-box model keeps its box."""
    import dataclasses

    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.data.studio.score import Note, Score
    from audiovis.models.audeo import STUDIO_KEYS

    look = dataclasses.replace(Look.performer_look(0), zoom=1.0, shift=(0.0, 0.0))
    score = Score(name="one", notes=[Note(60, 0.0, 0.1)], beats=np.arange(0.0, 1.0, 0.5))
    frames = PianoRig().render(score, np.full(3, 0.5), look, 128, 25.0, 3).frames
    assert np.allclose(locate_keyboard(frames), STUDIO_KEYS, atol=1.5 / 128)
    auto = Video2Roll(**{**TINY_V2R, "keyboard_box": "auto"})
    assert auto.studio_box() == crop_box(STUDIO_KEYS)
    assert Video2Roll(**TINY_V2R).studio_box() == (0.0, 0.0, 1.0, 1.0)


# --------------------------------------------------------------- key mixing, note reading


def test_key_mix_swaps_bands_of_whole_keys() -> None:
    """A mixed sample shows the partner's pixels exactly over the partner's keys' columns
    (cut at B|C or E|F), and takes those keys' labels; unmixed samples are untouched."""
    b, width = 64, 208  # 4 columns per white key
    stacks, other = torch.zeros(b, 15, 4, width), torch.ones(b, 15, 4, width)
    target, other_target = torch.zeros(b, 88), torch.ones(b, 88)
    gen = torch.Generator().manual_seed(0)
    x, y = key_mix(stacks, target, other, other_target, 0.5, generator=gen)
    mixed = y.any(dim=1)
    assert 0 < int(mixed.sum()) < b
    assert not x[~mixed].any()
    is_white = [(k + 9) % 12 not in (1, 3, 6, 8, 10) for k in range(88)]
    white = torch.from_numpy(np.cumsum(is_white) - 1)  # each key's white key (black: left)
    for xs, ys in zip(x[mixed], y[mixed], strict=True):
        cols = xs[0, 0].nonzero()[:, 0]
        keys = ys.nonzero()[:, 0]
        lo, hi = int(cols.min()) // 4, (int(cols.max()) + 1) // 4  # white keys of the band
        assert len(cols) == 4 * (hi - lo) and (xs == xs[:1, :1]).all()  # one band, all rows
        assert lo == 0 or lo % 7 in (2, 5)
        assert hi == 52 or hi % 7 in (2, 5)
        assert (hi - lo) < 52
        torch.testing.assert_close(keys, ((white >= lo) & (white < hi)).nonzero()[:, 0])
    with pytest.raises(AudiovisError, match="white key"):
        key_mix(stacks, target[:, :3], other, other_target[:, :3], 1.0, key_offset=1, num_keys=3)
    with pytest.raises(AudiovisError, match="key_mix"):
        Video2Roll(**{**TINY_V2R, "key_mix": 0.5})  # a fixed box: no key boundaries known


def test_key_mix_trains_with_partners_of_the_same_performance() -> None:
    torch.manual_seed(0)
    performance = torch.tensor([0, 1, 0, 1, 2])
    partner = _partners(performance, 5)
    assert (performance[partner] == performance).all()
    assert int(partner[4]) == 4  # alone in the batch: itself
    clips = [torch.from_numpy(_piano(64, 1)[0]).permute(0, 3, 1, 2).float() / 127.5 - 1]
    batch = {"video": torch.stack(clips * 4), "roll": torch.zeros(4, 5, 88),
             "performance": torch.tensor([0, 0, 1, 1])}  # fmt: skip
    model = Video2Roll(**{**TINY_V2R, "keyboard_box": "auto", "key_mix": 1.0})
    assert torch.isfinite(model.training_step(batch, 0))


def test_clean_roll_reads_notes_through_dips_gaps_and_blips() -> None:
    """Hysteresis keeps a note through a dip, a short gap is bridged, blips are dropped, and
    a run that never reaches the threshold is no note."""
    p = np.zeros((20, 2), np.float32)
    p[1:8, 0] = [0.9, 0.9, 0.3, 0.3, 0.9, 0.9, 0.9]  # a dip to 0.3 inside one note
    p[10:12, 0] = 0.9  # a 2-frame blip
    p[2:5, 1], p[6:9, 1] = 0.8, 0.8  # one frame's gap
    p[12:18, 1] = 0.4  # never reaches the threshold
    plain = clean_roll(p, 0.5)
    assert len(roll_to_notes(plain, 25.0)) == 5
    read = clean_roll(p, 0.5, offset_threshold=0.2, merge_gap=1, min_frames=3)
    expected = np.zeros((20, 2), np.uint8)
    expected[1:8, 0], expected[2:9, 1] = 1, 1
    np.testing.assert_array_equal(read, expected)
    with pytest.raises(AudiovisError, match="offset_threshold"):
        Video2Roll(**{**TINY_V2R, "threshold": 0.4, "offset_threshold": 0.6})


def test_transcribe_reads_the_roll_with_the_models_reading(tmp_path: Path) -> None:
    v2r = load_video2roll(save_video2roll(tmp_path / "v2r.ckpt", threshold=0.5,
                                          offset_threshold=0.3, merge_gap=1,
                                          min_note_frames=2))  # fmt: skip
    assert (v2r.offset_threshold, v2r.merge_gap, v2r.min_note_frames) == (0.3, 1, 2)
    crops = torch.rand(12, 16, 64)
    rolls = transcribe(crops, v2r)
    np.testing.assert_array_equal(rolls["roll"], clean_roll(rolls["probabilities"], 0.5, 0.3, 1, 2))
