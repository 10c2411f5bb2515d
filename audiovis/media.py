"""Media I/O and drawing: audio files, video with its audio track (PyAV), skeletons, heatmaps,
piano rolls, and MIDI rendered through FluidSynth.

Every reader fails with one :class:`MediaError` naming the file and the problem; every writer
writes to a temporary name beside the target and renames, so a failed write leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from audiovis.errors import FileProblem, MissingDependency
from audiovis.skeleton import edge_colors, openpose_edges

SILENCE = 1e-4  # peak amplitude below which audio counts as silent


class MediaError(FileProblem):
    """A media file cannot be read or written; the message names the file and the problem."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes files private; media files are for sharing
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ audio


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "no such file")
    if path.is_dir():
        raise MediaError(path, "is a directory, expected a media file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file")


def _read_audio_av(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any container PyAV reads, as (channels, samples)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(path, "has no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            resampler = av.AudioResampler(format="fltp", rate=rate)
            chunks = [
                out.to_ndarray()
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            chunks += [out.to_ndarray() for out in resampler.resample(None)]
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable audio or video file ({err})") from None
    if not chunks:
        raise MediaError(path, "audio stream holds no samples")
    return np.concatenate(chunks, axis=1).astype(np.float32), int(rate)


def resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc) along the last axis."""
    if orig_rate == new_rate:
        return audio
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio)), orig_rate, new_rate)
    return out.numpy()


def read_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    mono: bool = True,
    allow_silent: bool = False,
) -> tuple[np.ndarray, int]:
    """Read an audio file of any common format, or the audio track of a video.

    Args:
        path: wav, flac, ogg, mp3 (soundfile) or anything FFmpeg reads (m4a, mp4, webm …).
        sample_rate: resample to this rate; ``None`` keeps the file's.
        mono: average the channels.
        allow_silent: accept an all-silent file instead of raising.

    Returns:
        the waveform, float32 in [-1, 1], shape (S,) when mono else (C, S), and its rate.

    Raises:
        MediaError: missing, empty, corrupt, silent, non-audio or unsupported file.
    """
    import soundfile as sf

    path = Path(path)
    _check_readable(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        audio = data.T  # (C, S)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        audio, rate = _read_audio_av(path)
    if audio.shape[-1] == 0:
        raise MediaError(path, "holds no audio samples")
    if not np.isfinite(audio).all():
        raise MediaError(path, "holds NaN or infinite samples")
    if not allow_silent and float(np.abs(audio).max()) < SILENCE:
        raise MediaError(path, "is silent")
    if mono:
        audio = audio.mean(axis=0)
    if sample_rate is not None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        audio = resample(audio, int(rate), sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


def write_audio(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> Path:
    """Write a waveform (S,) or (C, S) atomically; the format follows the suffix (.wav, .flac)."""
    import soundfile as sf

    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    data = audio.T if audio.ndim == 2 else audio
    audio_format = _sf_format(path)
    with atomic_path(path) as tmp:
        try:
            sf.write(str(tmp), np.clip(data, -1.0, 1.0), sample_rate, format=audio_format)
        except (sf.LibsndfileError, ValueError, TypeError) as err:
            raise MediaError(path, f"cannot write audio ({err})") from None
    return path


def _sf_format(path: Path) -> str:
    formats = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
    if path.suffix.lower() not in formats:
        raise MediaError(path, f"unsupported audio suffix; use one of {sorted(formats)}")
    return formats[path.suffix.lower()]


# ------------------------------------------------------------------------------------ video


def _square_crop(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return frame[top : top + s, left : left + s]


def resize_frame(frame: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize one RGB frame (antialiased); an int size centre-crops to a square first."""
    from PIL import Image

    if isinstance(size, int):
        frame = _square_crop(frame)
        height = width = size
    else:
        height, width = size
    if frame.shape[:2] == (height, width):
        return frame
    image = Image.fromarray(np.ascontiguousarray(frame))
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0))


def read_image(path: str | os.PathLike[str], size: int | None = None,
               what: str = "image") -> np.ndarray:  # fmt: skip
    """An image file as (H, W, 3) uint8 RGB; with ``size``, one of another size than
    ``size`` x ``size`` is an error (``what`` names the image in it).

    Raises:
        MediaError: missing, not a readable image, or of another size.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_readable(path)
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise MediaError(path, "not a readable image") from None
    if size is not None and rgb.shape[:2] != (size, size):
        raise MediaError(path, f"{what} is {rgb.shape[1]}x{rgb.shape[0]}, the model "
                         f"generates {size}x{size}; give a frame of that size")  # fmt: skip
    return rgb


def read_video(
    path: str | os.PathLike[str],
    fps: float | None = None,
    size: int | tuple[int, int] | None = None,
    max_frames: int | None = None,
) -> tuple[np.ndarray, float]:
    """Decode a video into RGB frames, resampled in time to ``fps`` and resized to ``size``.

    Args:
        path: any container and codec FFmpeg reads.
        fps: output frame rate (each output time takes the latest frame shown by then);
            ``None`` keeps every decoded frame at the stream's rate.
        size: an int centre-crops to a square of that side; (height, width) resizes.
        max_frames: stop after this many output frames.

    Returns:
        frames (T, H, W, 3) uint8 and their frame rate.

    Raises:
        MediaError: missing, corrupt, no video stream, or no frames.
    """
    import av

    path = Path(path)
    _check_readable(path)
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(path, "has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            out_fps = float(fps) if fps else rate
            next_index = 0  # output frame to fill next
            last: np.ndarray | None = None
            last_time: float | None = None
            start: float | None = None
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(frames) / rate
                start = t if start is None else start
                t -= start
                image = frame.to_ndarray(format="rgb24")
                image = resize_frame(image, size) if size is not None else image
                if fps is None:
                    frames.append(image)
                else:
                    # output frame k shows the latest source frame with time <= k / fps
                    while last is not None and next_index / out_fps < t - 1e-6:
                        frames.append(last)
                        next_index += 1
                    last, last_time = image, t
                if max_frames is not None and len(frames) >= max_frames:
                    break
            if fps is not None and last is not None:
                # the last source frame stays on screen for one source frame period
                end = (last_time or 0.0) + 1.0 / rate
                while next_index / out_fps < end - 1e-6:
                    frames.append(last)
                    next_index += 1
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable video file ({err})") from None
    if not frames:
        raise MediaError(path, "video stream holds no frames")
    if max_frames is not None:
        frames = frames[:max_frames]
    return np.stack(frames), out_fps


def probe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Streams of a media file: video (frames, fps, size) and audio (rate, channels, seconds)."""
    import av

    path = Path(path)
    _check_readable(path)
    info: dict[str, Any] = {}
    try:
        with av.open(str(path)) as container:
            for stream in container.streams.video[:1]:
                frames = sum(1 for _ in container.decode(stream))
                info["video"] = {
                    "frames": frames,
                    "fps": float(stream.average_rate or 0),
                    "width": stream.codec_context.width,
                    "height": stream.codec_context.height,
                }
            container.seek(0)
            for astream in container.streams.audio[:1]:
                samples = sum(f.samples for f in container.decode(astream))
                rate = astream.codec_context.sample_rate
                info["audio"] = {
                    "sample_rate": rate,
                    "channels": astream.codec_context.channels,
                    "seconds": samples / rate,
                }
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable media file ({err})") from None
    return info


class VideoWriter:
    """Stream RGB frames into an .mp4 (h264, yuv420p) and mux an audio track (aac) on close.

    Memory stays flat in the video's length: frames are encoded as they arrive. The file
    appears under its name only when :meth:`close` succeeds.

    Example:
        >>> with VideoWriter("out.mp4", fps=25, audio=wave, sample_rate=16000) as w:
        ...     for batch in batches:
        ...         w.write(batch)  # (T, H, W, 3) uint8
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
        crf: int = 20,
    ) -> None:
        import av

        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if audio is not None and not sample_rate:
            raise ValueError("audio needs its sample_rate")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.stem}.", suffix=".tmp.mp4", dir=self.path.parent
        )
        os.close(fd)
        os.chmod(tmp, 0o644)
        self._tmp = Path(tmp)
        self.fps = fps
        self.audio = None if audio is None else np.asarray(audio, dtype=np.float32)
        self.sample_rate = sample_rate
        self.frames_written = 0
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        self._stream: Any = None
        self._audio_stream: Any = None
        self._crf = crf

    def _open_stream(self, height: int, width: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(self._crf), "preset": "veryfast"}
        if self.audio is not None:
            # every stream must exist before the first packet is muxed
            self._audio_stream = self._container.add_stream("aac", rate=self.sample_rate)
            self._audio_stream.layout = "mono"

    def write(self, frames: np.ndarray) -> None:
        """Append frames (T, H, W, 3) or one frame (H, W, 3), uint8 RGB."""
        import av

        frames = np.asarray(frames)
        frames = frames[None] if frames.ndim == 3 else frames
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"frames must be (T, H, W, 3) uint8, got {frames.shape} " f"{frames.dtype}"
            )
        if self._stream is None:
            self._open_stream(*frames.shape[1:3])
        h, w = self._stream.height, self._stream.width
        if frames.shape[1:3] != (h, w):
            # yuv420p needs even sides: repeat the last row/column
            frames = np.pad(
                frames,
                ((0, 0), (0, h - frames.shape[1]), (0, w - frames.shape[2]), (0, 0)),
                mode="edge",
            )
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        self.frames_written += len(frames)

    def _write_audio(self) -> None:
        import av

        assert self.audio is not None and self.sample_rate is not None
        audio = self.audio if self.audio.ndim == 1 else self.audio.mean(axis=0)
        # trim or pad the audio to the video's duration so both streams end together
        n = round(self.frames_written / self.fps * self.sample_rate)
        audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
        stream = self._audio_stream
        chunk = 1024 * 16
        for i in range(0, len(audio), chunk):
            piece = np.clip(audio[i : i + chunk], -1, 1)[None]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(piece), format="fltp", layout="mono"
            )
            frame.sample_rate = self.sample_rate
            frame.pts = i
            frame.time_base = Fraction(1, self.sample_rate)
            for packet in stream.encode(frame):
                self._container.mux(packet)
        for packet in stream.encode(None):
            self._container.mux(packet)

    def close(self) -> Path:
        """Flush the encoders, mux the audio, and move the file to its name."""
        try:
            if self._stream is None:
                raise ValueError(f"{self.path}: no frames were written")
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self.audio is not None:
                self._write_audio()
            self._container.close()
            os.replace(self._tmp, self.path)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        with contextlib.suppress(Exception):
            self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
) -> Path:
    """Write frames (T, H, W, 3) uint8 as an .mp4, with the audio muxed in when given."""
    with VideoWriter(path, fps, audio, sample_rate) as writer:
        writer.write(frames)
    return Path(path)


def to_uint8(video: Any) -> np.ndarray:
    """Frames in [-1, 1], as a tensor (T, 3, H, W) or array (T, H, W, 3), → (T, H, W, 3) uint8."""
    arr = video.detach().float().cpu().numpy() if hasattr(video, "detach") else np.asarray(video)
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype == np.uint8:
        return arr
    return np.clip((arr + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------- drawing


def _stamp(
    canvas: np.ndarray, alpha: np.ndarray, top: int, left: int, color: Sequence[float]
) -> None:
    """Blend ``color`` into ``canvas`` (H, W, 3) float with coverage ``alpha`` at a window."""
    h, w = alpha.shape
    window = canvas[top : top + h, left : left + w]
    window += alpha[..., None] * (np.asarray(color, dtype=np.float32) - window)


def draw_segments(
    canvas: np.ndarray,
    points: np.ndarray,
    edges: Sequence[tuple[int, int]],
    colors: Sequence[Sequence[float]],
    width: float | Sequence[float],
    visible: np.ndarray,
    coverage: np.ndarray | None = None,
) -> None:
    """Draw antialiased segments (capsules) between pixel points into a float canvas.

    Each segment is a distance field evaluated over its bounding box only, so the cost is the
    area the limbs cover, with no per-pixel Python loop.

    Args:
        canvas: (H, W, 3) float32, drawn on in place.
        points: (K, 2) pixel x, y.
        edges: pairs of point indices; a pair (i, i) draws a disc.
        colors: one RGB colour per edge.
        width: line width in pixels, one for all or one per edge.
        visible: (K,) bool; an edge is drawn when both ends are visible.
        coverage: optional (H, W) float32, raised in place to each segment's coverage (for
            masks).
    """
    h, w = canvas.shape[:2]
    widths = [float(width)] * len(edges) if np.isscalar(width) else list(width)  # type: ignore[arg-type]
    for (a, b), color, wd in zip(edges, colors, widths, strict=False):
        if not (visible[a] and visible[b]):
            continue
        r = wd / 2.0
        p, q = points[a], points[b]
        x0 = int(max(np.floor(min(p[0], q[0]) - r - 1), 0))
        x1 = int(min(np.ceil(max(p[0], q[0]) + r + 2), w))
        y0 = int(max(np.floor(min(p[1], q[1]) - r - 1), 0))
        y1 = int(min(np.ceil(max(p[1], q[1]) + r + 2), h))
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        d = q - p
        length2 = float(d @ d)
        t = (
            np.zeros_like(xs)
            if length2 < 1e-9
            else np.clip(((xs - p[0]) * d[0] + (ys - p[1]) * d[1]) / length2, 0.0, 1.0)
        )
        dist = np.hypot(xs - (p[0] + t * d[0]), ys - (p[1] + t * d[1]))
        alpha = np.clip(r + 0.5 - dist, 0.0, 1.0)
        _stamp(canvas, alpha, y0, x0, color)
        if coverage is not None:
            window = coverage[y0:y1, x0:x1]
            np.maximum(window, alpha, out=window)


def draw_skeleton(
    image: np.ndarray | tuple[int, int],
    keypoints: np.ndarray,
    edges: Sequence[tuple[int, int]] | None = None,
    width: float | None = None,
    min_confidence: float = 0.1,
) -> np.ndarray:
    """Draw a skeleton (body + hands by default) over an image or a black canvas.

    Args:
        image: (H, W, 3) uint8 to draw on, or (height, width) of a black canvas.
        keypoints: (K, 3) x, y in [0, 1] and confidence, or (K, 2).
        edges: pairs of keypoint indices; the 67-point OpenPose layout by default.
        width: line width in pixels; about 1.5 % of the image side by default.
        min_confidence: points below it are not drawn.

    Returns:
        (H, W, 3) uint8.
    """
    canvas = (
        np.zeros((*image, 3), np.float32)
        if isinstance(image, tuple)
        else np.asarray(image, dtype=np.float32).copy()
    )
    h, w = canvas.shape[:2]
    kp = np.asarray(keypoints, dtype=np.float32)
    conf = kp[:, 2] if kp.shape[1] > 2 else np.ones(len(kp), np.float32)
    points = kp[:, :2] * np.array([w, h], np.float32)
    edges = openpose_edges() if edges is None else list(edges)
    edges = [(a, b) for a, b in edges if a < len(kp) and b < len(kp)]
    width = max(1.0, 0.015 * min(h, w)) if width is None else width
    draw_segments(canvas, points, edges, edge_colors(len(edges)), width, conf >= min_confidence)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def draw_heatmaps(keypoints: np.ndarray, size: tuple[int, int], sigma: float = 2.0) -> np.ndarray:
    """Gaussian heatmaps, one per keypoint, scaled by its confidence.

    Shape:
        keypoints (K, 3) in [0, 1] image coordinates → (K, H, W) float32 in [0, 1].
    """
    h, w = size
    kp = np.asarray(keypoints, dtype=np.float32)
    conf = kp[:, 2:3, None] if kp.shape[1] > 2 else 1.0
    ys = (np.arange(h, dtype=np.float32) + 0.5)[None, :, None]
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, None, :]
    px, py = kp[:, 0, None, None] * w, kp[:, 1, None, None] * h
    g = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma**2))
    return (g * conf).astype(np.float32)


def heatmap_overlay(image: np.ndarray, heatmaps: np.ndarray, strength: float = 0.8) -> np.ndarray:
    """Blend the max over heatmaps (K, H, W) onto an RGB image as a warm colour."""
    heat = np.clip(heatmaps.max(axis=0), 0, 1)[..., None]
    warm = np.concatenate([np.ones_like(heat), heat, 0.2 * heat], axis=-1) * 255
    out = image.astype(np.float32) * (1 - strength * heat) + warm * strength * heat
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def draw_roll(roll: np.ndarray, height: int = 176, cursor: int | None = None) -> np.ndarray:
    """A piano roll (T, 88) as an image: time left to right, A0 at the bottom.

    Returns:
        (height, T, 3) uint8; keys white on dark grey, an optional red cursor column.
    """
    roll = np.asarray(roll, dtype=np.float32)
    img = np.clip(roll.T[::-1], 0, 1)  # (88, T), high keys on top
    img = img[np.arange(height) * img.shape[0] // height]  # every key keeps its rows
    rgb = (40 + 215 * img)[..., None].repeat(3, axis=-1)
    if cursor is not None and 0 <= cursor < rgb.shape[1]:
        rgb[:, cursor] = (255, 40, 40)
    return rgb.astype(np.uint8)


def hstack_videos(*videos: np.ndarray) -> np.ndarray:
    """Put videos (T, H, W, 3) side by side, each resized to the first one's height."""
    t = min(len(v) for v in videos)
    h = videos[0].shape[1]
    resized = []
    for v in videos:
        if v.shape[1] != h:
            size = (h, round(v.shape[2] * h / v.shape[1]))
            v = np.stack([resize_frame(f, size) for f in v[:t]])
        resized.append(v[:t])
    return np.concatenate(resized, axis=2)


# ------------------------------------------------------------------------------------- MIDI


def default_soundfont() -> Path:
    """The General MIDI soundfont that ships inside the pretty_midi wheel."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def midi_to_audio(
    midi: Any,
    sample_rate: int,
    soundfont: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Render MIDI through FluidSynth with a General MIDI soundfont.

    Args:
        midi: a ``pretty_midi.PrettyMIDI`` or a path to a .mid file.
        sample_rate: output rate.
        soundfont: an .sf2 path; the one in the pretty_midi wheel by default.

    Returns:
        mono float32 waveform, peak-normalised to 0.9 unless silent.

    Raises:
        MediaError: unreadable MIDI or soundfont.
        MissingDependency: FluidSynth's system library is not installed.
    """
    import pretty_midi

    if not isinstance(midi, pretty_midi.PrettyMIDI):
        path = Path(midi)
        _check_readable(path)
        try:
            midi = pretty_midi.PrettyMIDI(str(path))
        except Exception as err:  # pretty_midi/mido raise many types on corrupt files
            raise MediaError(path, f"not a readable MIDI file ({err})") from None
    sf2 = Path(soundfont) if soundfont is not None else default_soundfont()
    _check_readable(sf2)
    try:
        import fluidsynth  # noqa: F401
    except ImportError as err:
        raise MissingDependency(
            f"FluidSynth is not usable ({err}); install its system library: "
            "`apt-get install libfluidsynth3` (Debian/Ubuntu), `dnf install fluidsynth-libs` "
            "(Fedora) or `brew install fluid-synth` (macOS)"
        ) from None
    audio = midi.fluidsynth(fs=sample_rate, sf2_path=str(sf2))
    if audio.size == 0:
        return np.zeros(0, np.float32)
    peak = float(np.abs(audio).max())
    if peak > SILENCE:
        audio = audio * (0.9 / peak)
    return audio.astype(np.float32)
