"""Piano rolls to notes, MIDI and audio: the MIDI synth stage of Audeo (Su et al., NeurIPS 2020).

A roll is (T, 88) per frame and key, A0 (MIDI 21) first; a frame lasts ``1 / fps`` seconds.
Notes come from runs of active frames: a run starting at frame ``a`` and ending before frame
``b`` sounds from ``a / fps`` to ``b / fps`` seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiovis.errors import AudiovisError

LOWEST_PITCH = 21  # A0, the first key of an 88-key roll
NUM_KEYS = 88


@dataclass(frozen=True)
class NoteEvent:
    """One note: MIDI pitch, onset and offset in seconds, MIDI velocity 1..127."""

    pitch: int
    start: float
    end: float
    velocity: int


def roll_to_notes(
    roll: np.ndarray,
    fps: float,
    threshold: float = 0.5,
    min_frames: int = 1,
    velocity: int | None = 100,
    lowest_pitch: int = LOWEST_PITCH,
) -> list[NoteEvent]:
    """Notes from the runs of frames at or above ``threshold`` in each key's column.

    Args:
        roll: (T, K) key activations (binary or probabilities).
        fps: frames per second.
        threshold: a frame is on when its value is ``>= threshold``.
        min_frames: runs shorter than this many frames are dropped (spurious blips).
        velocity: fixed MIDI velocity (100 as the paper); ``None`` maps each note's mean
            activation over its run (a confidence in [threshold, 1]) to velocities 40..120.
        lowest_pitch: MIDI pitch of column 0.

    Returns:
        the notes sorted by onset, then pitch.
    """
    roll = np.asarray(roll, dtype=np.float32)
    if roll.ndim != 2:
        raise AudiovisError(f"a roll must be (frames, keys), got shape {roll.shape}")
    if fps <= 0 or min_frames < 1:
        raise AudiovisError("roll_to_notes: fps must be > 0 and min_frames >= 1")
    on = roll >= threshold
    # pad with off frames so every run has a rising and a falling edge
    edges = np.diff(np.pad(on, ((1, 1), (0, 0))).astype(np.int8), axis=0)  # (T + 1, K)
    notes = []
    for key in range(roll.shape[1]):
        starts = np.flatnonzero(edges[:, key] == 1)
        stops = np.flatnonzero(edges[:, key] == -1)
        for a, b in zip(starts, stops, strict=True):
            if b - a < min_frames:
                continue
            if velocity is None:
                conf = float(np.clip(roll[a:b, key].mean(), threshold, 1.0))
                span = max(1.0 - threshold, 1e-6)
                vel = int(round(40 + 80 * (conf - threshold) / span))
            else:
                vel = int(velocity)
            notes.append(NoteEvent(lowest_pitch + key, a / fps, b / fps, int(np.clip(vel, 1, 127))))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


def notes_to_midi(notes: list[NoteEvent], program: int = 0, is_drum: bool = False) -> Any:
    """A ``pretty_midi.PrettyMIDI`` with one instrument of General MIDI ``program`` (0..127)."""
    import pretty_midi

    if not 0 <= program <= 127:
        raise AudiovisError(f"a General MIDI program is 0..127, got {program}")
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
    inst.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in notes]
    midi.instruments.append(inst)
    return midi


def roll_to_midi(
    roll: np.ndarray,
    fps: float,
    program: int = 0,
    threshold: float = 0.5,
    min_frames: int = 1,
    velocity: int | None = 100,
) -> Any:
    """A roll (T, 88) straight to a ``PrettyMIDI`` (see :func:`roll_to_notes`)."""
    return notes_to_midi(roll_to_notes(roll, fps, threshold, min_frames, velocity), program)


def midi_to_roll(midi: Any, fps: float, num_frames: int | None = None) -> np.ndarray:
    """The (T, 88) binary roll of a MIDI's non-drum notes, sampled as :func:`roll_to_notes`
    reads it: a note covers frames ``round(start · fps)`` to ``round(end · fps)`` (exclusive)."""
    notes = midi_notes(midi)
    if num_frames is None:
        num_frames = int(round(max((n.end for n in notes), default=0.0) * fps))
    roll = np.zeros((num_frames, NUM_KEYS), np.uint8)
    for n in notes:
        key = n.pitch - LOWEST_PITCH
        if 0 <= key < NUM_KEYS:
            a, b = int(round(n.start * fps)), int(round(n.end * fps))
            roll[a : max(b, a + 1), key] = 1
    return roll


def midi_notes(midi: Any) -> list[NoteEvent]:
    """The non-drum notes of a ``PrettyMIDI`` or a .mid path, sorted by onset."""
    import pretty_midi

    if not isinstance(midi, pretty_midi.PrettyMIDI):
        midi = pretty_midi.PrettyMIDI(str(midi))
    notes = [
        NoteEvent(int(n.pitch), float(n.start), float(n.end), int(n.velocity))
        for inst in midi.instruments
        if not inst.is_drum
        for n in inst.notes
    ]
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


def synthesize(
    midi: Any, sample_rate: int, soundfont: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """Render MIDI to a mono waveform with FluidSynth (``audiovis.media.midi_to_audio``)."""
    from audiovis.media import midi_to_audio

    return midi_to_audio(midi, sample_rate, soundfont)


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Trim or zero-pad a waveform to ``num_samples`` (the synth adds a release tail)."""
    out = np.zeros(num_samples, np.float32)
    n = min(num_samples, len(audio))
    out[:n] = audio[:n]
    return out
