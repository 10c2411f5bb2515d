"""Raw performance videos into the on-disk format: the sound, a stable square crop around the
performer, OpenPose-layout keypoints and person masks from mediapipe (an optional extra).

One video becomes one performance folder, written atomically through
:func:`audiovis.data.schema.write_performance`. The steps:

1. the first audio track is decoded, aligned to the first video frame by the container's
   timestamps, resampled to ``sample_rate`` and mixed to mono. A video without an audio track is
   refused (:class:`NoAudioTrack`): every model of the zoo learns from sound and sight together,
   and a silent performance would teach a model that this motion makes no sound;
2. frames are resampled in time to ``fps`` by their timestamps (variable-frame-rate phone video
   included: output frame k shows the latest source frame shown at k / fps), turned upright by
   the display-matrix rotation (portrait phone video), and cropped to one square for the whole
   video. ``crop=None`` finds it from the person mask on frames sampled over the whole video (a
   robust union of the per-frame boxes, so the crop does not follow per-frame jitter); without
   mediapipe it is the centre square. An explicit ``(x, y, w, h)`` is taken as given, widened
   to a square about its centre;
3. with mediapipe 0.10.21 (installed as :data:`POSE_INSTALL` says), the pose
   landmarker with segmentation and the hand landmarker run on the cropped frames: their
   points are mapped into the zoo's 67-point layout (:mod:`audiovis.skeleton`; confidence 0 for
   OpenPose points mediapipe has no counterpart of) and the segmentation becomes the binary
   mask. A video in which no person is found is refused (:class:`NoPersonFound`).

A rerun skips videos whose folder records the same source file and settings; a folder of
videos is imported by parallel worker processes, and a file that fails is reported while the
rest are imported.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiovis.data.schema import (
    SPLITS,
    PerformanceMeta,
    check_performance,
    read_manifest,
    read_meta,
    write_manifest,
    write_performance,
)
from audiovis.errors import AudiovisError, FileProblem, MissingDependency
from audiovis.media import SILENCE, atomic_path
from audiovis.skeleton import LEFT_HAND_OFFSET, NUM_HAND, NUM_KEYPOINTS, RIGHT_HAND_OFFSET

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp",
     ".ts", ".mts", ".ogv"}
)  # fmt: skip

# mediapipe 0.10.21's metadata pins numpy < 2 and pulls in jax: it installs without its
# dependencies, then the few it needs (protobuf 6 keeps wandb working beside it)
POSE_INSTALL = (
    "pip install --no-deps mediapipe==0.10.21 && pip install 'audiovis[pose]' (its "
    "dependencies: absl-py attrs flatbuffers 'protobuf>=6.33.5,<7' 'opencv-python-headless<5' "
    "matplotlib), then run `audiovis prepare` again"
)
ANALYSIS_SIDE = 512  # longest side of the frames the auto crop is found on
ANALYSIS_SAMPLES = 24  # frames sampled over the whole video for the auto crop
ESTIMATOR_SIDE = 256  # smallest crop side the pose estimator is given

# mediapipe's 33 pose landmarks → OpenPose BODY_25 (index into BODY_25_NAMES: mediapipe index).
# The neck and mid-hip are midpoints of the shoulders and hips; the small toes have no
# counterpart and keep confidence 0.
MEDIAPIPE_TO_BODY25: dict[int, int] = {
    0: 0,  # nose
    2: 12,  # r_shoulder ← right_shoulder
    3: 14,  # r_elbow
    4: 16,  # r_wrist
    5: 11,  # l_shoulder
    6: 13,  # l_elbow
    7: 15,  # l_wrist
    9: 24,  # r_hip
    10: 26,  # r_knee
    11: 28,  # r_ankle
    12: 23,  # l_hip
    13: 25,  # l_knee
    14: 27,  # l_ankle
    15: 5,  # r_eye
    16: 2,  # l_eye
    17: 8,  # r_ear
    18: 7,  # l_ear
    19: 31,  # l_big_toe ← left_foot_index
    21: 29,  # l_heel
    22: 32,  # r_big_toe ← right_foot_index
    24: 30,  # r_heel
}
MIDPOINTS: dict[int, tuple[int, int]] = {1: (11, 12), 8: (23, 24)}  # neck, mid_hip
NO_COUNTERPART = (20, 23)  # l_small_toe, r_small_toe


class NoAudioTrack(FileProblem):
    """The video has no audio track: refused, since the zoo learns from sound and sight."""


class NoPersonFound(FileProblem):
    """The pose estimator found nobody in the video."""


@dataclass(frozen=True)
class PrepareConfig:
    """How videos become performances.

    Attributes:
        fps: output frame rate.
        size: output frame side (square).
        crop: ``(x, y, w, h)`` in upright source pixels, or ``None`` to find it (auto).
        sample_rate: output audio rate.
        pose: ``True`` requires mediapipe, ``False`` skips keypoints and masks, ``None`` uses
            mediapipe when it is installed.
        hands: also run the hand landmarker (the 2 x 21 hand points); off saves ~1/3 of the time.
        instrument, style, performer: labels written to every performance.
        split: ``"auto"`` (about 10 % val, 10 % test from three videos up, by a hash of the
            name), or one of train/val/test for all.
    """

    fps: float = 25.0
    size: int = 256
    crop: tuple[int, int, int, int] | None = None
    sample_rate: int = 16000
    pose: bool | None = None
    hands: bool = True
    instrument: str = "unknown"
    style: str = "none"
    performer: str = "unknown"
    split: str = "auto"

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.sample_rate < 1000 or not 16 <= self.size <= 2048:
            raise AudiovisError(
                f"prepare: need fps > 0, sample_rate >= 1000, 16 <= size <= 2048 (got fps "
                f"{self.fps}, sample_rate {self.sample_rate}, size {self.size})"
            )
        if self.split != "auto" and self.split not in SPLITS:
            raise AudiovisError(f"prepare: split must be auto or one of {list(SPLITS)}")
        if self.crop is not None and (len(self.crop) != 4 or min(self.crop[2:]) <= 0):
            raise AudiovisError(f"prepare: crop must be x,y,w,h with w, h > 0, got {self.crop}")


def parse_crop(text: str) -> tuple[int, int, int, int] | None:
    """``"auto"`` → None; ``"x,y,w,h"`` → a tuple of ints."""
    if text.strip().lower() == "auto":
        return None
    parts = text.replace(" ", "").split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise AudiovisError(f"--crop must be auto or x,y,w,h in pixels, got {text!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise AudiovisError(f"--crop: x, y must be >= 0 and w, h > 0, got {text!r}")
    return x, y, w, h


def pose_available() -> bool:
    """Whether mediapipe's bundled pose, hand and segmentation models can be loaded."""
    try:
        import mediapipe  # noqa: F401
        from mediapipe.python.solutions import hands, pose  # noqa: F401
    except Exception:  # a broken install (protobuf mismatch) is as good as none
        return False
    return True


def require_pose() -> None:
    """Raise :class:`MissingDependency` saying how to install mediapipe when it is missing."""
    if not pose_available():
        raise MissingDependency(
            "keypoints and person masks need mediapipe 0.10.21, which is not installed (or "
            f"fails to import): {POSE_INSTALL}"
        )


# ------------------------------------------------------------------------------ keypoints


def body25_from_mediapipe(landmarks: np.ndarray) -> np.ndarray:
    """Map mediapipe's 33 pose landmarks to OpenPose BODY_25.

    Args:
        landmarks: (33, 3) x, y in [0, 1] of the image and visibility in [0, 1].

    Returns:
        (25, 3) x, y, confidence; the midpoints (neck, mid-hip) take the lower confidence of
        their two ends; points with no counterpart (the small toes) have confidence 0.
    """
    lm = np.asarray(landmarks, dtype=np.float32)
    out = np.zeros((25, 3), np.float32)
    for body, mp_index in MEDIAPIPE_TO_BODY25.items():
        out[body] = lm[mp_index]
    for body, (a, b) in MIDPOINTS.items():
        out[body, :2] = (lm[a, :2] + lm[b, :2]) / 2
        out[body, 2] = min(lm[a, 2], lm[b, 2])
    return out


def assign_hands(
    hands: Sequence[tuple[np.ndarray, str, float]], body: np.ndarray, min_conf: float = 0.3
) -> dict[str, tuple[np.ndarray, float]]:
    """Decide which detected hand is the performer's left and which the right.

    Nearest body wrist wins when the body's wrists are visible; otherwise mediapipe's
    handedness label is used, swapped, since it assumes a mirrored (selfie) image.

    Args:
        hands: per detected hand, its (21, 2) points in [0, 1], mediapipe's label
            ("Left"/"Right") and its score.
        body: (25, 3) BODY_25 points of the same frame.
        min_conf: body wrists below it count as unseen.

    Returns:
        ``{"left": (points, score), "right": ...}`` for the hands found.
    """
    wrists = {"left": body[7], "right": body[4]}
    out: dict[str, tuple[np.ndarray, float]] = {}
    candidates = []
    for points, label, score in hands:
        seen = [s for s, w in wrists.items() if w[2] >= min_conf]
        if seen:
            dists = {s: float(np.linalg.norm(points[0] - wrists[s][:2])) for s in seen}
            side = min(dists, key=dists.__getitem__)
            candidates.append((dists[side], side, points, score))
        else:
            side = "right" if label.lower() == "left" else "left"
            candidates.append((0.0, side, points, score))
    for _, side, points, score in sorted(candidates, key=lambda c: c[0]):
        if side not in out:
            out[side] = (points, score)
        else:  # both nearest one wrist: the farther one is the other hand
            other = "left" if side == "right" else "right"
            out.setdefault(other, (points, score))
    return out


def to_openpose(
    landmarks: np.ndarray | None, hands: Sequence[tuple[np.ndarray, str, float]] = ()
) -> np.ndarray:
    """One frame's mediapipe results → (67, 3) in the zoo's layout (zeros where nothing)."""
    out = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    if landmarks is None:
        return out
    out[:25] = body25_from_mediapipe(landmarks)
    for side, (points, score) in assign_hands(hands, out[:25]).items():
        offset = LEFT_HAND_OFFSET if side == "left" else RIGHT_HAND_OFFSET
        out[offset : offset + NUM_HAND, :2] = points[:, :2]
        out[offset : offset + NUM_HAND, 2] = score
    out[:, :2] = np.clip(out[:, :2], 0.0, 1.0)
    return out


def hands_visible(landmarks: np.ndarray, min_size: float = 0.04) -> bool:
    """Whether a hand is worth the hand landmarker: a visible wrist whose wrist-to-index span
    (mediapipe pose points 15/19 and 16/20) is at least ``min_size`` of the image side; smaller
    hands are below what its palm detector sees, and skipping them saves ~20 ms a frame."""
    for wrist, index in ((15, 19), (16, 20)):
        span = float(np.linalg.norm(landmarks[wrist, :2] - landmarks[index, :2]))
        if landmarks[wrist, 2] >= 0.5 and span >= min_size:
            return True
    return False


class PoseEstimator:
    """mediapipe's pose landmarker (with segmentation) and hand landmarker over one video.

    Both track from frame to frame, so one estimator serves one video, in order. The hand
    landmarker runs only on frames where :func:`hands_visible` says a hand is big enough.
    """

    def __init__(self, hands: bool = True, static: bool = False, min_hand: float = 0.04) -> None:
        require_pose()
        self.min_hand = min_hand
        from mediapipe.python.solutions import hands as mp_hands
        from mediapipe.python.solutions import pose as mp_pose

        # only model_complexity=1 is bundled with the wheel (the others download at run time)
        self._pose = mp_pose.Pose(
            static_image_mode=static,
            model_complexity=1,
            smooth_landmarks=not static,
            enable_segmentation=True,
            smooth_segmentation=not static,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._hands = (
            mp_hands.Hands(
                static_image_mode=static,
                max_num_hands=2,
                model_complexity=1,
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )
            if hands
            else None
        )

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Keypoints (67, 3) and the person's soft mask (H, W) float32 (None: nobody)."""
        image = np.ascontiguousarray(frame)
        result = self._pose.process(image)
        if result.pose_landmarks is None:
            return np.zeros((NUM_KEYPOINTS, 3), np.float32), None
        landmarks = np.array(
            [(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], np.float32
        )
        found: list[tuple[np.ndarray, str, float]] = []
        if self._hands is not None and hands_visible(landmarks, self.min_hand):
            hands = self._hands.process(image)
            for points, handed in zip(
                hands.multi_hand_landmarks or [], hands.multi_handedness or [], strict=False
            ):
                xy = np.array([(p.x, p.y) for p in points.landmark], np.float32)
                label = handed.classification[0]
                found.append((xy, label.label, float(label.score)))
        mask = result.segmentation_mask
        return to_openpose(landmarks, found), None if mask is None else np.asarray(mask)

    def close(self) -> None:
        self._pose.close()
        if self._hands is not None:
            self._hands.close()

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------- media


@dataclass
class VideoInfo:
    """What the container says about a video before decoding it."""

    width: int  # upright (after the display rotation)
    height: int
    rotation: int  # degrees counter-clockwise the coded frames are turned to display them
    fps: float
    duration: float
    has_audio: bool


def probe_video(path: Path) -> VideoInfo:
    """Read the container's headers (and the first frame, for its rotation)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise FileProblem(path, "has no video stream")
            stream = container.streams.video[0]
            rotation = 0
            for frame in container.decode(stream):
                rotation = int(round((frame.rotation or 0) / 90.0)) * 90 % 360
                break
            else:
                raise FileProblem(path, "video stream holds no frames")
            width, height = stream.codec_context.width, stream.codec_context.height
            if rotation in (90, 270):
                width, height = height, width
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1e6
            else:
                duration = 0.0
            return VideoInfo(
                width=width,
                height=height,
                rotation=rotation,
                fps=float(stream.average_rate or stream.guessed_rate or 25),
                duration=duration,
                has_audio=bool(container.streams.audio),
            )
    except av.error.FFmpegError as err:
        raise FileProblem(path, f"not a readable video file ({err})") from None


def decode_audio(path: Path) -> tuple[np.ndarray, int, float]:
    """The first audio track as mono float32, its rate, and its start time in seconds.

    Raises:
        NoAudioTrack: the file has none.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise NoAudioTrack(
                    path,
                    "has no audio track; audiovis learns from sound and sight together, so a "
                    "silent video is not imported (mux the recording in first, e.g. `ffmpeg -i "
                    "video.mp4 -i sound.wav -map 0:v -map 1:a -c:v copy out.mp4`)",
                )
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate)
            resampler = av.AudioResampler(format="fltp", rate=rate)
            chunks: list[np.ndarray] = []
            start: float | None = None
            for frame in container.decode(stream):
                if start is None and frame.time is not None:
                    start = float(frame.time)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0))
            chunks += [out.to_ndarray().mean(axis=0) for out in resampler.resample(None)]
    except av.error.FFmpegError as err:
        raise FileProblem(path, f"not a readable audio track ({err})") from None
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise NoAudioTrack(path, "its audio track holds no samples")
    audio = np.concatenate(chunks).astype(np.float32)
    if not np.isfinite(audio).all():
        raise FileProblem(path, "its audio track holds NaN or infinite samples")
    if float(np.abs(audio).max()) < SILENCE:
        raise NoAudioTrack(
            path,
            f"its audio track is silent (peak {float(np.abs(audio).max()):.1e}); audiovis "
            "learns from sound and sight together, so a silent video is not imported (mux the "
            "recording in first, e.g. `ffmpeg -i video.mp4 -i sound.wav -map 0:v -map 1:a "
            "-c:v copy out.mp4`)",
        )
    return audio, rate, start or 0.0


Transform = Callable[[Any], np.ndarray]


def sample_frames(
    path: Path, fps: float, transform: Transform
) -> Iterator[tuple[float, np.ndarray]]:
    """Decode a video at ``fps`` by timestamps: output frame k shows the latest source frame
    shown by k / fps (variable frame rates included); only emitted frames are transformed.

    Yields:
        (time of the first source frame, in the container's clock; the transformed frame).
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            index = 0  # next output frame
            start: float | None = None
            last: Any = None
            last_time = 0.0
            cached: np.ndarray | None = None
            for count, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else count / rate
                start = t if start is None else start
                t -= start
                if t < last_time - 1e-6:  # out of order timestamps: keep the stream's order
                    t = last_time
                while last is not None and index / fps < t - 1e-6:
                    if cached is None:
                        cached = transform(last)
                    yield start, cached
                    index += 1
                last, last_time, cached = frame, t, None
            if last is not None and start is not None:
                # the last source frame stays on screen for one source frame period
                while index / fps < last_time + 1.0 / rate - 1e-6:
                    if cached is None:
                        cached = transform(last)
                    yield start, cached
                    index += 1
    except av.error.FFmpegError as err:
        raise FileProblem(path, f"not a readable video file ({err})") from None


def keyframe_times(path: Path) -> list[float]:
    """Times of the video's keyframes, from the packets alone (no decoding)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return [
                float(p.pts * p.time_base)
                for p in container.demux(stream)
                if p.is_keyframe and p.pts is not None and p.time_base is not None
            ]
    except av.error.FFmpegError as err:
        raise FileProblem(path, f"not a readable video file ({err})") from None


def keyframes(path: Path, transform: Transform) -> Iterator[np.ndarray]:
    """Decode the keyframes only (each decodes without the frames between them)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context
            for packet in container.demux(stream):
                if packet.is_keyframe and packet.dts is not None:
                    for frame in codec.decode(packet):
                        yield transform(frame)
            for frame in codec.decode(None):
                yield transform(frame)
    except av.error.FFmpegError as err:
        raise FileProblem(path, f"not a readable video file ({err})") from None


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    # the display matrix turns the coded frame counter-clockwise by `rotation` degrees
    return np.rot90(image, k=rotation // 90) if rotation else image


def scaled_transform(info: VideoInfo, scale: float, box: tuple[int, int, int] | None) -> Transform:
    """Frame → upright RGB scaled by ``scale``, then cut to ``box`` = (x, y, side) given in
    upright source pixels (the box's side becomes ``round(side * scale)``)."""
    coded_w, coded_h = (
        (info.height, info.width) if info.rotation in (90, 270) else (info.width, info.height)
    )
    width, height = max(1, round(coded_w * scale)), max(1, round(coded_h * scale))

    def transform(frame: Any) -> np.ndarray:
        image = frame.reformat(
            width=width, height=height, format="rgb24", interpolation="AREA"
        ).to_ndarray()
        image = _upright(image, info.rotation)
        if box is None:
            return np.ascontiguousarray(image)
        x, y, side = box
        out = round(side * scale)
        top, left = round(y * scale), round(x * scale)
        cut = image[top : top + out, left : left + out]
        if cut.shape[:2] != (out, out):  # rounding at the border: repeat the edge
            cut = np.pad(
                cut, ((0, out - cut.shape[0]), (0, out - cut.shape[1]), (0, 0)), mode="edge"
            )
        return np.ascontiguousarray(cut)

    return transform


def threaded(items: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """Run an iterator in a thread (decoding overlaps the estimator), re-raising its errors."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("end", None))
        except BaseException as err:
            box.put(("error", err))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


# ----------------------------------------------------------------------------------- crop


def shrink(image: np.ndarray, size: int) -> np.ndarray:
    """A square image (uint8 RGB or a float mask) resized to ``size`` (antialiased)."""
    if image.shape[0] == size:
        return image
    from PIL import Image

    if image.dtype == np.uint8:
        resized = Image.fromarray(image).resize(
            (size, size), Image.Resampling.BILINEAR, reducing_gap=2.0
        )
        return np.asarray(resized)
    soft = Image.fromarray(np.asarray(image, np.float32))  # mode F
    return np.asarray(soft.resize((size, size), Image.Resampling.BILINEAR), np.float32)


def person_box(mask: np.ndarray, threshold: float = 0.5) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) in pixels of a soft mask's pixels above ``threshold``;
    NaNs when there are none."""
    on = mask > threshold
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    if not len(rows):
        return (np.nan,) * 4  # type: ignore[return-value]
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def stable_square_crop(
    boxes: np.ndarray, width: int, height: int, margin: float = 0.12, spread: float = 5.0
) -> tuple[int, int, int]:
    """One square for the whole video that holds the performer in (nearly) every frame.

    The square covers the ``spread``-th to ``100 - spread``-th percentile of the per-frame
    boxes' edges (so a few wrong detections do not widen it), plus ``margin`` of its side on
    each side, clamped into the frame.

    Args:
        boxes: (N, 4) x0, y0, x1, y1 in pixels; rows with NaN (nobody found) are ignored.
        width, height: frame size.

    Returns:
        (x, y, side) in pixels.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    if not len(boxes):
        raise ValueError("no boxes")
    x0, y0 = np.percentile(boxes[:, 0], spread), np.percentile(boxes[:, 1], spread)
    x1, y1 = np.percentile(boxes[:, 2], 100 - spread), np.percentile(boxes[:, 3], 100 - spread)
    wanted = float(max(x1 - x0, y1 - y0)) * (1 + 2 * margin)
    side = int(round(min(max(wanted, 16.0), width, height)))
    x = int(round(np.clip((x0 + x1) / 2 - side / 2, 0, width - side)))
    y = int(round(np.clip((y0 + y1) / 2 - side / 2, 0, height - side)))
    return x, y, side


def square_of(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int]:
    """A user's (x, y, w, h) → the square (x, y, side) about its centre, inside the frame."""
    x, y, w, h = box
    if x >= width or y >= height:
        raise AudiovisError(f"--crop {x},{y},{w},{h} starts outside the {width}x{height} frame")
    side = min(max(w, h), width, height)
    cx, cy = x + w / 2, y + h / 2
    left = int(round(np.clip(cx - side / 2, 0, width - side)))
    top = int(round(np.clip(cy - side / 2, 0, height - side)))
    return left, top, side


def auto_crop(path: Path, info: VideoInfo, samples: int = ANALYSIS_SAMPLES) -> tuple[int, int, int]:
    """Find the performer's square from person masks on frames sampled over the whole video.

    Raises:
        NoPersonFound: the estimator found nobody in any sampled frame.
    """
    scale = min(1.0, ANALYSIS_SIDE / max(info.width, info.height))
    transform = scaled_transform(info, scale, None)
    times = keyframe_times(path)
    # keyframes decode alone, so sampling them skips most decoding; used when they are dense
    # enough to follow the performer (one per 2 s at least)
    dense = len(times) >= 4 and np.diff([0.0, *times, info.duration]).max() <= 2.0 + 1e-3
    rate = min(max(samples / max(info.duration, 1e-3), 0.5), 30.0)
    frames = (
        keyframes(path, transform)
        if dense
        else (f for _, f in sample_frames(path, rate, transform))
    )
    boxes = []
    with PoseEstimator(hands=False, static=True) as estimator:
        for frame in frames:
            _, mask = estimator(frame)
            boxes.append(person_box(mask) if mask is not None else (np.nan,) * 4)
    found = np.isfinite(np.asarray(boxes, np.float64)).all(axis=1)
    if not found.any():
        raise NoPersonFound(
            path,
            f"no person found in any of {len(boxes)} frames sampled over the video; give the "
            "performer's box with --crop x,y,w,h and --no-pose to import frames and sound only",
        )
    x, y, side = stable_square_crop(np.asarray(boxes) / scale, info.width, info.height)
    return x, y, side


# -------------------------------------------------------------------------------- importer


def performance_name(path: Path) -> str:
    """A folder name from a file name: lower case letters, digits and underscores."""
    name = re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_")
    return (name or "video")[:80]


def fingerprint(path: Path, config: PrepareConfig, pose: bool) -> dict[str, Any]:
    """What a finished performance must match to be skipped on a rerun."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
    settings = asdict(config)
    settings.pop("split")
    settings["crop"] = list(config.crop) if config.crop else None
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha1_first_mib": digest.hexdigest(),
        "settings": settings,
        "pose": pose,
    }


def is_finished(folder: Path, stamp: dict[str, Any]) -> bool:
    """The folder holds a sound performance prepared from the same file with the same settings."""
    if not (folder / "meta.json").is_file():
        return False
    try:
        meta = read_meta(folder)
    except AudiovisError:
        return False
    return meta.extra.get("prepare") == stamp and not check_performance(folder, deep=False)


def prepare_video(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    config: PrepareConfig | None = None,
    name: str | None = None,
    progress: bool = False,
) -> PerformanceMeta:
    """Import one video as the performance ``root/name`` (written atomically).

    Args:
        path: a video with an audio track, in any container and codec FFmpeg reads.
        root: dataset root.
        config: settings; the defaults give 25 fps, 256 x 256, 16 kHz, auto crop.
        name: the performance's name (by default from the file name).
        progress: show a progress bar over frames.

    Returns:
        the performance's metadata (``extra`` records the crop, the source's durations and the
        share of frames with a person).

    Raises:
        FileProblem: unreadable file, no video stream. NoAudioTrack: no sound.
        NoPersonFound: the estimator found nobody. MissingDependency: ``config.pose`` is True
        and mediapipe is not installed.
    """
    config = config or PrepareConfig()
    path = Path(path)
    if not path.is_file():
        raise FileProblem(path, "no such file")
    if path.stat().st_size == 0:
        raise FileProblem(path, "empty file")
    if config.pose:
        require_pose()
    use_pose = pose_available() if config.pose is None else config.pose
    name = name or performance_name(path)
    info = probe_video(path)
    audio, audio_rate, audio_start = decode_audio(path)

    if config.crop is not None:
        box = square_of(config.crop, info.width, info.height)
    elif use_pose:
        box = auto_crop(path, info)
    else:
        side = min(info.width, info.height)
        box = ((info.width - side) // 2, (info.height - side) // 2, side)
    # the estimator sees the crop at ESTIMATOR_SIDE at least (not upsampled): its landmark
    # model loses small people in a 128 px crop that it follows at 256 px
    work = max(config.size, min(ESTIMATOR_SIDE, box[2])) if use_pose else config.size
    transform = scaled_transform(info, work / box[2], box)

    frames: list[np.ndarray] = []
    keypoints: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    found = 0
    video_start = 0.0
    expected = max(1, int(np.ceil(info.duration * config.fps))) if info.duration else None
    bar = _bar(expected, name, progress)
    estimator = PoseEstimator(hands=config.hands) if use_pose else None
    try:
        for start, frame in threaded(sample_frames(path, config.fps, transform)):
            video_start = start
            frames.append(shrink(frame, config.size))
            if estimator is not None:
                points, soft = estimator(frame)
                keypoints.append(points)
                masks.append(
                    np.zeros((config.size, config.size), np.uint8)
                    if soft is None
                    else (shrink(soft, config.size) > 0.5).astype(np.uint8)
                )
                found += soft is not None
            bar.update(1)
    finally:
        bar.close()
        if estimator is not None:
            estimator.close()
    if not frames:
        raise FileProblem(path, "video stream holds no frames")
    if estimator is not None and found == 0:
        raise NoPersonFound(
            path,
            f"no person found in any of its {len(frames)} frames; import frames and sound "
            "only with --no-pose (and --crop x,y,w,h)",
        )

    num_frames = len(frames)
    # audio sample s plays at audio_start + s / rate: shift it onto the first frame's clock
    shift = int(round((audio_start - video_start) * audio_rate))
    audio = np.pad(audio, (shift, 0)) if shift > 0 else audio[-shift:]
    source_audio_seconds = len(audio) / audio_rate
    audio = resample_audio(audio, audio_rate, config.sample_rate)
    length = int(round(num_frames / config.fps * config.sample_rate))
    audio = np.pad(audio[:length], (0, max(0, length - len(audio))))
    arrays: dict[str, np.ndarray] = {"video": np.stack(frames)}
    extra: dict[str, Any] = {
        "crop": {"x": box[0], "y": box[1], "side": box[2]},
        "source_size": [info.height, info.width],
        "source_rotation": info.rotation,
        "source_fps": round(info.fps, 4),
        "source_video_seconds": round(num_frames / config.fps, 4),
        "source_audio_seconds": round(source_audio_seconds, 4),
        "audio_start_offset": round(audio_start - video_start, 4),
        "prepare": fingerprint(path, config, use_pose),
    }
    if estimator is not None:
        arrays["keypoints"] = np.stack(keypoints)
        arrays["mask"] = np.stack(masks)
        extra["person_frames"] = round(found / num_frames, 4)
        extra["keypoints_from"] = "mediapipe 0.10.21 pose + hands, mapped to OpenPose BODY_25"
    else:
        extra["missing_streams"] = {
            "keypoints": f"re-import with the pose estimator: {POSE_INSTALL}",
            "mask": f"re-import with the pose estimator: {POSE_INSTALL}",
        }
    meta = PerformanceMeta(
        name=name,
        fps=config.fps,
        sample_rate=config.sample_rate,
        num_frames=num_frames,
        size=(config.size, config.size),
        streams=["instrument", "style", "performer"],
        instrument=config.instrument,
        style=config.style,
        performer=config.performer,
        piece=path.stem,
        source=f"video:{path.name}",
        licence="the user's own video",
        extra=extra,
    )
    write_performance(root, meta, arrays, audio)
    return meta


def resample_audio(audio: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Resample mono audio with FFmpeg's band-limited resampler (libswresample, through PyAV):
    fast, and it spares each worker process the seconds that importing torch or scipy.signal
    takes."""
    import av

    audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    if rate == new_rate:
        return audio
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=new_rate)
    out: list[np.ndarray] = []
    chunk = 1 << 16
    for i in range(0, len(audio), chunk):
        frame = av.AudioFrame.from_ndarray(audio[None, i : i + chunk], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        out += [o.to_ndarray()[0] for o in resampler.resample(frame)]
    out += [o.to_ndarray()[0] for o in resampler.resample(None)]
    wave = np.concatenate(out) if out else np.zeros(0, np.float32)
    expected = int(round(len(audio) * new_rate / rate))
    return np.pad(wave[:expected], (0, max(0, expected - len(wave)))).astype(np.float32)


def _bar(total: int | None, name: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="frame", disable=not enabled, leave=False)


# ---------------------------------------------------------------------------------- folders


def find_videos(source: str | os.PathLike[str]) -> list[Path]:
    """A video file, or every video under a folder (recursively, by suffix), sorted."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileProblem(source, "no such file or folder")
    videos = sorted(
        p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    if not videos:
        raise FileProblem(source, f"holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return videos


def unique_names(videos: Sequence[Path]) -> list[str]:
    """Performance names for files, made unique by their suffix, then a counter."""
    names: list[str] = []
    for video in videos:
        name = performance_name(video)
        if name in names:
            name = f"{name}_{video.suffix.lstrip('.').lower()}"
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def assign_splits(names: Sequence[str], split: str = "auto") -> dict[str, str]:
    """Splits for names: all one split, or (auto) ~10 % val and ~10 % test by a stable hash
    order of the names when there are at least three, else all train."""
    if split != "auto":
        return dict.fromkeys(names, split)
    order = sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    out = dict.fromkeys(names, "train")
    if len(order) >= 3:
        held = max(1, round(0.1 * len(order)))
        for n in order[:held]:
            out[n] = "val"
        for n in order[held : 2 * held]:
            out[n] = "test"
    return out


@dataclass
class PrepareReport:
    """What a folder import did."""

    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # file → the problem
    warnings: list[str] = field(default_factory=list)


def _job(args: tuple[str, str, PrepareConfig, str, bool]) -> tuple[str, str, str]:
    """Worker: import one video; returns (name, "ok" | "error", message)."""
    path, root, config, name, progress = args
    try:
        prepare_video(path, root, config, name=name, progress=progress)
    except AudiovisError as err:
        return name, "error", str(err)
    except Exception as err:  # a corrupt file may fail anywhere in FFmpeg or mediapipe
        return name, "error", f"{path}: {type(err).__name__}: {err}"
    return name, "ok", ""


def prepare(
    source: str | os.PathLike[str],
    root: str | os.PathLike[str],
    config: PrepareConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
    dataset_name: str = "",
) -> PrepareReport:
    """Import a video or a folder of videos into the dataset ``root`` and (re)write its
    manifest. Finished videos are skipped; each failure is reported and the rest imported.

    Args:
        source: a video file or a folder searched recursively.
        root: dataset root (created; performances already there are kept).
        config: settings for every video.
        workers: parallel processes (spawned); by default one per core, at most one per video.
        progress: progress bars on stderr.
        dataset_name: ``name`` of the manifest.

    Raises:
        AudiovisError: no video imported at all (the message lists each file's problem).
    """
    import sys

    config = config or PrepareConfig()
    if config.pose:
        require_pose()
    use_pose = pose_available() if config.pose is None else config.pose
    root = Path(root)
    videos = find_videos(source)
    names = unique_names(videos)
    report = PrepareReport()
    if config.pose is None and not use_pose:
        report.warnings.append(
            "mediapipe is not installed: importing frames and sound only, without keypoints "
            f"or masks, and cropping the centre square unless --crop is given; {POSE_INSTALL}"
        )
    todo = []
    for video, name in zip(videos, names, strict=True):
        if is_finished(root / name, fingerprint(video, config, use_pose)):
            report.skipped.append(name)
        else:
            todo.append((str(video), str(root), config, name))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="videos", unit="video", disable=not progress)
        results: Iterator[tuple[str, str, str]]
        if workers == 1:
            results = (_job((*job, progress)) for job in todo)
            pool = None
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_job, [(*job, False) for job in todo])
        try:
            for (path, *_), (name, status, message) in zip(todo, results, strict=True):
                if status == "ok":
                    report.imported.append(name)
                else:
                    report.failed[path] = message
                    print(f"error: {message}", file=sys.stderr, flush=True)
                bar.update(1)
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    done = report.imported + report.skipped
    if not done and not _listed(root):
        problems = "; ".join(report.failed.values())
        raise AudiovisError(f"no video of {source} could be imported: {problems}")
    update_manifest(root, assign_splits(names, config.split), dataset_name)
    return report


def _listed(root: Path) -> list[str]:
    try:
        return read_manifest(root).names()
    except AudiovisError:
        return []


def update_manifest(root: Path, splits: dict[str, str], name: str = "") -> None:
    """Write ``manifest.json`` for every performance folder under ``root``: listed ones keep
    their split, new ones take ``splits`` (train when not named there)."""
    known: dict[str, str] = {}
    dataset_name = name
    if (root / "manifest.json").is_file():
        try:
            manifest = read_manifest(root)
            known = {p["name"]: p["split"] for p in manifest.performances}
            dataset_name = name or manifest.name
        except AudiovisError:
            warnings.warn(f"{root / 'manifest.json'} is malformed; rewriting it", stacklevel=2)
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (folder / "meta.json").is_file():
            continue
        try:
            meta = read_meta(folder)
        except AudiovisError as err:
            warnings.warn(f"left out of the manifest: {err}", stacklevel=2)
            continue
        entries.append((meta, known.get(meta.name) or splits.get(meta.name, "train")))
    if entries:
        write_manifest(root, entries, name=dataset_name)


def mux_audio(
    video: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    out: str | os.PathLike[str],
    seconds: float | None = None,
) -> Path:
    """Copy a video's frames (packets as they are, rotation kept) into an .mp4 with ``audio``
    (mono, trimmed to the video's length) as its AAC track; written atomically.

    Args:
        seconds: keep only the packets that start before this time (a cut at a packet, so
            the frames up to the next keyframe still decode).
    """
    import av

    audio = np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
    with av.open(str(video)) as src, atomic_path(out) as tmp:
        vin = src.streams.video[0]
        known = vin.duration is not None and vin.time_base is not None
        length = float(vin.duration * vin.time_base) if known else len(audio) / sample_rate  # type: ignore[operator]
        length = min(length, seconds) if seconds is not None else length
        audio = audio[: int(length * sample_rate)]
        with av.open(str(tmp), mode="w", format="mp4") as dst:
            vout = dst.add_stream_from_template(vin)
            aout = dst.add_stream("aac", rate=sample_rate)
            aout.layout = "mono"
            for packet in src.demux(vin):
                if packet.dts is None:
                    continue
                start = packet.pts * packet.time_base if packet.pts is not None else None
                if seconds is not None and start is not None and float(start) >= seconds:
                    continue
                packet.stream = vout
                dst.mux(packet)
            chunk = 16384
            for i in range(0, len(audio), chunk):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(audio[None, i : i + chunk]), format="fltp", layout="mono"
                )
                frame.sample_rate = sample_rate
                frame.pts = i
                for packet in aout.encode(frame):
                    dst.mux(packet)
            for packet in aout.encode(None):
                dst.mux(packet)
    return Path(out)
