"""Callbacks that turn model outputs into media: predict outputs to files, samples to loggers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info

from audiovis.media import atomic_path, write_audio, write_video


@dataclass
class MediaSample:
    """One generated (or transcribed) piece of media, ready to write.

    Attributes:
        name: file stem.
        fps: frame rate of ``video``.
        video: (T, H, W, 3) uint8 RGB frames.
        audio: mono waveform muxed into the video and written as .wav.
        sample_rate: rate of ``audio``.
        midi: a ``pretty_midi.PrettyMIDI`` written as .mid.
        arrays: raw outputs written as ``<name>.<key>.npy``.
        images: previews written as ``<name>.<key>.png``.
    """

    name: str
    fps: float = 25.0
    video: np.ndarray | None = None
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    midi: Any = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)

    def write(self, folder: str | Path, write_wav: bool = True) -> list[Path]:
        """Write every part of the sample into ``folder``; returns the paths written."""
        folder = Path(folder)
        written = []
        if self.video is not None:
            audio = self.audio if self.sample_rate else None
            written.append(
                write_video(
                    folder / f"{self.name}.mp4", self.video, self.fps, audio, self.sample_rate
                )
            )
        if self.audio is not None and self.sample_rate and write_wav:
            written.append(write_audio(folder / f"{self.name}.wav", self.audio, self.sample_rate))
        if self.midi is not None:
            path = folder / f"{self.name}.mid"
            with atomic_path(path) as tmp:
                self.midi.write(str(tmp))
            written.append(path)
        for key, array in self.arrays.items():
            path = folder / f"{self.name}.{key}.npy"
            with atomic_path(path) as tmp:
                np.save(tmp, array)
            written.append(path)
        for key, image in self.images.items():
            from PIL import Image

            path = folder / f"{self.name}.{key}.png"
            with atomic_path(path) as tmp:
                Image.fromarray(image).save(tmp, format="PNG")
            written.append(path)
        return written

    def release(self) -> None:
        """Drop the heavy payloads once written, so predictions held in memory stay small."""
        self.video, self.audio, self.arrays, self.images = None, None, {}, {}


def _samples(outputs: Any) -> list[MediaSample]:
    if isinstance(outputs, MediaSample):
        return [outputs]
    if isinstance(outputs, Sequence) and not isinstance(outputs, str | bytes):
        return [o for o in outputs if isinstance(o, MediaSample)]
    return []


class MediaWriter(pl.Callback):
    """Write what ``predict_step`` returns (``MediaSample``s) as .mp4 with sound, .wav, .mid,
    .npy and .png files.

    Args:
        output_dir: destination; ``<trainer.default_root_dir>/predictions`` by default.
        write_wav: also write the audio as a separate .wav.
    """

    def __init__(self, output_dir: str | None = None, write_wav: bool = True) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.write_wav = write_wav
        self.written: list[Path] = []

    def folder(self, trainer: pl.Trainer) -> Path:
        return Path(self.output_dir or Path(trainer.default_root_dir) / "predictions")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.written = []

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        for sample in _samples(outputs):
            self.written += sample.write(self.folder(trainer), self.write_wav)
            sample.release()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        videos = [p for p in self.written if p.suffix == ".mp4"]
        rank_zero_info(
            f"MediaWriter: wrote {len(self.written)} files to "
            f"{self.folder(trainer)}" + (f", e.g. {videos[0]}" if videos else "")
        )


class MediaLogger(pl.Callback):
    """Every ``every_n_epochs`` epochs, render samples from the first validation batch and log
    them: mp4 with sound to W&B, a strip of frames to TensorBoard, files beside the logs always.

    The model provides ``media_samples(batch) -> list[MediaSample]``; models without it are
    skipped.

    Args:
        every_n_epochs: how often.
        max_samples: samples per epoch.
    """

    def __init__(self, every_n_epochs: int = 1, max_samples: int = 2) -> None:
        super().__init__()
        self.every_n_epochs = every_n_epochs
        self.max_samples = max_samples

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        render = getattr(pl_module, "media_samples", None)
        if (
            batch_idx != 0
            or render is None
            or trainer.sanity_checking
            or not trainer.is_global_zero
            or trainer.current_epoch % self.every_n_epochs != 0
        ):
            return
        samples = render(batch)[: self.max_samples]
        folder = (
            Path(trainer.log_dir or trainer.default_root_dir)
            / "media"
            / f"epoch={trainer.current_epoch}"
        )
        for sample in samples:
            paths = sample.write(folder, write_wav=False)
            self._log(trainer, sample, paths)

    def _log(self, trainer: pl.Trainer, sample: MediaSample, paths: list[Path]) -> None:
        from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                media = {
                    f"val/media/{p.stem}": wandb.Video(str(p), format="mp4")
                    for p in paths
                    if p.suffix == ".mp4"
                }
                logger.experiment.log(media, step=step)
            elif isinstance(logger, TensorBoardLogger) and sample.video is not None:
                video = sample.video
                strip = np.concatenate(list(video[:: max(1, len(video) // 4)][:4]), axis=1)
                logger.experiment.add_image(
                    f"val/media/{sample.name}", strip, step, dataformats="HWC"
                )


class CPUBudget(pl.Callback):
    """Stop training once the process has used ``seconds`` of CPU time (all its threads).

    A budget in CPU seconds, not wall time, so runs on a shared machine get the same compute:
    benchmarks use it to compare models "after a fixed CPU budget". Loader workers are other
    processes; use ``num_workers=0`` to count everything.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = 0.0
        self.used = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.process_time()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.used = time.process_time() - self.start
        if self.used >= self.seconds:
            trainer.should_stop = True
