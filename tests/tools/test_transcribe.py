"""``audiovis transcribe``: a studio-style piano video → .mid, .wav, .mp4 with sound; bad inputs
give one clear error and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiovis.cli import main
from audiovis.data.studio.rigs.base import Look
from audiovis.data.studio.rigs.piano import PianoRig
from audiovis.data.studio.score import Note, Score
from audiovis.media import probe, write_video
from audiovis.music import midi_notes
from tests.models.test_audeo import save_roll2midi, save_video2roll


@pytest.fixture(scope="module")
def piano_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.6 s of the studio's piano rig at 64 px playing a C major arpeggio."""
    notes = [Note(60 + step, 0.3 * i, 0.3 * i + 0.25) for i, step in enumerate((0, 4, 7, 12))]
    score = Score(name="arpeggio", notes=notes, beats=np.arange(0.0, 2.0, 0.5))
    take = PianoRig().render(score, np.full(40, 0.5), Look.performer_look(0), 64, 25.0, 40)
    return write_video(tmp_path_factory.mktemp("video") / "arpeggio.mp4", take.frames, 25)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    v2r = save_video2roll(folder / "v2r.ckpt")
    return v2r, save_roll2midi(folder / "r2m.ckpt", v2r)


def test_transcribe_writes_midi_audio_and_video(
    piano_video: Path, checkpoints: tuple[Path, Path], tmp_path: Path
) -> None:
    v2r, r2m = checkpoints
    with torch.random.fork_rng():
        status = main(["transcribe", str(piano_video), "--video2roll", str(v2r), "--roll2midi",
                       str(r2m), "--program", "4", "--out", str(tmp_path), "--quiet"])  # fmt: skip
    assert status == 0
    info = probe(tmp_path / "arpeggio.mp4")
    assert info["video"]["frames"] == 40 and info["audio"]["sample_rate"] == 8000
    assert abs(info["audio"]["seconds"] - 1.6) < 0.1
    assert (tmp_path / "arpeggio.wav").is_file() and (tmp_path / "arpeggio.roll.png").is_file()
    roll = np.load(tmp_path / "arpeggio.roll.npy")
    assert roll.shape == (40, 88)
    # the MIDI is exactly the notes of the roll the models produced
    onsets = int(np.sum(np.diff(np.pad(roll, ((1, 0), (0, 0))).astype(int), axis=0) == 1))
    assert len(midi_notes(tmp_path / "arpeggio.mid")) == onsets


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_error_and_no_outputs(
    piano_video: Path,
    checkpoints: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v2r, r2m = checkpoints
    out = tmp_path / "out"
    base = ["transcribe", "--video2roll", str(v2r), "--out", str(out), "--quiet"]
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00\x01 not a video" * 100)
    assert "not a readable video" in _error([*base, str(garbage)], capsys)
    assert "--threads must be at least 1" in _error([*base, str(garbage), "--threads", "0"],
                                                    capsys)  # fmt: skip
    assert "no such file" in _error([*base, str(tmp_path / "missing.mp4")], capsys)
    assert "outside the 64x64 frame" in _error([*base, str(piano_video), "--box", "0,10,80,20"],
                                               capsys)  # fmt: skip
    assert "--merge-gap must be >= 0" in _error([*base, str(piano_video), "--merge-gap", "-1"],
                                                capsys)  # fmt: skip
    assert "--offset-threshold must be in (0, 1)" in _error(
        [*base, str(piano_video), "--offset-threshold", "1.5"], capsys
    )
    other = ["transcribe", str(piano_video), "--out", str(out), "--quiet"]
    assert "not a Video2Roll checkpoint" in _error([*other, "--video2roll", str(r2m)], capsys)
    narrow = save_video2roll(tmp_path / "v51.ckpt", key_offset=15, num_keys=51)
    err = _error([*other, "--video2roll", str(narrow), "--roll2midi", str(r2m)], capsys)
    assert "refines keys 0..87" in err
    assert not out.exists() or not any(out.iterdir())


def test_long_videos_are_decoded_again_for_the_mp4(
    piano_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``KEEP_FRAMES_BYTES`` the frames are not held for the re-encode but decoded again;
    a colour Video2Roll with the position heads transcribes the same way, also in bf16 and
    with another thread count (given back to the caller afterwards)."""
    import audiovis.tools.transcribe as tool

    threads = torch.get_num_threads()

    monkeypatch.setattr(tool, "KEEP_FRAMES_BYTES", 0)
    v2r = save_video2roll(tmp_path / "rgb.ckpt", colour=True, head_grid=(1, 2),
                          detector=(2, 2, 32))  # fmt: skip
    status = main(["transcribe", str(piano_video), "--video2roll", str(v2r), "--out",
                   str(tmp_path / "out"), "--quiet", "--bf16", "--threads", "2"])  # fmt: skip
    assert status == 0 and torch.get_num_threads() == threads
    assert probe(tmp_path / "out" / "arpeggio.mp4")["video"]["frames"] == 40
    assert np.load(tmp_path / "out" / "arpeggio.roll.npy").shape == (40, 88)


def test_auto_box_is_located_once_or_overridden(
    piano_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model with keyboard_box "auto" finds the keyboard in the video and says where;
    --keyboard-box overrides it; a video without a keyboard is one error naming it."""
    v2r = save_video2roll(tmp_path / "auto.ckpt", keyboard_box="auto")
    base = ["transcribe", "--video2roll", str(v2r), "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*base, str(piano_video)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    x, y, w, h = (float(v) for v in summary.split("(x, y, w, h) ")[1].split(" → ")[0].split(", "))
    # the studio's look p0 at 64 px: the 88 keys span most of the width below the top quarter
    assert 0.0 < x < 0.1 and 0.8 < w < 0.96 and 0.1 < y < 0.3 and 0.3 < h < 0.6, summary
    assert main([*base, str(piano_video), "--keyboard-box", "0", "0.2", "1", "0.45"]) == 0
    assert "(x, y, w, h) 0.0000, 0.2000, 1.0000, 0.4500" in capsys.readouterr().out
    blank = write_video(tmp_path / "wall.mp4", np.full((10, 64, 64, 3), 180, np.uint8), 25)
    out = tmp_path / "blank"
    err = _error([*base[:-3], "--out", str(out), "--quiet", str(blank)], capsys)
    assert "wall.mp4" in err and "no piano keyboard found" in err
    assert not out.exists() or not any(out.iterdir())
