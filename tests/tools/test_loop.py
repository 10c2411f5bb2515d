"""``audiovis loop``: music → APVG's video → Audeo → music with tiny untrained checkpoints; every
output and report field, a hand-checked score, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from audiovis.audio import LogMel
from audiovis.cli import main
from audiovis.media import probe, write_audio
from audiovis.models import APVG
from audiovis.music import NoteEvent, midi_notes
from audiovis.tools.loop import stage_scores
from tests.models.test_audeo import save_roll2midi, save_video2roll

SR = 8000
MEL = {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "n_mels": 32}


def save_apvg(path: Path, **flags: Any) -> Path:
    """A tiny untrained APVG checkpoint at 64 px, as LightningCLI writes it (with the
    front-end's settings that APVG adds when it is saved)."""
    torch.manual_seed(0)
    model = APVG(LogMel(**MEL), image_size=64, sample_rate=SR, cvg_channels=8, stu_base=8,
                 stu_depth=3, w_perceptual=0.0, **flags)  # fmt: skip
    hparams = {**model.hparams, "_class_path": "audiovis.models.apvg.APVG"}
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": hparams}
    model.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


def write_midi(path: Path, notes: list[tuple[int, float, float]]) -> Path:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(90, p, s, e) for p, s, e in notes]
    midi.instruments.append(piano)
    midi.write(str(path))
    return path


# an arpeggio in the piano's range and one note below it (MIDI 12 is no piano key)
ARPEGGIO = [(60, 0.0, 0.36), (64, 0.4, 0.76), (67, 0.8, 1.16), (72, 1.2, 1.8), (12, 0.2, 0.6)]


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("loop")
    v2r = save_video2roll(folder / "v2r.ckpt")
    return {
        "apvg": save_apvg(folder / "apvg.ckpt"),
        "v2r": v2r,
        "r2m": save_roll2midi(folder / "r2m.ckpt", v2r),
        "midi": write_midi(folder / "arpeggio.mid", ARPEGGIO),
    }


def args(kit: dict[str, Path], out: Path, **override: Path) -> list[str]:
    paths = {**kit, **override}
    return ["loop", "--apvg", str(paths["apvg"]), "--video2roll", str(paths["v2r"]),
            "--roll2midi", str(paths["r2m"]), "--out", str(out), "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def midi_run(kit: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("midi_run") / "out"
    with torch.random.fork_rng():
        assert main([*args(kit, out), "--midi", str(kit["midi"])]) == 0
    return out


def test_midi_input_writes_every_intermediate(midi_run: Path) -> None:
    report = json.loads((midi_run / "report.json").read_text())
    expected = {"input.wav", "input.mid", "generated.mp4", "recovered.mid", "recovered.wav",
                "recovered.mp4", "loop_roll.png", "ceiling.mp4", "ceiling.mid",
                "ceiling_roll.png", "rolls.npz", "report.json"}  # fmt: skip
    assert set(report["files"]) == expected
    assert {p.name for p in midi_run.iterdir()} == expected  # no temporary files left
    # 1.8 s of music at 25 fps: 45 frames of 64 px, with the rendered music as sound
    for name in ("generated.mp4", "recovered.mp4", "ceiling.mp4"):
        info = probe(midi_run / name)
        assert info["video"]["frames"] == 45 and info["video"]["width"] == 64
        assert info["audio"]["sample_rate"] == SR and abs(info["audio"]["seconds"] - 1.8) < 0.15
    # the input MIDI keeps the four piano notes; the recovered MIDI is the roll's notes
    assert [n.pitch for n in midi_notes(midi_run / "input.mid")] == [60, 64, 67, 72]
    assert len(midi_notes(midi_run / "recovered.mid")) == report["recovered_notes"]
    rolls = np.load(midi_run / "rolls.npz")
    for key in ("reference_roll", "loop_probabilities", "loop_refined", "loop_roll",
                "loop_video2roll", "apvg_keys_by_pixels", "ceiling_roll"):  # fmt: skip
        assert rolls[key].shape == (45, 88), key


def test_report_scores_each_stage_against_the_input_notes(midi_run: Path) -> None:
    report = json.loads((midi_run / "report.json").read_text())
    assert report["reference"]["notes"] == 4 and report["reference"]["notes_outside_keys"] == 0
    # the ground-truth roll read back as notes finds every onset
    assert report["reference"]["roll"]["onset_f1"] == 1.0
    fields = {"onset_precision", "onset_recall", "onset_f1", "frame_precision", "frame_recall",
              "frame_f1"}  # fmt: skip
    for part in ("loop", "ceiling"):
        for stage in ("video2roll", "roll2midi"):
            scores = report[part][stage]
            assert fields <= set(scores) and all(0 <= scores[k] <= 1 for k in fields)
            assert scores["reference_notes"] == 4
    assert fields <= set(report["apvg"]["keys_by_pixels"])
    # the scores are those of the rolls written beside them
    rolls = np.load(midi_run / "rolls.npz")
    ref = [NoteEvent(p, s, e, 90) for p, s, e in ARPEGGIO if p >= 21]
    again = stage_scores(ref, rolls["reference_roll"], rolls["loop_roll"], 25.0)
    assert again == report["loop"]["roll2midi"]


def test_stage_scores_hand_checked() -> None:
    fps = 25.0
    reference = [NoteEvent(60, 0.0, 0.4, 90), NoteEvent(64, 0.4, 0.8, 90)]
    truth = np.zeros((20, 88), np.uint8)
    truth[0:10, 60 - 21] = 1
    truth[10:20, 64 - 21] = 1
    roll = np.zeros((20, 88), np.uint8)
    roll[0:10, 60 - 21] = 1  # on time: a match
    roll[12:20, 64 - 21] = 1  # 80 ms late (> 50 ms): no match
    roll[5:7, 67 - 21] = 1  # a note that is not there
    s = stage_scores(reference, truth, roll, fps)
    # notes: 1 match of 2 reference and 3 estimated notes
    assert (s["onset_matches"], s["reference_notes"], s["estimated_notes"]) == (1, 2, 3)
    assert s["onset_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["onset_recall"] == 0.5 and s["onset_f1"] == pytest.approx(0.4)
    # cells: 18 true positives, 2 false positives (67), 2 false negatives (64's first frames)
    assert (s["frame_tp"], s["frame_fp"], s["frame_fn"]) == (18, 2, 2)
    assert s["frame_f1"] == pytest.approx(0.9)


def test_audio_input_without_midi_writes_outputs_unscored(
    kit: dict[str, Path], tmp_path: Path
) -> None:
    t = np.arange(SR) / SR
    song = write_audio(tmp_path / "song.wav", 0.3 * np.sin(2 * np.pi * 262 * t), SR)
    out = tmp_path / "out"
    with torch.random.fork_rng():
        assert main([*args(kit, out), "--audio", str(song)]) == 0
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    assert report["loop"] == {"video2roll": None, "roll2midi": None}
    assert "ceiling.mp4" not in report["files"] and (out / "generated.mp4").is_file()
    assert probe(out / "generated.mp4")["video"]["frames"] == 25


def test_first_frame_sets_the_scene_and_the_ceiling_s_look(
    kit: dict[str, Path], tmp_path: Path
) -> None:
    from PIL import Image

    from audiovis.tools.loop import studio_scene

    apvg = save_apvg(tmp_path / "keys.ckpt", key_presses=True)
    Image.fromarray(studio_scene(3, 64, 25.0).frames[0]).save(tmp_path / "p3.png")
    scenes = {"studio": ["--first-frame", "studio", "--performer", "2"],
              "image": ["--first-frame", str(tmp_path / "p3.png"), "--no-ceiling"]}  # fmt: skip
    reports = {}
    for name, scene in scenes.items():
        out = tmp_path / name
        with torch.random.fork_rng():
            argv = [*args(kit, out, apvg=apvg), "--midi", str(kit["midi"]), *scene]
            assert main(argv) == 0
        reports[name] = json.loads((out / "report.json").read_text())
    studio, image = reports["studio"], reports["image"]
    assert studio["settings"]["scene"] == "studio performer p2 (empty keyboard)"
    assert studio["apvg"]["performer_framing"] == 2  # the ceiling and the probe in p2's look
    # an image of performer 3's keyboard: the ceiling and the pixel probe take p3's look
    assert image["settings"]["scene"].endswith("p3.png")
    assert image["apvg"]["performer_framing"] == 3


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_error_before_any_work_and_no_outputs(
    kit: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = args(kit, out)
    midi = ["--midi", str(kit["midi"])]
    outside = write_midi(tmp_path / "organ.mid", [(12, 0.0, 1.0), (120, 1.0, 2.0)])
    err = _error([*base, "--midi", str(outside)], capsys)
    assert "organ.mid" in err and "no notes in the piano's range" in err
    short = write_audio(tmp_path / "blip.wav", 0.3 * np.sin(np.arange(SR // 4) / 5.0), SR)
    err = _error([*base, "--audio", str(short)], capsys)
    assert "blip.wav" in err and "shorter than one generation window of 16 frames" in err
    tiny = write_midi(tmp_path / "tiny.mid", [(60, 0.0, 0.3)])
    assert "shorter than one generation window" in _error([*base, "--midi", str(tiny)], capsys)
    err = _error([*base, *midi, "--context", "-1"], capsys)
    assert "--context must be >= 0 frames" in err
    err = _error([*args(kit, out, apvg=kit["v2r"]), *midi], capsys)
    assert "v2r.ckpt" in err and "is not an APVG checkpoint" in err
    err = _error([*args(kit, out, v2r=kit["apvg"]), *midi], capsys)
    assert "apvg.ckpt" in err and "not a Video2Roll checkpoint" in err
    narrow = save_video2roll(tmp_path / "v51.ckpt", key_offset=15, num_keys=51)
    err = _error([*args(kit, out, v2r=narrow), *midi], capsys)
    assert "r2m.ckpt" in err and "refines keys 0..87" in err
    err = _error([*base, "--midi", str(tmp_path / "missing.mid")], capsys)
    assert "missing.mid" in err and "no such file" in err
    assert "--midi" in _error(base, capsys)
    err = _error([*base, *midi, "--first-frame", str(tmp_path / "none.png")], capsys)
    assert "none.png" in err and "no such file" in err
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "small.png")
    err = _error([*base, *midi, "--first-frame", str(tmp_path / "small.png")], capsys)
    assert "small.png" in err and "is 32x32, the model generates 64x64" in err
    (tmp_path / "text.png").write_text("not an image")
    err = _error([*base, *midi, "--first-frame", str(tmp_path / "text.png")], capsys)
    assert "text.png" in err and "not a readable image" in err
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    keys = save_apvg(tmp_path / "keys.ckpt", key_presses=True)
    err = _error([*args(kit, out, apvg=keys), *midi, "--first-frame", str(tmp_path / "grey.png")],
                 capsys)  # fmt: skip
    assert "grey.png" in err and "shows no piano keyboard" in err
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder")
    err = _error([*args(kit, taken), *midi], capsys)
    assert "taken" in err and "is not a folder" in err
    assert not out.exists()
