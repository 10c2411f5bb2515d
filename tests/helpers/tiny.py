"""Test-only LightningModules: small, real models that exercise the CLI and the plumbing."""

from __future__ import annotations

import os
import signal
from typing import ClassVar

import torch
import torch.nn.functional as F
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn

from audiovis.audio import AudioFrontEnd, LogMel, frames_to_video_rate
from audiovis.callbacks import MediaSample
from audiovis.losses import hinge_discriminator_loss, hinge_generator_loss
from audiovis.media import to_uint8
from audiovis.models.base import AudioVisualModule, GANModule


class FrameDecoder(nn.Module):
    """Audio feature per frame (B, T, F) → frames (B, T, 3, S, S) in [-1, 1]."""

    def __init__(self, features: int, image_size: int, hidden: int = 64, noise: int = 0) -> None:
        super().__init__()
        self.image_size, self.noise = image_size, noise
        self.net = nn.Sequential(
            nn.Linear(features + noise, hidden),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(hidden, 3 * image_size**2),
        )

    def forward(self, feats: Tensor) -> Tensor:
        if self.noise:
            feats = torch.cat(
                [feats, torch.randn(*feats.shape[:-1], self.noise, device=feats.device)], dim=-1
            )
        b, t = feats.shape[:2]
        return torch.tanh(self.net(feats)).view(b, t, 3, self.image_size, self.image_size)


class TinyAudioToFrame(AudioVisualModule):
    """Predicts each video frame from the audio under it (L1 loss)."""

    streams: ClassVar[tuple[str, ...]] = ("audio", "video")

    def __init__(
        self,
        frontend: AudioFrontEnd | None = None,
        image_size: int = 32,
        hidden: int = 64,
        optimizer: OptimizerCallable = torch.optim.Adam,
        fps: float = 25.0,
        sample_rate: int = 8000,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["frontend", "optimizer"])
        self.frontend = frontend or LogMel(sample_rate, n_fft=256, hop_length=80, n_mels=32)
        self.decoder = FrameDecoder(self.frontend.num_features, image_size, hidden)
        self.optimizer = optimizer
        self.fps, self.sample_rate = fps, sample_rate

    def forward(self, audio: Tensor, num_frames: int) -> Tensor:
        feats = frames_to_video_rate(self.frontend(audio), num_frames)  # (B, T, F)
        return self.decoder(feats)

    def _loss(self, batch: dict[str, Tensor]) -> Tensor:
        video = batch["video"]
        return F.l1_loss(self(batch["audio"], video.shape[1]), video)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch), prog_bar=True, sync_dist=True)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.log("test/loss", self._loss(batch), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())

    def generate(self, audio: Tensor) -> Tensor:
        """Frames (T, 3, S, S) for a whole waveform (S,)."""
        frames = int(len(audio) * self.fps / self.sample_rate)
        return self(audio[None], frames)[0]

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> list[MediaSample]:
        names = batch.get("name", [f"clip{batch_idx:04d}_{i}" for i in range(len(batch["audio"]))])
        samples = []
        for name, audio in zip(names, batch["audio"], strict=True):
            video = to_uint8(self.generate(audio))
            samples.append(
                MediaSample(
                    name=str(name),
                    fps=self.fps,
                    video=video,
                    audio=audio.float().cpu().numpy(),
                    sample_rate=self.sample_rate,
                )
            )
        return samples

    def media_samples(self, batch: dict[str, Tensor]) -> list[MediaSample]:
        return self.predict_step({"audio": batch["audio"][:2]}, 0)


class TinyGAN(GANModule):
    """Audio-conditioned frame GAN with a hinge loss; ``nan_after`` makes its loss NaN."""

    streams: ClassVar[tuple[str, ...]] = ("audio", "video")

    def __init__(
        self,
        image_size: int = 32,
        sample_rate: int = 8000,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        n_critic: int = 1,
        gradient_clip: float | None = None,
        nan_after: int | None = None,
    ) -> None:
        super().__init__(
            generator_optimizer,
            discriminator_optimizer,
            n_critic=n_critic,
            gradient_clip=gradient_clip,
        )
        self.save_hyperparameters(ignore=["generator_optimizer", "discriminator_optimizer"])
        self.frontend = LogMel(sample_rate, n_fft=256, hop_length=80, n_mels=32)
        self.generator = FrameDecoder(32, image_size, noise=8)
        self.discriminator = nn.Sequential(
            nn.Conv2d(3, 16, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(16, 1, 4, 2, 1)
        )
        self.nan_after = nan_after

    def _fake(self, batch: dict[str, Tensor]) -> Tensor:
        feats = frames_to_video_rate(self.frontend(batch["audio"]), batch["video"].shape[1])
        return self.generator(feats).flatten(0, 1)

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        fake = self._fake(batch).detach()
        real = batch["video"].flatten(0, 1)
        loss = hinge_discriminator_loss(self.discriminator(real), self.discriminator(fake))
        if self.nan_after is not None and self.global_step >= self.nan_after:
            loss = loss * float("nan")
        return loss, {}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return hinge_generator_loss(self.discriminator(self._fake(batch))), {}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        l1 = F.l1_loss(self._fake(batch), batch["video"].flatten(0, 1))
        self.log("val/loss", l1, sync_dist=True)


class KillAtStep(Callback):
    """SIGKILL this very process when training reaches ``step`` (before that step's checkpoint).

    A deterministic stand-in for a machine dying mid-epoch, for the resume test.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
