"""Audio/video alignment of a performance: the duration mismatch, and the offset between sound
and picture estimated by cross-correlating audio onsets with motion energy.

A performer's movements and the notes' onsets happen together (a bow change, a key press, a
dance step on the beat), so the lag that best lines up the onset envelope with the amount of
motion per frame estimates how far the sound is shifted against the picture. Positive offsets
mean the sound comes late.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiovis.data.schema import AUDIO_FILE, array_path, read_manifest, read_meta

MAX_LAG = 1.0  # seconds searched either way
MIN_CORRELATION = 0.2  # below it an offset estimate is not trusted
MIN_MARGIN = 0.05  # the peak must beat every lag away from it by this much to be trusted


def onset_envelope(audio: np.ndarray, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """Spectral flux of the audio, one value per video frame.

    Log-magnitude spectra of one Hann window inside each frame's own stretch of audio
    (samples k * S/fps to (k + 1) * S/fps, as the format pairs them), so a note starting in
    frame k's stretch raises frame k, not its neighbour; the flux is the sum of the spectra's
    positive increases from the previous frame (frame 0 gets 0).

    Shape:
        audio: (S,) → (num_frames,)
    """
    hop = sample_rate / fps
    n_fft = 1 << int(np.floor(np.log2(max(hop, 256))))
    padded = np.pad(np.asarray(audio, np.float32), (0, n_fft))
    starts = np.round(np.arange(num_frames) * hop + (hop - n_fft) / 2).astype(int)
    starts = np.clip(starts, 0, max(len(padded) - n_fft, 0))
    index = starts[:, None] + np.arange(n_fft)[None]
    windows = padded[np.minimum(index, len(padded) - 1)] * np.hanning(n_fft).astype(np.float32)
    spectra = np.log1p(100.0 * np.abs(np.fft.rfft(windows, axis=1)))  # (T, F)
    flux = np.maximum(np.diff(spectra, axis=0), 0.0).sum(axis=1)
    return np.concatenate([[0.0], flux]).astype(np.float32)


def motion_energy(frames: np.ndarray, stride: int = 4, chunk: int = 256) -> np.ndarray:
    """Mean absolute difference of consecutive grey frames (subsampled by ``stride``), per
    frame; frame 0 gets 0.

    Shape:
        frames: (T, H, W, 3) uint8 (a memory map is read in chunks) → (T,)
    """
    out = np.zeros(len(frames), np.float32)
    previous: np.ndarray | None = None
    for start in range(0, len(frames), chunk):
        grey = np.asarray(frames[start : start + chunk, ::stride, ::stride], np.float32).mean(-1)
        if previous is not None:
            grey = np.concatenate([previous[None], grey])
        diffs = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
        offset = start if previous is not None else start + 1
        out[offset : offset + len(diffs)] = diffs
        previous = grey[-1]
    return out


def estimate_offset(
    onsets: np.ndarray, motion: np.ndarray, fps: float, max_lag: float = MAX_LAG
) -> tuple[float, float, float]:
    """The lag of the sound against the picture that best correlates the two envelopes.

    Both are z-scored; for each lag L (frames) the Pearson correlation of motion[t] with
    onsets[t + L] over their overlap is computed.

    Returns:
        (offset in seconds, positive when the sound is late; correlation at that lag;
        correlation at lag 0).
    """
    a = np.asarray(motion, np.float64)
    b = np.asarray(onsets, np.float64)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    max_frames = int(min(round(max_lag * fps), max(n // 2, 0)))

    def corr(lag: int) -> float:
        x, y = (a[: n - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[: n + lag])
        if len(x) < 3 or x.std() < 1e-9 or y.std() < 1e-9:
            return 0.0
        return float(np.corrcoef(x, y)[0, 1])

    lags = np.arange(-max_frames, max_frames + 1)
    values = np.array([corr(int(lag)) for lag in lags])
    best = int(np.argmax(values))
    return float(lags[best] / fps), float(values[best]), corr(0)


def runner_up(
    onsets: np.ndarray,
    motion: np.ndarray,
    fps: float,
    offset: float,
    max_lag: float = MAX_LAG,
    guard: float = 0.12,
) -> float:
    """The best correlation at lags more than ``guard`` seconds from ``offset``: close to the
    peak's when the music is periodic (every beat lines up), which makes an offset ambiguous."""
    a = np.asarray(motion, np.float64)
    b = np.asarray(onsets, np.float64)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    max_frames = int(min(round(max_lag * fps), max(n // 2, 0)))
    best = -1.0
    for lag in range(-max_frames, max_frames + 1):
        if abs(lag / fps - offset) <= guard:
            continue
        x, y = (a[: n - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[: n + lag])
        if len(x) >= 3 and x.std() > 1e-9 and y.std() > 1e-9:
            best = max(best, float(np.corrcoef(x, y)[0, 1]))
    return best


@dataclass
class Alignment:
    """One performance's alignment figures."""

    name: str
    video_seconds: float
    audio_seconds: float
    source_mismatch: float | None  # source audio minus source video, seconds (importers)
    offset: float
    correlation: float
    zero_lag_correlation: float
    runner_up: float = -1.0  # best correlation away from the peak

    @property
    def trusted(self) -> bool:
        """A clear peak: strong enough, and not matched at another lag (a regular beat)."""
        return (
            self.correlation >= MIN_CORRELATION and self.correlation - self.runner_up >= MIN_MARGIN
        )

    @property
    def mismatch(self) -> float:
        return self.audio_seconds - self.video_seconds

    def line(self, fps: float) -> str:
        """One report line; flags what needs a look."""
        notes = []
        if abs(self.mismatch) > 1.0 / fps:
            notes.append(f"audio {self.mismatch:+.3f} s longer than video")
        if self.source_mismatch is not None and abs(self.source_mismatch) > 1.0 / fps:
            notes.append(f"source audio {self.source_mismatch:+.3f} s longer than its video")
        if self.trusted and abs(self.offset) > 1.0 / fps:
            late = "late" if self.offset > 0 else "early"
            notes.append(f"sound about {abs(self.offset):.2f} s {late}")
        verdict = "; ".join(notes) if notes else "aligned"
        if self.correlation < MIN_CORRELATION:
            trust = " (weak evidence)"
        elif not self.trusted:
            trust = f" (ambiguous: r={self.runner_up:.2f} at another lag)"
        else:
            trust = ""
        return (
            f"{self.name}: video {self.video_seconds:.2f} s, audio {self.audio_seconds:.2f} s, "
            f"offset {self.offset:+.2f} s (r={self.correlation:.2f}, r0="
            f"{self.zero_lag_correlation:.2f}){trust}: {verdict}"
        )


def check_alignment(folder: str | os.PathLike[str], max_lag: float = MAX_LAG) -> Alignment | None:
    """Alignment of one performance folder; ``None`` when it lacks audio or video."""
    from audiovis.media import read_audio

    folder = Path(folder)
    meta = read_meta(folder)
    if "audio" not in meta.streams or "video" not in meta.streams:
        return None
    audio, rate = read_audio(folder / AUDIO_FILE, allow_silent=True)
    frames = np.load(array_path(folder, "video"), mmap_mode="r")
    source = None
    if "source_audio_seconds" in meta.extra and "source_video_seconds" in meta.extra:
        source = float(meta.extra["source_audio_seconds"]) - float(
            meta.extra["source_video_seconds"]
        )
    onsets = onset_envelope(audio, rate, meta.fps, len(frames))
    motion = motion_energy(frames)
    offset, peak, zero = estimate_offset(onsets, motion, meta.fps, max_lag)
    return Alignment(
        name=meta.name,
        video_seconds=len(frames) / meta.fps,
        audio_seconds=len(audio) / rate,
        source_mismatch=source,
        offset=offset,
        correlation=peak,
        zero_lag_correlation=zero,
        runner_up=runner_up(onsets, motion, meta.fps, offset, max_lag),
    )


def alignment_report(root: str | os.PathLike[str], max_lag: float = MAX_LAG) -> list[str]:
    """One line per performance of a dataset (those with audio and video)."""
    root = Path(root)
    lines = []
    for entry in read_manifest(root).performances:
        folder = root / entry["name"]
        try:
            result = check_alignment(folder, max_lag)
        except Exception as err:  # a damaged performance is check_dataset's to report
            lines.append(f"{entry['name']}: alignment not checked ({type(err).__name__})")
            continue
        if result is not None:
            lines.append(result.line(float(entry.get("fps") or read_meta(folder).fps)))
    return lines
