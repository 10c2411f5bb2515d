"""Datasets of aligned windows: N video frames with the N / fps seconds of audio under them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from audiovis.data.schema import ARRAY_STREAMS, AUDIO_FILE, LABELS, PerformanceMeta
from audiovis.media import MediaError, read_audio, read_video

Item = dict[str, Any]


@dataclass(frozen=True)
class StreamFiles:
    """Where each stream of one performance lives (the original or a resized/resampled cache).

    ``sample_rate`` is the rate of the ``audio`` file when it was resampled (``None``: the
    performance's own, ``meta.sample_rate``).
    """

    meta: PerformanceMeta
    arrays: dict[str, Path]
    audio: Path | None
    labels: dict[str, int]
    sample_rate: int | None = None


def to_float_video(frames: np.ndarray) -> Tensor:
    """(T, H, W, 3) uint8 → (T, 3, H, W) float32 in [-1, 1]."""
    video = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2)  # copy out of the memmap
    return video.float().div_(127.5).sub_(1.0)


class ClipDataset(Dataset[Item]):
    """Windows of ``clip_frames`` frames over performances, with the audio aligned to them.

    Frame ``t`` spans ``[t / fps, (t + 1) / fps)`` seconds, so a window starting at frame ``s``
    takes audio samples ``round(s · sr / fps)`` onwards, ``round(clip_frames · sr / fps)`` of
    them, plus ``audio_context`` frames' worth before and after (zero-padded at the ends).

    Args:
        performances: the files of each performance (from the DataModule's cache).
        streams: streams to load: any of ``audio``, ``video``, ``mask``, ``keypoints``,
            ``pose3d``, ``roll`` and the labels ``instrument``, ``style``, ``performer``.
        clip_frames: frames per window.
        stride: frames between window starts (``clip_frames`` by default: no overlap).
        audio_context: frames of audio before and after the window.

    Each item is a dict: ``audio`` (S,), ``video`` (T, 3, H, W) in [-1, 1], ``mask``
    (T, 1, H, W), ``keypoints`` (T, K, 3), ``pose3d`` (T, J, 3), ``roll`` (T, 88) as float32;
    labels as int64; ``performance`` and ``start`` (frame) as int64 to locate the window.
    """

    def __init__(
        self,
        performances: Sequence[StreamFiles],
        streams: Sequence[str],
        clip_frames: int,
        stride: int | None = None,
        audio_context: tuple[int, int] = (0, 0),
    ) -> None:
        if clip_frames < 1:
            raise ValueError(f"clip_frames must be >= 1, got {clip_frames}")
        self.performances = list(performances)
        self.streams = list(streams)
        self.clip_frames = clip_frames
        self.stride = stride or clip_frames
        self.audio_context = audio_context
        self.index: list[tuple[int, int]] = []
        for p, files in enumerate(self.performances):
            last = files.meta.num_frames - clip_frames
            self.index += [(p, s) for s in range(0, last + 1, self.stride)]
        self._open: dict[Path, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def _array(self, path: Path) -> np.ndarray:
        # memory-mapped lazily in each worker process, never pickled to it
        if path not in self._open:
            self._open[path] = np.load(path, mmap_mode="r")
        return self._open[path]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"] = {}
        return state

    def audio_window(self, files: StreamFiles, start: int, frames: int) -> np.ndarray:
        """Samples under frames [start, start + frames) with the context, zero-padded."""
        assert files.audio is not None
        meta, wave = files.meta, self._array(files.audio)
        per_frame = (files.sample_rate or meta.sample_rate) / meta.fps
        before, after = self.audio_context
        begin = round((start - before) * per_frame)
        length = round((frames + before + after) * per_frame)
        lo, hi = max(begin, 0), min(begin + length, len(wave))
        out = np.zeros(length, np.float32)
        if hi > lo:
            out[lo - begin : hi - begin] = wave[lo:hi]
        return out

    def __getitem__(self, i: int) -> Item:
        p, start = self.index[i]
        files = self.performances[p]
        stop = start + self.clip_frames
        item: Item = {"performance": torch.tensor(p), "start": torch.tensor(start)}
        for stream in self.streams:
            if stream == "audio":
                item["audio"] = torch.from_numpy(self.audio_window(files, start, self.clip_frames))
            elif stream == "video":
                item["video"] = to_float_video(self._array(files.arrays["video"])[start:stop])
            elif stream == "mask":
                mask = np.array(self._array(files.arrays["mask"])[start:stop], np.float32)
                item["mask"] = torch.from_numpy(mask)[:, None]
            elif stream in ARRAY_STREAMS:
                arr = np.array(self._array(files.arrays[stream])[start:stop], np.float32)
                item[stream] = torch.from_numpy(arr)
            elif stream in LABELS:
                item[stream] = torch.tensor(files.labels[stream], dtype=torch.long)
        return item


class MediaFileDataset(Dataset[Item]):
    """Whole user files for ``predict``: audio files, or videos (with their audio if any).

    Args:
        paths: the files.
        kind: ``"audio"`` or ``"video"``.
        sample_rate: audio is resampled and downmixed to mono at this rate.
        fps: videos are resampled in time to this rate.
        image_size: videos are centre-cropped square and resized to this side.
        min_frames: files shorter than this many frames fail with a clear error.

    Each item: ``name`` (the file's stem), ``path``, ``audio`` (S,) when there is audio,
    ``video`` (T, 3, H, W) in [-1, 1] for videos.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        kind: str,
        sample_rate: int,
        fps: float,
        image_size: int | None,
        min_frames: int = 1,
    ) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
        self.paths = [Path(p) for p in paths]
        for path in self.paths:
            if not path.is_file():
                raise MediaError(path, "no such file")
        self.kind, self.sample_rate, self.fps = kind, sample_rate, fps
        self.image_size, self.min_frames = image_size, min_frames

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        path = self.paths[i]
        # a dataset's own audio.flac is named after its performance folder
        name = path.parent.name if path.name == AUDIO_FILE else path.stem
        item: Item = {"name": name, "path": str(path)}
        min_seconds = self.min_frames / self.fps
        if self.kind == "audio":
            audio, _ = read_audio(path, self.sample_rate)
            if len(audio) < min_seconds * self.sample_rate:
                raise MediaError(
                    path,
                    f"{len(audio) / self.sample_rate:.2f} s of audio is "
                    f"shorter than one clip ({min_seconds:.2f} s)",
                )
            item["audio"] = torch.from_numpy(audio)
            return item
        frames, _ = read_video(path, fps=self.fps, size=self.image_size)
        if len(frames) < self.min_frames:
            raise MediaError(
                path,
                f"{len(frames)} frames at {self.fps:g} fps is shorter than "
                f"one clip ({self.min_frames} frames)",
            )
        item["video"] = to_float_video(frames)
        try:
            audio, _ = read_audio(path, self.sample_rate, allow_silent=True)
            item["audio"] = torch.from_numpy(audio)
        except MediaError:
            pass  # a silent video: Audeo and other video models need no audio
        return item
