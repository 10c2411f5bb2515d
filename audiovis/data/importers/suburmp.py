"""Sub-URMP (Chen et al. 2017, the dataset of APVG's experiments) into the on-disk format: one
performance per clip, instruments and performers as classes, the dataset's split kept.

The layout read (frames per instrument / performer / clip, the sound per clip)::

    SUB_URMP/img/<split>/<instrument>/<performer>/<clip>/<frame>.jpg|png
    SUB_URMP/chunk/<split>/<instrument>/<performer>/<clip>.wav|flac

``<split>`` is ``train``, ``validation`` (or ``val``) or ``test``; frames sort by the number in
their name. A clip's frames span its audio, so the source frame rate is the number of frames
over the audio's duration. Each clip is cropped square (around the performer from the person
mask when mediapipe is installed, else the centre), resampled to ``fps`` and ``size``, and
gets keypoints and masks as in :mod:`audiovis.data.importers.video`. The performer label is
``<instrument>_<performer>`` unless the folder name already starts with the instrument, since
Sub-URMP numbers performers within an instrument.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiovis.data.importers.video import (
    ANALYSIS_SAMPLES,
    ESTIMATOR_SIDE,
    PoseEstimator,
    PrepareConfig,
    PrepareReport,
    is_finished,
    person_box,
    pose_available,
    require_pose,
    resample_audio,
    shrink,
    stable_square_crop,
    update_manifest,
)
from audiovis.data.schema import PerformanceMeta, write_performance
from audiovis.errors import AudiovisError, FileProblem

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
AUDIO_SUFFIXES = (".wav", ".flac")
SPLIT_NAMES = {"train": "train", "validation": "val", "val": "val", "test": "test"}


@dataclass(frozen=True)
class Clip:
    """One Sub-URMP clip: its frames and its sound."""

    split: str  # train / val / test
    instrument: str
    performer: str
    clip: str
    frames: tuple[Path, ...]
    audio: Path

    @property
    def name(self) -> str:
        return _slug(f"{self.instrument}_{self.performer}_{self.clip}")

    @property
    def performer_label(self) -> str:
        p = self.performer
        return p if p.lower().startswith(self.instrument.lower()) else f"{self.instrument}_{p}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:80]


def _frame_key(path: Path) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


def find_clips(root: str | os.PathLike[str]) -> tuple[list[Clip], list[str]]:
    """Every clip under a Sub-URMP root, and the problems found (clips without sound or frames).

    Raises:
        FileProblem: the root lacks ``img/`` or ``chunk/``, or holds no clip at all.
    """
    root = Path(root)
    img, chunk = root / "img", root / "chunk"
    for folder in (img, chunk):
        if not folder.is_dir():
            raise FileProblem(
                root, f"not a Sub-URMP root: no {folder.name}/ folder (expected img/<split>/"
                "<instrument>/<performer>/<clip>/ frames and chunk/<split>/<instrument>/"
                "<performer>/<clip>.wav)"
            )  # fmt: skip
    clips, problems = [], []
    for split_dir in sorted(p for p in img.iterdir() if p.is_dir()):
        split = SPLIT_NAMES.get(split_dir.name.lower())
        if split is None:
            problems.append(f"{split_dir}: unknown split (expected {sorted(SPLIT_NAMES)})")
            continue
        for clip_dir in sorted(split_dir.glob("*/*/*")):
            if not clip_dir.is_dir():
                continue
            instrument, performer = clip_dir.parent.parent.name, clip_dir.parent.name
            frames = sorted(
                (p for p in clip_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                key=_frame_key,
            )
            sound_dir = chunk / split_dir.name / instrument / performer
            audio = next(
                (sound_dir / f"{clip_dir.name}{s}" for s in AUDIO_SUFFIXES
                 if (sound_dir / f"{clip_dir.name}{s}").is_file()),
                None,
            )  # fmt: skip
            if not frames:
                problems.append(f"{clip_dir}: no frames ({', '.join(IMAGE_SUFFIXES)})")
            elif audio is None:
                problems.append(f"{clip_dir}: no sound at {sound_dir / clip_dir.name}.wav")
            else:
                clips.append(
                    Clip(split, instrument, performer, clip_dir.name, tuple(frames), audio)
                )
    if not clips:
        raise FileProblem(root, "holds no Sub-URMP clip; " + "; ".join(problems[:5]))
    return clips, problems


def _load(path: Path, box: tuple[int, int, int] | None, size: int | None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
            if box is not None:
                x, y, side = box
                image = image.crop((x, y, x + side, y + side))
            if size is not None:
                scale = size / max(image.size)
                new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                image = image.resize(new, Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(image)
    except OSError as err:
        raise FileProblem(path, f"not a readable image ({err})") from None


def _stamp(clip: Clip, config: PrepareConfig, pose: bool) -> dict[str, Any]:
    digest = hashlib.sha1()
    for path in (*clip.frames, clip.audio):
        st = path.stat()
        digest.update(f"{path.name}:{st.st_size}".encode())
    settings = asdict(config)
    settings.pop("split")
    settings["crop"] = list(config.crop) if config.crop else None
    return {"clip": clip.name, "files": digest.hexdigest(), "settings": settings, "pose": pose}


def clip_crop(clip: Clip, use_pose: bool, config: PrepareConfig) -> tuple[int, int, int]:
    """The clip's square (x, y, side): given, found from person masks, or the centre."""
    from PIL import Image

    with Image.open(clip.frames[0]) as first:
        width, height = first.size
    if config.crop is not None:
        from audiovis.data.importers.video import square_of

        return square_of(config.crop, width, height)
    if not use_pose:
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side
    picks = np.unique(np.linspace(0, len(clip.frames) - 1, ANALYSIS_SAMPLES).round().astype(int))
    boxes = []
    scale = min(1.0, 512 / max(width, height))
    with PoseEstimator(hands=False, static=True) as estimator:
        for i in picks:
            _, mask = estimator(_load(clip.frames[i], None, round(max(width, height) * scale)))
            boxes.append(person_box(mask) if mask is not None else (np.nan,) * 4)
    if not np.isfinite(np.asarray(boxes, np.float64)).all(axis=1).any():
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side
    return stable_square_crop(np.asarray(boxes) / scale, width, height)


def prepare_clip(
    clip: Clip, root: str | os.PathLike[str], config: PrepareConfig | None = None
) -> PerformanceMeta:
    """Import one Sub-URMP clip as the performance ``root/<instrument>_<performer>_<clip>``."""
    from audiovis.media import read_audio

    config = config or PrepareConfig()
    if config.pose:
        require_pose()
    use_pose = pose_available() if config.pose is None else config.pose
    audio, rate = read_audio(clip.audio, allow_silent=True)
    seconds = len(audio) / rate
    source_fps = len(clip.frames) / seconds
    num_frames = max(1, int(np.floor(seconds * config.fps + 1e-6)))
    box = clip_crop(clip, use_pose, config)
    # output frame k shows the latest source frame shown by k / fps
    picks = np.minimum(np.floor(np.arange(num_frames) / config.fps * source_fps + 1e-6),
                       len(clip.frames) - 1).astype(int)  # fmt: skip
    frames, points, masks = [], [], []
    work = max(config.size, min(ESTIMATOR_SIDE, box[2])) if use_pose else config.size
    estimator = PoseEstimator(hands=config.hands) if use_pose else None
    try:
        cache: dict[int, np.ndarray] = {}
        for i in picks:
            if i not in cache:
                cache = {int(i): _load(clip.frames[i], box, work)}
            frame = cache[int(i)]
            frames.append(shrink(frame, config.size))
            if estimator is not None:
                kp, soft = estimator(frame)
                points.append(kp)
                masks.append(
                    np.zeros((config.size, config.size), np.uint8) if soft is None
                    else (shrink(soft, config.size) > 0.5).astype(np.uint8)
                )  # fmt: skip
    finally:
        if estimator is not None:
            estimator.close()
    arrays = {"video": np.stack(frames)}
    extra: dict[str, Any] = {
        "crop": {"x": box[0], "y": box[1], "side": box[2]},
        "source_fps": round(source_fps, 4),
        "source_video_seconds": round(len(clip.frames) / source_fps, 4),
        "source_audio_seconds": round(seconds, 4),
        "suburmp": {"split": clip.split, "clip": clip.clip},
        "prepare": _stamp(clip, config, use_pose),
    }
    if estimator is not None:
        arrays["keypoints"] = np.stack(points)
        arrays["mask"] = np.stack(masks)
        extra["person_frames"] = round(float(np.mean([m.any() for m in masks])), 4)
    wave = resample_audio(audio, rate, config.sample_rate)
    length = int(round(num_frames / config.fps * config.sample_rate))
    wave = np.pad(wave[:length], (0, max(0, length - len(wave))))
    meta = PerformanceMeta(
        name=clip.name,
        fps=config.fps,
        sample_rate=config.sample_rate,
        num_frames=num_frames,
        size=(config.size, config.size),
        streams=["instrument", "performer"],
        instrument=clip.instrument.lower(),
        performer=clip.performer_label.lower(),
        piece=clip.clip,
        source=f"Sub-URMP:{clip.split}/{clip.instrument}/{clip.performer}/{clip.clip}",
        licence="Sub-URMP (research use; see the dataset's terms)",
        extra=extra,
    )
    write_performance(root, meta, arrays, wave)
    return meta


def _job(args: tuple[Clip, str, PrepareConfig]) -> tuple[str, str, str]:
    clip, root, config = args
    try:
        prepare_clip(clip, root, config)
    except AudiovisError as err:
        return clip.name, "error", str(err)
    except Exception as err:  # a damaged image or sound file fails anywhere in PIL or FFmpeg
        return clip.name, "error", f"{clip.frames[0].parent}: {type(err).__name__}: {err}"
    return clip.name, "ok", ""


def import_suburmp(
    source: str | os.PathLike[str],
    root: str | os.PathLike[str],
    config: PrepareConfig | None = None,
    workers: int | None = None,
    max_clips: int | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Import a Sub-URMP root (see the module's docstring for the layout) into ``root``.

    Args:
        source: the Sub-URMP root.
        root: dataset root to write; finished clips are skipped on a rerun.
        config: frame rate, size, crop, pose settings (its split is ignored: the dataset's
            own is kept; its labels are ignored: they come from the folders).
        workers: parallel processes (spawned).
        max_clips: import at most this many clips per split (a quick subset).
        progress: a progress bar on stderr.
    """
    config = config or PrepareConfig()
    if config.pose:
        require_pose()
    use_pose = pose_available() if config.pose is None else config.pose
    clips, problems = find_clips(source)
    if max_clips is not None:
        per_split: dict[str, list[Clip]] = {}
        for clip in clips:
            per_split.setdefault(clip.split, []).append(clip)
        clips = [c for group in per_split.values() for c in group[:max_clips]]
    report = PrepareReport(warnings=list(problems))
    root = Path(root)
    todo = []
    for clip in clips:
        if is_finished(root / clip.name, _stamp(clip, config, use_pose)):
            report.skipped.append(clip.name)
        else:
            todo.append((clip, str(root), config))
    from tqdm.auto import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    results: Iterator[tuple[str, str, str]]
    pool = None
    if workers == 1:
        results = (_job(job) for job in todo)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_job, todo)
    bar = tqdm(total=len(todo), desc="clips", unit="clip", disable=not progress)
    try:
        for (clip, *_), (name, status, message) in zip(todo, results, strict=True):
            if status == "ok":
                report.imported.append(name)
            else:
                report.failed[str(clip.frames[0].parent)] = message
                print(f"error: {message}", file=sys.stderr, flush=True)
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not report.imported and not report.skipped:
        raise AudiovisError(f"no clip of {source} could be imported: "
                            + "; ".join(report.failed.values()))  # fmt: skip
    update_manifest(root, {c.name: c.split for c in clips}, name="sub-urmp")
    return report
