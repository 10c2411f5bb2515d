"""Scores, audio and loudness of the studio, checked against hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiovis.data.studio.score import (
    DANCE_STYLES,
    Note,
    Score,
    add_rhythm,
    corpus_works,
    procedural_score,
    retime,
    score_from_midi,
)
from audiovis.data.studio.synth import frame_loudness, normalise_loudness, render_audio
from audiovis.media import MediaError


def _score(notes: list[Note], tempo: float = 120.0, meter: int = 4) -> Score:
    duration = max(n.end for n in notes)
    return Score(
        name="t", notes=notes, beats=np.arange(0, duration, 60 / tempo), meter=meter, tempo=tempo
    )


def test_roll_marks_frames_whose_centre_sounds() -> None:
    # at 10 fps frame t is [t/10, (t+1)/10), centre (t + 0.5)/10
    score = _score(
        [Note(60, 0.0, 0.3), Note(64, 0.26, 0.34), Note(21, 0.5, 0.51), Note(108, 0.05, 0.2)]
    )
    roll = score.roll(fps=10, num_frames=6)
    assert roll[:, 60 - 21].tolist() == [1, 1, 1, 0, 0, 0]  # centres 0.05, 0.15, 0.25 sound
    # 0.26..0.34 covers the centre 0.25? no; 0.35? no: shorter than a frame → onset frame 2
    assert roll[:, 64 - 21].tolist() == [0, 0, 1, 0, 0, 0]
    assert roll[:, 0].tolist() == [0, 0, 0, 0, 0, 1]  # A0, 10 ms long, still marked
    assert roll[:, 87].tolist() == [1, 1, 0, 0, 0, 0]  # C8: centres 0.05 and 0.15
    assert roll.sum() == 3 + 1 + 1 + 2


def test_a_key_struck_again_rises_on_the_frame_before() -> None:
    score = _score([
        Note(60, 0.0, 0.4), Note(60, 0.4, 0.8),  # repeated: up on frame 3
        Note(62, 0.0, 0.1), Note(62, 0.1, 0.3),  # the first is one frame: one stroke
        Note(64, 0.0, 1.0), Note(64, 0.5, 0.7),  # struck again while held: up on 4, held on
        Note(65, 0.0, 0.3), Note(65, 0.5, 0.7),  # apart already
        Note(67, 0.0, 0.3), Note(67, 0.0, 0.5),  # unison: one stroke
    ])  # fmt: skip
    roll = score.roll(fps=10, num_frames=10)
    assert roll[:, 60 - 21].tolist() == [1, 1, 1, 0, 1, 1, 1, 1, 0, 0]
    assert roll[:, 62 - 21].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert roll[:, 64 - 21].tolist() == [1, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    assert roll[:, 65 - 21].tolist() == [1, 1, 1, 0, 0, 1, 1, 0, 0, 0]
    assert roll[:, 67 - 21].tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]


def test_segment_shifts_and_clips() -> None:
    score = _score([Note(60, 0.0, 1.0), Note(62, 1.5, 2.5), Note(64, 3.0, 4.0)])
    part = score.segment(1.0, 3.0, "mid")
    assert [(n.pitch, n.start, n.end) for n in part.notes] == [(62, 0.5, 1.5)]
    assert part.beats.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert part.name == "mid"


def test_midi_round_trip_and_parts(tmp_path: Path) -> None:
    score = _score([Note(60, 0.0, 0.5, 90), Note(67, 0.5, 1.0, 70)], meter=3)
    score.accompaniment = [Note(48, 0.0, 1.0, 50)]
    path = tmp_path / "two.mid"
    score.to_midi(40).write(str(path))  # type: ignore[attr-defined]
    back = score_from_midi(path, part=0)
    assert [(n.pitch, round(n.start, 3), round(n.end, 3)) for n in back.notes] == [
        (60, 0.0, 0.5), (67, 0.5, 1.0)]  # fmt: skip
    assert [n.pitch for n in back.accompaniment] == [48]
    assert back.meter == 3 and back.tempo == pytest.approx(120.0)


@pytest.mark.parametrize(("number", "name"), [(0, "C major"), (5, "F major"), (14, "D minor")])
def test_key_signature_is_named(tmp_path: Path, number: int, name: str) -> None:
    import pretty_midi

    midi = _score([Note(62, 0.0, 0.5, 90)]).to_midi(0)  # type: ignore[attr-defined]
    midi.key_signature_changes = [pretty_midi.KeySignature(number, 0.0)]
    midi.write(str(tmp_path / "k.mid"))
    assert score_from_midi(tmp_path / "k.mid").key == name


def test_bad_midi_gives_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not really")
    with pytest.raises(MediaError, match="bad.mid: not a readable MIDI file"):
        score_from_midi(bad)
    with pytest.raises(MediaError, match="no such file"):
        score_from_midi(tmp_path / "missing.mid")


def test_procedural_scores_are_seeded_and_in_range() -> None:
    a, b, c = (
        procedural_score(3, "cello"),
        procedural_score(3, "cello"),
        procedural_score(4, "cello"),
    )
    assert a.notes == b.notes and a.notes != c.notes
    assert all(36 <= n.pitch <= 76 for n in a.notes)
    assert np.allclose(np.diff(a.beats), 60 / a.tempo)


def test_retime_and_rhythm_follow_the_style() -> None:
    score = _score([Note(60, 0.0, 2.0)], tempo=60.0)  # beats every second
    tempo, meter = DANCE_STYLES["waltz"]
    waltz = add_rhythm(retime(score, tempo, meter), "waltz")
    assert np.allclose(np.diff(waltz.beats), 60 / tempo) and waltz.meter == 3
    assert waltz.notes[0].end == pytest.approx(2.0 * 60 / tempo)
    # the bass drum (36) falls on every downbeat
    kicks = [n.start for n in waltz.drums if n.pitch == 36]
    assert np.allclose(kicks, waltz.downbeats())


def test_rendered_audio_has_the_notes_pitch_and_length() -> None:
    score = _score([Note(69, 0.0, 1.0, 100)])  # A4
    audio = render_audio(score, "cello", 16000)
    assert len(audio) == 16000
    spectrum = np.abs(np.fft.rfft(audio[2000:14000] * np.hanning(12000)))
    freqs = np.fft.rfftfreq(12000, 1 / 16000)
    band = (freqs > 200) & (freqs < 1000)
    assert abs(freqs[band][np.argmax(spectrum[band])] - 440) < 5
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio**2)))
    assert abs(rms_db - (-20)) < 1.5  # normalised loudness


def test_loudness_scale_is_absolute() -> None:
    sr, fps = 16000, 25
    t = np.arange(sr) / sr
    loud = 10 ** (-10 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 440 * t)  # RMS -10 dBFS
    quiet = 10 ** (-30 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 440 * t)  # RMS -30 dBFS
    audio = np.concatenate([loud, quiet, np.zeros(sr)]).astype(np.float32)
    level = frame_loudness(audio, sr, fps, 75)
    assert np.allclose(level[:25], 1.0, atol=0.01)
    assert np.allclose(level[25:50], 0.5, atol=0.01)  # -30 dB is midway between -50 and -10
    assert np.allclose(level[50:], 0.0)
    assert np.sqrt(np.mean(normalise_loudness(quiet) ** 2)) == pytest.approx(0.1, rel=0.02)


def test_strings_run_on_into_chorale_lines_after_their_quartet_parts() -> None:
    # the four quartet parts first, then chorale bass lines (cello) / soprano lines (violin):
    # a studio set asking for many cello pieces gets monophonic lines a cellist plays
    cello = list(corpus_works("cello", 6, seed=0))
    assert [part for _, part in cello] == [-1, -1, -1, -1, "bass", "bass"]
    assert all(work.startswith("chorale:") for work, _ in cello[4:])
    violin = list(corpus_works("violin", 5, seed=0))
    assert violin[-1][1] == "soprano"
