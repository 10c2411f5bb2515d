"""AudioVisualDataModule: the one LightningDataModule every model in the zoo reads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from audiovis.data.cache import user_cache_dir
from audiovis.data.clips import ClipDataset, Item, MediaFileDataset, StreamFiles
from audiovis.data.schema import (
    ARRAY_STREAMS,
    AUDIO_FILE,
    LABELS,
    MIDI_FILE,
    STREAMS,
    Manifest,
    PerformanceMeta,
    array_path,
    read_manifest,
    read_meta,
)
from audiovis.errors import AudiovisError
from audiovis.media import MediaError, read_audio, resize_frame


class ResumableDataLoader(StatefulDataLoader):
    """A StatefulDataLoader whose saved position at the very end of an epoch resumes into the
    next epoch.

    Lightning checkpoints on the last batch of an epoch before the loader has raised
    StopIteration; loading that state makes the next epoch's iterator yield nothing, so a
    resumed run silently skips an epoch. Draining the finished iterator once on load moves
    the loader to where an uninterrupted run would be: a fresh epoch, same shuffling.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        exhausted = state_dict.get("_num_yielded", 0) >= len(self)
        if exhausted and not state_dict.get("_iterator_finished", False):
            for _ in self:
                pass


def _as_list(paths: str | Sequence[str] | None) -> list[str]:
    if paths is None:
        return []
    return [paths] if isinstance(paths, str) else list(paths)


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class AudioVisualDataModule(pl.LightningDataModule):
    """Aligned audio/video windows from a dataset root, for every model of the zoo.

    The model declares the streams it needs (its ``streams`` attribute); only those are loaded,
    and a stream the dataset lacks fails at setup with a message naming the model, the stream
    and the root. Audio at another rate and frames at another size are converted once into a
    cache beside the data (memory-mapped ``.npy``), on rank 0 only under DDP.

    Args:
        root: dataset root (``manifest.json`` + one folder per performance). ``None`` uses
            the embedded default dataset built by the performance studio.
        streams: streams to load besides the model's own.
        fps: frame rate; must match the dataset's.
        sample_rate: audio rate the model sees; resampled from the dataset's when they differ.
        clip_frames: frames per training window.
        clip_stride: frames between training window starts (``clip_frames // 2`` by default).
        eval_stride: frames between validation/test window starts (``clip_frames``).
        audio_context: frames of audio before and after each window.
        image_size: side of the square frames the model sees; ``None`` keeps the dataset's.
        batch_size: windows per batch (per device under DDP).
        num_workers: loader worker processes.
        pin_memory: pin host memory for faster copies to a GPU.
        cache_dir: where converted arrays go (``ROOT/.cache`` by default, else the user cache).
        predict_audio: audio files (or one) for ``predict``.
        predict_video: video files (or one) for ``predict``.
        predict_split: with no predict files, predict on this split's windows instead.
        select: keep only performances whose labels are listed, e.g.
            ``{"instrument": ["piano"]}`` or ``{"style": ["waltz", "tango"]}``.
        studio: with no ``root``, build the studio with these settings instead of the
            default's (fields of ``StudioConfig``, e.g. ``{"instruments": ["cello"],
            "styles": [], "minutes": 8}``); built once into the user cache.
    """

    def __init__(
        self,
        root: str | None = None,
        streams: list[str] | None = None,
        fps: float = 25.0,
        sample_rate: int = 16000,
        clip_frames: int = 16,
        clip_stride: int | None = None,
        eval_stride: int | None = None,
        audio_context: tuple[int, int] = (0, 0),
        image_size: int | None = 128,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        cache_dir: str | None = None,
        predict_audio: str | list[str] | None = None,
        predict_video: str | list[str] | None = None,
        predict_split: str = "test",
        select: dict[str, list[str]] | None = None,
        studio: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        unknown = sorted(set(streams or []) - set(STREAMS))
        if unknown:
            raise AudiovisError(f"data.streams: unknown streams {unknown}; known: {list(STREAMS)}")
        if fps <= 0 or sample_rate <= 0 or clip_frames < 1 or batch_size < 1:
            raise AudiovisError("data: fps, sample_rate, clip_frames and batch_size must be > 0")
        if min(audio_context) < 0:
            raise AudiovisError(f"data.audio_context must be >= 0, got {audio_context}")
        bad = sorted(set(select or {}) - set(LABELS))
        if bad:
            raise AudiovisError(f"data.select: unknown labels {bad}; known: {list(LABELS)}")
        self.save_hyperparameters()
        self.root = root
        self.select = {k: list(v) for k, v in (select or {}).items()}
        self.studio = dict(studio or {})
        self.streams = list(streams or [])
        self.fps, self.sample_rate, self.clip_frames = fps, sample_rate, clip_frames
        self.clip_stride = clip_stride or max(1, clip_frames // 2)
        self.eval_stride = eval_stride or clip_frames
        self.audio_context = (int(audio_context[0]), int(audio_context[1]))
        self.image_size, self.batch_size = image_size, batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.cache_dir = cache_dir
        self.predict_audio, self.predict_video = _as_list(predict_audio), _as_list(predict_video)
        self.predict_split = predict_split
        self.datasets: dict[str, ClipDataset | MediaFileDataset] = {}
        self.manifest: Manifest | None = None

    # ------------------------------------------------------------------ where the data lives

    def dataset_root(self) -> Path:
        """The dataset root: ``root`` if given, else the embedded default (built on first use)."""
        if self.root is not None:
            root = Path(self.root).expanduser()
            if not root.is_dir():
                raise AudiovisError(f"data.root: {root} is not a directory")
            if self.studio:
                rank_zero_warn(f"data.studio is ignored: data.root {root} is given")
            return root
        try:
            from audiovis.data.studio import studio_dataset
        except ImportError:
            raise AudiovisError(
                "data.root is not set and this install has no performance studio to build the "
                "embedded default dataset; pass --data.root DIR"
            ) from None
        # built at 16 kHz; other rates come from the resampling cache like any dataset
        return studio_dataset(**{"fps": self.fps, **self.studio})

    def _cache_root(self, root: Path) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser()
        if os.access(root, os.W_OK):
            return root / ".cache"
        digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
        return user_cache_dir() / "converted" / digest

    def _model(self) -> Any:
        # without a Trainer (a notebook, a benchmark) only data.streams count
        return getattr(self.trainer, "lightning_module", None)

    def required_streams(self) -> list[str]:
        """The model's streams (its ``streams`` attribute) and ``data.streams``, in order."""
        wanted = [*getattr(self._model(), "streams", ()), *self.streams]
        return list(dict.fromkeys(wanted))

    def _model_name(self) -> str:
        model = self._model()
        return type(model).__name__ if model is not None else "the model"

    # ---------------------------------------------------------------------------- conversion

    def _files(self, root: Path, name: str, streams: list[str], build: bool) -> StreamFiles:
        """Resolve (and with ``build``, create) the files a performance's streams are read from."""
        folder = root / name
        meta = read_meta(folder)
        if abs(meta.fps - self.fps) > 1e-6:
            raise AudiovisError(
                f"{folder / 'meta.json'}: recorded at {meta.fps:g} fps but "
                f"data.fps is {self.fps:g}; set data.fps={meta.fps:g} or "
                "re-import the data at that rate"
            )
        cache = self._cache_root(root) / name
        arrays: dict[str, Path] = {}
        for stream in streams:
            if stream not in ARRAY_STREAMS:
                continue
            source = array_path(folder, stream)
            size = self.image_size
            if stream in ("video", "mask") and size is not None and meta.size != (size, size):
                target = cache / f"{source.stem}_{size}x{size}.npy"
                if build and not _fresh(target, source):
                    _save_atomic(target, _resize_frames(np.load(source, mmap_mode="r"), size))
                arrays[stream] = target
            else:
                arrays[stream] = source
        audio = None
        if "audio" in streams:
            audio = cache / f"audio_{self.sample_rate}.npy"
            if build and not _fresh(audio, folder / AUDIO_FILE):
                wave, _ = read_audio(folder / AUDIO_FILE, self.sample_rate, allow_silent=True)
                _save_atomic(audio, wave)
        labels = {}
        for label in LABELS:
            if label in streams:
                assert self.manifest is not None
                names = self.manifest.classes.get(label, [])
                value = getattr(meta, label)
                if value not in names:
                    raise AudiovisError(
                        f"{root / 'manifest.json'}: {label} {value!r} of "
                        f"{name!r} is not in classes.{label}"
                    )
                labels[label] = names.index(value)
        return StreamFiles(
            meta=meta, arrays=arrays, audio=audio, labels=labels, sample_rate=self.sample_rate
        )

    def _selected(self, root: Path) -> list[dict[str, Any]]:
        """The manifest's performances that pass ``select``.

        A label whose selected values are none of the dataset's classes is ignored with a
        warning: a config written for the studio (``select: {instrument: [cello]}``) then runs
        on a user's own import, whose performances carry their own labels. Values the dataset
        does know that leave nothing selected are an error.
        """
        assert self.manifest is not None
        active = {}
        for label, values in self.select.items():
            known = {p.get(label) for p in self.manifest.performances}
            if known.isdisjoint(values):
                rank_zero_warn(
                    f"data.select: {label} {values} matches no performance of {root} "
                    f"(it has {sorted(map(str, known))}); using every performance"
                )
            else:
                active[label] = values
        chosen = [
            p
            for p in self.manifest.performances
            if all(p.get(label) in values for label, values in active.items())
        ]
        if not chosen:
            raise AudiovisError(
                f"data.select {self.select}: no performance of {root} matches "
                f"(classes there: {self.manifest.classes})"
            )
        return chosen

    def _check_streams(self, root: Path, streams: list[str]) -> None:
        assert self.manifest is not None
        lacking: dict[str, list[str]] = {}
        for name in [p["name"] for p in self._selected(root)]:
            meta = read_meta(root / name)
            have = set(meta.streams) | {label for label in LABELS if getattr(meta, label)}
            for stream in streams:
                if stream not in have:
                    lacking.setdefault(stream, []).append(name)
        if lacking:
            stream, names = next(iter(lacking.items()))
            more = f" and {len(names) - 1} more" if len(names) > 1 else ""
            # an importer may have said how to get the stream (e.g. keypoints need mediapipe)
            hint = read_meta(root / names[0]).extra.get("missing_streams", {}).get(stream)
            raise AudiovisError(
                f"{self._model_name()} needs stream '{stream}', which dataset {root} lacks "
                f"(performance {names[0]!r}{more}); missing streams: {sorted(lacking)}"
                + (f"; {hint}" if hint else "")
            )

    def _load(self, build: bool) -> dict[str, list[StreamFiles]]:
        root = self.dataset_root()
        self.manifest = read_manifest(root)
        streams = self.required_streams()
        self._check_streams(root, streams)
        splits: dict[str, list[StreamFiles]] = {"train": [], "val": [], "test": []}
        names = [(p["name"], p["split"]) for p in self._selected(root)]
        if build:
            from tqdm.auto import tqdm

            names = tqdm(names, desc="preparing data", unit="performance", disable=len(names) < 20)
        for name, split in names:
            splits[split].append(self._files(root, name, streams, build))
        return splits

    # ----------------------------------------------------------------------- Lightning hooks

    def prepare_data(self) -> None:
        """Build the embedded default and the converted arrays (rank 0 only)."""
        if self._predicting_files():
            return
        self._load(build=True)

    def _predicting_files(self) -> bool:
        state = getattr(self.trainer, "state", None)
        predicting = (
            state is not None and state.stage is not None and state.stage.value == "predict"
        )
        return predicting and bool(self.predict_audio or self.predict_video)

    def setup(self, stage: str) -> None:
        if stage == "predict" and (self.predict_audio or self.predict_video):
            kind = "video" if self.predict_video else "audio"
            self.datasets["predict"] = MediaFileDataset(
                self.predict_video or self.predict_audio,
                kind,
                self.sample_rate,
                self.fps,
                self.image_size,
                min_frames=self.clip_frames,
            )
            return
        splits = self._load(build=False)
        streams = self.required_streams()
        for split, files in splits.items():
            stride = self.clip_stride if split == "train" else self.eval_stride
            self.datasets[split] = ClipDataset(
                files, streams, self.clip_frames, stride, self.audio_context
            )
        if stage == "fit" and len(self.datasets["train"]) == 0:
            raise AudiovisError(
                f"dataset {self.dataset_root()}: no training window of "
                f"{self.clip_frames} frames (is the train split empty?)"
            )
        if stage == "predict":
            self.datasets["predict"] = self.datasets[self.predict_split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Item]:
        kwargs: dict[str, Any] = dict(
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )
        # a stateful loader lets a resumed run continue mid-epoch with the same batches
        cls = ResumableDataLoader if shuffle else DataLoader
        return cls(self.datasets[split], shuffle=shuffle, **kwargs)  # type: ignore[no-any-return]

    def train_dataloader(self) -> DataLoader[Item]:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Item]:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Item]:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader[Item]:
        dataset = self.datasets["predict"]
        if isinstance(dataset, MediaFileDataset):
            # whole files of different lengths: one per batch; the model windows them
            return DataLoader(dataset, batch_size=1, num_workers=self.num_workers)
        return self._loader("predict", shuffle=False)

    def performance_meta(self, split: str, index: int) -> PerformanceMeta:
        """Metadata of the performance behind ``batch['performance']`` in a split."""
        dataset = self.datasets[split]
        assert isinstance(dataset, ClipDataset)
        return dataset.performances[index].meta

    def midi_path(self, split: str, index: int) -> Path | None:
        """The score of a performance (``notes.mid``) when the dataset has one."""
        name = self.performance_meta(split, index).name
        path = self.dataset_root() / name / MIDI_FILE
        return path if path.is_file() else None


def _fresh(target: Path, source: Path) -> bool:
    return target.is_file() and target.stat().st_mtime >= source.stat().st_mtime


def _resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize (T, H, W[, 3]) frames to (T, size, size[, 3]); masks stay binary."""
    if frames.ndim == 3:  # a mask: resize as an image, threshold back to {0, 1}
        rgb = np.repeat(np.asarray(frames, np.uint8)[..., None] * 255, 3, axis=-1)
        return np.stack([resize_frame(f, (size, size))[..., 0] >= 128 for f in rgb]).astype(
            np.uint8
        )
    return np.stack([resize_frame(np.asarray(f), (size, size)) for f in frames])


__all__ = ["AudioVisualDataModule", "MediaError", "user_cache_dir"]
