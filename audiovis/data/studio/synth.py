"""The studio's audio: a score through FluidSynth, loudness-normalised, with optional room
reverb and noise; and the per-frame loudness that drives the performer."""

from __future__ import annotations

import os

import numpy as np

from audiovis.data.studio.score import GM_PROGRAM, Score
from audiovis.media import midi_to_audio

TARGET_RMS_DB = -20.0  # loudness every performance is normalised to
FLOOR_DB, CEIL_DB = -50.0, -10.0  # per-frame loudness 0 … 1 spans this range of RMS


def normalise_loudness(audio: np.ndarray, target_db: float = TARGET_RMS_DB) -> np.ndarray:
    """Scale to an RMS of ``target_db`` dBFS, then soft-limit peaks below full scale."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if audio.size else 0.0
    if rms < 1e-8:
        return audio.astype(np.float32)
    out = audio * (10 ** (target_db / 20) / rms)
    return np.tanh(out / 0.95).astype(np.float32) * 0.95


def room_reverb(
    audio: np.ndarray, sample_rate: int, rt60: float, wet: float, rng: np.random.Generator
) -> np.ndarray:
    """Convolve with an exponentially decaying noise tail (a diffuse room of decay ``rt60``)."""
    from scipy.signal import fftconvolve

    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * 10 ** (-3 * t / rt60)  # -60 dB at rt60
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    tail = fftconvolve(audio, ir)[: len(audio)]
    return ((1 - wet) * audio + wet * tail).astype(np.float32)


def render_audio(
    score: Score,
    instrument: str,
    sample_rate: int,
    soundfont: str | os.PathLike[str] | None = None,
    reverb: float = 0.0,
    noise_db: float | None = None,
    seed: int = 0,
    accompaniment: bool = False,
) -> np.ndarray:
    """Render what the performer plays (plus the rhythm section, and the other parts when
    ``accompaniment``) at ``sample_rate``.

    Args:
        score: the piece; its ``notes`` are played on the instrument's General MIDI program.
        instrument: key of :data:`GM_PROGRAM` (``dance`` plays every part on piano).
        sample_rate: output rate.
        soundfont: an .sf2 path; pretty_midi's bundled GM soundfont by default.
        reverb: wet mix of a room reverb (0 = dry).
        noise_db: add white noise at this level, dBFS (``None`` = none).
        seed: seeds the reverb tail and the noise.
        accompaniment: let the other parts sound too, softer.

    Returns:
        mono float32, ``ceil(duration · sample_rate)`` samples, loudness-normalised.
    """
    from dataclasses import replace

    program = GM_PROGRAM.get(instrument, 0)
    if not accompaniment:
        score = replace(score, accompaniment=[])
    else:
        score = replace(score, accompaniment=[replace(n, velocity=max(1, n.velocity // 2))
                                              for n in score.accompaniment])  # fmt: skip
    audio = midi_to_audio(score.to_midi(program), sample_rate, soundfont)
    n = int(np.ceil(score.duration * sample_rate))
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    rng = np.random.default_rng(seed)
    if reverb > 0:
        audio = room_reverb(audio, sample_rate, rt60=0.6, wet=reverb, rng=rng)
    audio = normalise_loudness(audio)
    if noise_db is not None:
        audio = audio + (10 ** (noise_db / 20) * rng.standard_normal(len(audio))).astype(np.float32)
    return audio.astype(np.float32)


def frame_loudness(audio: np.ndarray, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """RMS of each video frame's audio on a fixed dB scale: 0 at -50 dBFS, 1 at -10 dBFS.

    Returns:
        (num_frames,) float32 in [0, 1].
    """
    per = sample_rate / fps
    out = np.zeros(num_frames, np.float32)
    for t in range(num_frames):
        chunk = audio[int(round(t * per)) : int(round((t + 1) * per))]
        if chunk.size:
            db = 10 * np.log10(np.mean(chunk.astype(np.float64) ** 2) + 1e-12)
            out[t] = np.clip((db - FLOOR_DB) / (CEIL_DB - FLOOR_DB), 0.0, 1.0)
    return out
