"""Music-oriented dance generation with Wasserstein GANs (Abary, music2dance): single poses
(:class:`PoseWGAN`), dance sequences (:class:`DanceSequenceWGAN`) and dances driven by music
(:class:`AudioToDanceWGAN`), plus the dance-style classifier that scores generated dances
(:class:`DanceStyleClassifier`)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from audiovis.callbacks import MediaSample
from audiovis.data.studio.rigs.dance import DANCE_EDGES, DANCE_PARENTS
from audiovis.errors import AudiovisError
from audiovis.losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    gradient_penalty,
    total_variation,
    wgan_critic_loss,
    wgan_generator_loss,
)
from audiovis.media import draw_skeleton, hstack_videos
from audiovis.metrics.dance import (
    dance_beat_alignment,
    dance_fid_div,
    frechet_distance,
    jerk,
    physical_foot_contact,
)
from audiovis.models.base import AudioVisualModule, GANModule
from audiovis.networks.dance import (
    AudioDanceCritic,
    AudioDanceGenerator,
    DanceStyleNet,
    PoseCritic,
    PoseGenerator,
    SequenceCritic,
    SequenceGenerator,
)

_FACTORIES = ["generator_optimizer", "discriminator_optimizer", "generator_scheduler",
              "discriminator_scheduler"]  # fmt: skip

# ------------------------------------------------------------------------------- rendering


def render_dance(joints: np.ndarray, size: int = 256, extent: float = 1.1) -> np.ndarray:
    """Draw root-centred joints as stick figures: a front view beside a side view.

    Orthographic views of the studio's world (``y`` up, the dancer starting toward ``+z``):
    the front view looks from ``+z`` (the dancer's left on the image's right), the side view
    from the dancer's left. ``extent`` metres from the root fill half the image.

    Shape:
        joints (T, J, 3) → (T, size, 2·size, 3) uint8
    """
    x = np.asarray(joints, np.float32)
    edges = [e for e in DANCE_EDGES if max(e) < x.shape[1]] if x.shape[1] == len(
        DANCE_PARENTS) else [(i, i + 1) for i in range(x.shape[1] - 1)]  # fmt: skip
    conf = np.ones((*x.shape[:2], 1), np.float32)
    down = 0.5 - x[..., 1:2] / (2 * extent)
    front = np.concatenate([0.5 + x[..., 0:1] / (2 * extent), down, conf], -1)
    side = np.concatenate([0.5 - x[..., 2:3] / (2 * extent), down, conf], -1)
    width = max(1.5, size / 80)
    views = [
        np.stack([draw_skeleton((size, size), f, edges, width) for f in view])
        for view in (front, side)
    ]
    return hstack_videos(*views)


# ----------------------------------------------------------------------------- shared parts


class _PoseStats(nn.Module):
    """Per-coordinate mean and standard deviation of the training poses (saved in the
    checkpoint): the networks see standardised, root-centred poses.

    The original min-max scaled its root-centred poses; standardising is the same affine
    idea and less sensitive to a single outlying frame.
    """

    mean: Tensor
    std: Tensor
    ready: Tensor

    def __init__(self, num_joints: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_joints, 3))
        self.register_buffer("std", torch.ones(num_joints, 3))
        self.register_buffer("ready", torch.tensor(False))

    def fit(self, module: AudioVisualModule, num_joints: int) -> None:
        """Compute the statistics from the DataModule's training split, once."""
        trainer = module._trainer
        dataset = getattr(getattr(trainer, "datamodule", None), "datasets", {}).get("train")
        if dataset is None:
            return
        arrays = []
        for files in dataset.performances:
            pose = np.load(files.arrays["pose3d"], mmap_mode="r")
            where = files.arrays["pose3d"]
            if pose.ndim != 3 or pose.shape[1:] != (num_joints, 3):
                raise AudiovisError(
                    f"{where}: pose3d has shape {pose.shape}, but {type(module).__name__} is "
                    f"configured for {num_joints} joints (set model.init_args.num_joints)"
                )
            if not np.isfinite(pose).all():
                frame = int(np.argwhere(~np.isfinite(pose))[0, 0])
                raise AudiovisError(f"{where}: pose3d holds NaN or infinite values (frame "
                                    f"{frame}); repair or re-import the data")  # fmt: skip
            arrays.append(np.asarray(pose, np.float64))
        if bool(self.ready):
            return
        allp = np.concatenate(arrays)
        self.mean.copy_(torch.from_numpy(allp.mean(0)).float())
        self.std.copy_(torch.from_numpy(allp.std(0)).float().clamp(min=1e-3))
        self.ready.fill_(True)

    def normalise(self, pose: Tensor) -> Tensor:
        return (pose - self.mean) / self.std

    def denormalise(self, pose: Tensor) -> Tensor:
        return pose * self.std + self.mean


def _check_checkpoint_joints(module: nn.Module, checkpoint: dict[str, Any],
                             num_joints: int) -> None:  # fmt: skip
    saved = checkpoint.get("state_dict", {}).get("stats.mean")
    if saved is not None and tuple(saved.shape) != (num_joints, 3):
        raise AudiovisError(
            f"the checkpoint was trained on {saved.shape[0]} joints, but "
            f"{type(module).__name__} is configured for {num_joints} "
            "(model.init_args.num_joints must match the checkpoint's data)"
        )


def bone_length_error(fake: Tensor, real: Tensor) -> Tensor:
    """Mean relative deviation of generated bone lengths from the real mean bone lengths.

    Shape:
        fake (..., J, 3), real (..., J, 3) with J the studio's 23 joints → scalar
    """
    parents = [p for p in DANCE_PARENTS if p >= 0]
    children = [i for i, p in enumerate(DANCE_PARENTS) if p >= 0]
    if fake.shape[-2] != len(DANCE_PARENTS):
        return torch.tensor(float("nan"))

    def lengths(x: Tensor) -> Tensor:
        return (x[..., children, :] - x[..., parents, :]).norm(dim=-1).reshape(-1, len(children))

    target = lengths(real).mean(0)
    return ((lengths(fake) - target).abs() / target.clamp(min=1e-6)).mean()


def _nanmean(values: list[float]) -> float:
    """The mean of the finite values (NaN when none is)."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


class _DanceGAN(GANModule):
    """What the three dance GANs share: pose statistics, the joint-count checks, validation
    metrics over the epoch's generated dances, and predict to a skeleton video with music."""

    streams: ClassVar[tuple[str, ...]] = ("pose3d", "style")

    def __init__(self, num_joints: int, fps: float, sample_rate: int, num_styles: int,
                 predict_style: int, render_size: int,
                 factories: tuple[Any, ...], n_critic: int,
                 gradient_clip: float | None) -> None:  # fmt: skip
        g_opt, d_opt, g_sched, d_sched = factories
        super().__init__(g_opt, d_opt, g_sched, d_sched, n_critic, gradient_clip)
        if num_styles and not 0 <= predict_style < num_styles:
            raise AudiovisError(f"predict_style must be in [0, {num_styles}), got {predict_style}")
        self.num_joints, self.fps, self.sample_rate = num_joints, fps, sample_rate
        self.num_styles, self.predict_style, self.render_size = (
            num_styles,
            predict_style,
            render_size,
        )
        self.stats = _PoseStats(num_joints)
        self._val: dict[str, list[Any]] = {}

    # -------------------------------------------------------------------------- set-up

    def on_fit_start(self) -> None:
        self.stats.fit(self, self.num_joints)
        self._check_audio_rate()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        _check_checkpoint_joints(self, checkpoint, self.num_joints)

    def _check_audio_rate(self) -> None:
        dm = getattr(self._trainer, "datamodule", None)
        for name, mine in (("sample_rate", self.sample_rate), ("fps", self.fps)):
            theirs = getattr(dm, name, None)
            if theirs is not None and abs(float(theirs) - float(mine)) > 1e-6:
                raise AudiovisError(f"model.init_args.{name} is {mine:g} but data.{name} is "
                                    f"{theirs:g}; set them equal")  # fmt: skip

    def _style(self, batch: dict[str, Tensor]) -> Tensor | None:
        if not self.num_styles:
            return None
        style = batch["style"]
        if int(style.max()) >= self.num_styles:
            raise AudiovisError(
                f"style label {int(style.max())} but the model has num_styles={self.num_styles}"
                " (the dataset's manifest lists more styles: raise num_styles)"
            )
        return style

    # ----------------------------------------------------------------------- evaluation

    def _real_and_fake(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Real and generated poses in metres for a validation batch, (B, T, J, 3) each."""
        raise NotImplementedError

    def _clip_audio(self, batch: dict[str, Tensor], num_frames: int) -> Tensor | None:
        """The audio under a batch's frames (without the context), (B, T · samples/frame)."""
        if "audio" not in batch:
            return None
        audio = batch["audio"]
        length = round(num_frames * self.sample_rate / self.fps)
        extra = audio.shape[-1] - length
        return audio[:, extra // 2 : extra // 2 + length]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real, fake = self._real_and_fake(batch)
        store = self._val
        store.setdefault("real", []).extend(real.float().cpu().numpy())
        store.setdefault("fake", []).extend(fake.float().cpu().numpy())
        audio = self._clip_audio(batch, real.shape[1])
        if audio is not None:
            store.setdefault("audio", []).extend(audio.float().cpu().numpy())
        self.log("val/bone_length_error", bone_length_error(fake.float(), real.float()),
                 batch_size=len(real), sync_dist=True)  # fmt: skip

    def on_validation_epoch_end(self) -> None:
        store, self._val = self._val, {}
        if not store.get("real"):
            return
        metrics = self.dance_metrics(store["real"], store["fake"], store.get("audio"))
        self.log_dict({f"val/{k}": v for k, v in metrics.items()
                       if k != "loss" and math.isfinite(v)})  # fmt: skip
        self.log("val/loss", metrics["loss"], prog_bar=True)

    def dance_metrics(self, real: list[np.ndarray], fake: list[np.ndarray],
                      audio: list[np.ndarray] | None = None) -> dict[str, float]:  # fmt: skip
        """FID_k, FID_g, Div_k, Div_g, BAS (generated and real), jerk and PFC of dances.

        ``bas`` is Bailando's (per music beat), ``bas_per_motion_beat`` AIST++'s direction,
        ``bas_gain`` the BAS above its chance level at the music's tempo (jitter, which puts a
        kinematic beat near every music beat, does not raise it). ``loss`` is FID_k (for
        :class:`AudioToDanceWGAN`, the L1 to the real dance)."""
        out: dict[str, float] = {}
        if len(real) >= 2 and len(fake) >= 2 and len(real[0]) >= 3:
            out.update(dance_fid_div(real, fake, self.fps))
        if len(fake[0]) >= 4:
            out["jerk"] = float(np.mean([jerk(x, self.fps) for x in fake]))
            out["jerk_real"] = float(np.mean([jerk(x, self.fps) for x in real]))
            out["pfc"] = float(np.mean([physical_foot_contact(x, self.fps) for x in fake]))
        if audio is not None:
            cases = (("bas", "music", False, fake), ("bas_per_motion_beat", "motion", False, fake),
                     ("bas_gain", "music", True, fake), ("bas_real", "music", False, real),
                     ("bas_gain_real", "music", True, real))  # fmt: skip
            for key, per, gain, dances in cases:
                out[key] = _nanmean([dance_beat_alignment(x, a, self.sample_rate, self.fps, per,
                                                          above_chance=gain)
                                     for x, a in zip(dances, audio, strict=True)])  # fmt: skip
        out["loss"] = out.get(
            "fid_k", float(np.mean([np.abs(r - f).mean() for r, f in zip(real, fake, strict=True)]))
        )
        return out

    # -------------------------------------------------------------------------- predict

    def generate_dance(self, audio: Tensor, style: int | None = None) -> Tensor:
        """A dance in metres for a whole waveform (S,): (T, J, 3), T = S · fps / sample_rate."""
        raise NotImplementedError

    def _style_for_predict(self, style: int | None, count: int = 1) -> Tensor | None:
        """``count`` copies of the style to generate (``predict_style`` unless given); None
        for an unconditioned model."""
        if not self.num_styles:
            return None
        s = self.predict_style if style is None else style
        return torch.full((count,), s, device=self.device, dtype=torch.long)

    def _chunked(self, step: Any, frames: int, chunk: int) -> Tensor:
        """A recurrent generator's dance in chunks of ``chunk`` frames, the state carried
        over: ``step(start, stop, state) → (normalised (1, stop - start, J, 3), state)``;
        returns the whole dance in metres (frames, J, 3)."""
        out, state = [], None
        for start in range(0, frames, chunk):
            part, state = step(start, min(start + chunk, frames), state)
            out.append(part[0])
        return self.stats.denormalise(torch.cat(out))

    def _num_frames(self, audio: Tensor) -> int:
        frames = int(audio.shape[-1] * self.fps / self.sample_rate)
        if frames < 4:
            raise AudiovisError(
                f"{audio.shape[-1] / self.sample_rate:.3f} s of audio is too short for a dance "
                f"(at least 4 frames, {4 / self.fps:.2f} s)"
            )
        return frames

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[MediaSample]:
        if "audio" not in batch:
            raise AudiovisError(
                f"{type(self).__name__}: predict makes a dance as long as its music: pass "
                "--data.predict_audio FILE (or add audio to data.streams to dance to a split)"
            )
        audio = batch["audio"]
        names = batch.get("name") or [f"clip{batch_idx:04d}_{i}" for i in range(len(audio))]
        if "pose3d" in batch:  # windows of a split: drop the audio context
            audio = self._clip_audio(batch, batch["pose3d"].shape[1])
        styles = batch.get("style")
        samples = []
        for i, (name, wave) in enumerate(zip(names, audio, strict=True)):
            if float(wave.abs().max()) < 1e-4:
                raise AudiovisError(f"{name}: the audio is silent; a dance needs music")
            style = int(styles[i]) if styles is not None and self.num_styles else None
            joints = self.generate_dance(wave.float(), style).float().cpu().numpy()
            samples.append(MediaSample(
                name=str(name), fps=self.fps, video=render_dance(joints, self.render_size),
                audio=wave.float().cpu().numpy(), sample_rate=self.sample_rate,
                arrays={"joints": joints.astype(np.float32)},
            ))  # fmt: skip
        return samples


# ------------------------------------------------------------------------- phase 1: poses


class PoseWGAN(_DanceGAN):
    """Single poses from noise with a residual fully connected generator and critic (WGAN-GP).

    Every frame of a training clip is one sample. ``predict`` walks the latent space, a new
    random latent each second, interpolated in between, for the length of the music.

    Args:
        latent: noise size (original grid: 10 or 50).
        width: hidden width (32, 128 or 256); ``blocks`` residual blocks (1 or 2).
        dropout: before the generator's output layer.
        num_joints: J of the data's pose3d (23 for the studio and Music-to-Dance).
        gp_weight: gradient penalty λ.
        num_styles: > 0 conditions generator and critic on the style label.
        predict_style: the style to generate at predict when conditioned.
    """

    generator: PoseGenerator
    discriminator: PoseCritic

    def __init__(
        self,
        latent: int = 50,
        width: int = 256,
        blocks: int = 2,
        dropout: float = 0.5,
        num_joints: int = 23,
        gp_weight: float = 10.0,
        num_styles: int = 0,
        predict_style: int = 0,
        fps: float = 25.0,
        sample_rate: int = 16000,
        render_size: int = 256,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 5,
        gradient_clip: float | None = None,
    ) -> None:
        super().__init__(num_joints, fps, sample_rate, num_styles, predict_style, render_size,
                         (generator_optimizer, discriminator_optimizer, generator_scheduler,
                          discriminator_scheduler), n_critic, gradient_clip)  # fmt: skip
        self.save_hyperparameters(ignore=_FACTORIES)
        self.latent, self.gp_weight = latent, gp_weight
        self.generator = PoseGenerator(latent, width, blocks, num_joints, dropout, num_styles)
        self.discriminator = PoseCritic(width, blocks, num_joints, num_styles)

    def forward(self, z: Tensor, style: Tensor | None = None) -> Tensor:
        """Normalised poses (N, J, 3) from latents (N, latent)."""
        return self.generator(z, style)

    def _flat(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        pose = batch["pose3d"]
        real = self.stats.normalise(pose).flatten(0, 1)  # (B·T, J, 3)
        style = self._style(batch)
        if style is not None:
            style = style.repeat_interleave(pose.shape[1])
        return real, style

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        real, style = self._flat(batch)
        with torch.no_grad():
            fake = self(torch.randn(len(real), self.latent, device=real.device), style)
        wd = wgan_critic_loss(self.discriminator(real, style), self.discriminator(fake, style))
        gp = gradient_penalty(self.discriminator, real, fake, *([style] if style is not None
                                                                 else []))  # fmt: skip
        return wd + self.gp_weight * gp, {
            "train/wasserstein": -wd.detach(),
            "train/gp": gp.detach(),
        }

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        real, style = self._flat(batch)
        fake = self(torch.randn(len(real), self.latent, device=real.device), style)
        return wgan_generator_loss(self.discriminator(fake, style)), {}

    def _real_and_fake(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        real, style = self._flat(batch)
        fake = self(torch.randn(len(real), self.latent, device=real.device), style)
        shape = batch["pose3d"].shape
        return batch["pose3d"], self.stats.denormalise(fake).view(shape)

    def dance_metrics(self, real: list[np.ndarray], fake: list[np.ndarray],
                      audio: list[np.ndarray] | None = None) -> dict[str, float]:  # fmt: skip
        """Poses, not dances: ``loss`` is the Fréchet distance between real and generated
        standardised poses; there is no motion to measure."""
        mean, std = self.stats.mean.cpu().numpy(), self.stats.std.cpu().numpy()
        r = ((np.concatenate(real) - mean) / std).reshape(-1, self.num_joints * 3)
        f = ((np.concatenate(fake) - mean) / std).reshape(-1, self.num_joints * 3)
        return {"loss": frechet_distance(r, f) if len(r) >= 2 else float("nan")}

    def generate_dance(self, audio: Tensor, style: int | None = None) -> Tensor:
        frames = self._num_frames(audio)
        anchors = math.ceil(frames / self.fps) + 1
        z = torch.randn(anchors, self.latent, device=self.device)
        t = torch.arange(frames, device=self.device) / self.fps
        i = t.floor().long()
        w = (t - i)[:, None]
        path = (1 - w) * z[i] + w * z[i + 1]  # (T, latent)
        return self.stats.denormalise(self(path, self._style_for_predict(style, frames)))


# ------------------------------------------------------------------------ phase 2: sequences


class DanceSequenceWGAN(_DanceGAN):
    """Dance sequences from per-frame noise: GRU → frame decoder; a temporal convolutional
    critic over fixed-length clips (``clip_frames``, 120 = 4.8 s at 25 fps in the original);
    any length at inference (the GRU's state is carried from chunk to chunk).

    Args:
        noise: per-frame noise size (50); ``hidden`` the GRU size (50), ``layers`` (3).
        width, blocks: frame decoder (256, 2).
        critic_channels: critic width (128); ``critic_blocks`` temporal blocks (3).
        clip_frames: frames per training clip (must equal data.clip_frames).
        adversarial: ``wgan-gp`` (the original) or ``bce`` (its non-Wasserstein variant).
        gp_weight: λ; ``tv_weight``: total variation weight (50 in the original).
        num_styles, predict_style: the dance-type condition.
    """

    generator: SequenceGenerator
    discriminator: SequenceCritic

    def __init__(
        self,
        noise: int = 50,
        hidden: int = 50,
        layers: int = 3,
        width: int = 256,
        blocks: int = 2,
        critic_channels: int = 128,
        critic_blocks: int = 3,
        clip_frames: int = 120,
        num_joints: int = 23,
        adversarial: str = "wgan-gp",
        gp_weight: float = 10.0,
        tv_weight: float = 50.0,
        num_styles: int = 0,
        predict_style: int = 0,
        fps: float = 25.0,
        sample_rate: int = 16000,
        render_size: int = 256,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 5,
        gradient_clip: float | None = None,
    ) -> None:
        super().__init__(num_joints, fps, sample_rate, num_styles, predict_style, render_size,
                         (generator_optimizer, discriminator_optimizer, generator_scheduler,
                          discriminator_scheduler), n_critic, gradient_clip)  # fmt: skip
        if adversarial not in ("wgan-gp", "bce"):
            raise AudiovisError(f"adversarial must be 'wgan-gp' or 'bce', got {adversarial!r}")
        self.save_hyperparameters(ignore=_FACTORIES)
        self.noise, self.clip_frames, self.adversarial = noise, clip_frames, adversarial
        self.gp_weight, self.tv_weight = gp_weight, tv_weight
        self.generator = SequenceGenerator(noise, hidden, layers, width, blocks, num_joints,
                                           num_styles)  # fmt: skip
        self.discriminator = SequenceCritic(num_joints, clip_frames, critic_channels, 25,
                                            critic_blocks, 7, 1, num_styles)  # fmt: skip

    def on_fit_start(self) -> None:
        super().on_fit_start()
        _check_clip_frames(self, self.clip_frames)

    def forward(self, batch_size: int, frames: int, style: Tensor | None = None,
                state: Tensor | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Normalised dances (B, T, J, 3) and the GRU state."""
        z = torch.randn(batch_size, frames, self.noise, device=self.device)
        return self.generator(z, style, state)

    def _fake(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor | None]:
        pose = batch["pose3d"]
        style = self._style(batch)
        fake, _ = self(len(pose), pose.shape[1], style)
        return self.stats.normalise(pose), fake, style

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            real, fake, style = self._fake(batch)
        cond = [style] if style is not None else []
        real_s, fake_s = self.discriminator(real, *cond), self.discriminator(fake, *cond)
        if self.adversarial == "bce":
            return bce_discriminator_loss(real_s, fake_s), {}
        wd = wgan_critic_loss(real_s, fake_s)
        gp = gradient_penalty(self.discriminator, real, fake, *cond)
        return wd + self.gp_weight * gp, {
            "train/wasserstein": -wd.detach(),
            "train/gp": gp.detach(),
        }

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        _, fake, style = self._fake(batch)
        scores = self.discriminator(fake, *([style] if style is not None else []))
        adv = bce_generator_loss(scores) if self.adversarial == "bce" else wgan_generator_loss(
            scores)  # fmt: skip
        tv = total_variation(fake, dim=1)
        return adv + self.tv_weight * tv, {"train/tv": tv.detach()}

    def _real_and_fake(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        _, fake, _ = self._fake(batch)
        return batch["pose3d"], self.stats.denormalise(fake)

    def generate_dance(self, audio: Tensor, style: int | None = None,
                       chunk: int = 250) -> Tensor:  # fmt: skip
        frames = self._num_frames(audio)
        style_t = self._style_for_predict(style)
        return self._chunked(lambda a, b, state: self(1, b - a, style_t, state), frames, chunk)


def _check_clip_frames(module: _DanceGAN, clip_frames: int) -> None:
    dm = getattr(module._trainer, "datamodule", None)
    theirs = getattr(dm, "clip_frames", None)
    if theirs is not None and theirs != clip_frames:
        raise AudiovisError(
            f"{type(module).__name__}: the critic scores clips of {clip_frames} frames "
            f"(model.init_args.clip_frames) but data.clip_frames is {theirs}; set them equal"
        )


# --------------------------------------------------------------------- phase 3: audio → dance


def two_input_gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, audio: Tensor,
                               style: Tensor | None = None, on_audio: bool = True,
                               audio_code: Tensor | None = None) -> Tensor:  # fmt: skip
    """WGAN-GP penalty E[(‖∇D(x̂, a)‖ − 1)²] with the gradient taken with respect to both
    inputs, the interpolated poses x̂ and the audio a (the same for the real and the fake
    pair), their gradients concatenated into one norm.

    ``on_audio=False`` takes the gradient with respect to the poses only (the usual
    conditional WGAN-GP: real and fake share their music, so the critic need not be
    Lipschitz in it); the critic's audio branch then runs once, not twice, and needs no
    second derivative, or not at all when its ``audio_code`` (:meth:`AudioDanceCritic.
    audio_code`, with its graph) is given."""
    b = real.shape[0]
    eps = torch.rand(b, *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    if on_audio:
        sound = audio.detach().clone().requires_grad_(True)
        scores = critic(mixed, sound, style)
        inputs = [mixed, sound]
    else:
        scores = critic(mixed, audio.detach(), style, audio_code)
        inputs = [mixed]
    grads = torch.autograd.grad(scores.sum(), inputs, create_graph=True,
                                allow_unused=True)  # fmt: skip
    sq = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads if g is not None]).sum(0)
    return ((torch.sqrt(sq + 1e-12) - 1.0) ** 2).mean()


class AudioToDanceWGAN(_DanceGAN):
    """Dances driven by music: 0.2 s audio windows, one per frame, through an audio encoder
    (``default``, ``unet`` or ``wavegan``) and a GRU, beside a noise GRU, into the frame
    decoder; a critic with a pose encoder and an audio encoder fused by a small MLP, the
    gradient penalty on both inputs; + β·L1 to the real dance + η·TV.

    ``adversarial: false`` is the L1-only baseline (the same generator, no critic steps).
    Ablations of the original: ``use_audio_critic: false``, ``l1_weight: 20``, ``noise: 100``,
    ``tanh: true``, ``tv_weight: 50``, ``encoder: unet|wavegan``.

    Training batches need audio context of at least (window − frame)/2 + lookahead on each
    side (:attr:`context_frames`: ``data.audio_context: [2, 2]`` for 0.2 s at 25 fps, ``[15,
    15]`` with a 0.5 s look-ahead); fit refuses less, or a lopsided context.

    Args:
        window_seconds: audio window per frame (0.2).
        lookahead_seconds: the window of frame t is centred ``lookahead_seconds`` after it
            (0: centred on it, the original). The generator's GRUs run forward in time, so
            without look-ahead a frame has heard the music only up to its window's end, yet
            a step that lands on a beat starts before it. Our experiments configs use 0.5
            (bench/results/dance_lookahead*.json: the best mean beat alignment above chance
            over two seeds, by less than the seeds' spread); the default 0 keeps checkpoints saved
            before this option as they were. Past the end of the music the windows are
            zero-padded.
        encoder: audio encoder kind; ``encoder_channels`` its first width (32),
            ``encoder_out`` its code (250), ``encoder_activation`` (``id``, ``relu``, ``tanh``).
        latent: decoder input (250) = audio GRU (``latent - noise_hidden``) + noise GRU.
        audio_layers: audio GRU layers (3).
        noise, noise_hidden: per-frame noise and its GRU (10, 10).
        width, blocks: frame decoder (256, 2); ``tanh`` squashes its output.
        critic_channels, critic_blocks, code, critic_hidden, critic_audio_channels: the
            critic (128, 2, 100, 128, 32).
        use_audio_critic: the critic's audio branch.
        gp_on_audio: the gradient penalty on the audio as well as the poses (true, the
            original). ``false`` penalises the poses' gradient only (real and fake share
            their music) and computes the audio branch once per critic step: on the bench's
            small models a critic step costs about half as much (bench/results/
            dance_step_profile.json).
        share_fake: on batches with a generator step, generate once (with gradients) and
            give the critic step the detached dances (false, the default: the critic step
            draws its own under no_grad). Saves one generator forward per generator step;
            both steps then see the same noise.
        adversarial: train against the critic (false: the L1-only baseline).
        gp_weight, l1_weight, tv_weight: λ (10), β (1), η (0).
        clip_frames: frames per training clip (120), equal to data.clip_frames.
        onset_points: > 0 adds each window's onset strength at that many times to the
            generator's audio code (0, the original: the encoder's code alone).
    """

    streams: ClassVar[tuple[str, ...]] = ("pose3d", "audio", "style")
    generator: AudioDanceGenerator
    discriminator: AudioDanceCritic

    def __init__(
        self,
        window_seconds: float = 0.2,
        lookahead_seconds: float = 0.0,
        encoder: str = "default",
        encoder_channels: int = 32,
        encoder_out: int = 250,
        encoder_activation: str = "id",
        latent: int = 250,
        audio_layers: int = 3,
        noise: int = 10,
        noise_hidden: int = 10,
        width: int = 256,
        blocks: int = 2,
        tanh: bool = False,
        critic_channels: int = 128,
        critic_blocks: int = 2,
        code: int = 100,
        critic_hidden: int = 128,
        critic_audio_channels: int = 32,
        use_audio_critic: bool = True,
        gp_on_audio: bool = True,
        share_fake: bool = False,
        adversarial: bool = True,
        gp_weight: float = 10.0,
        l1_weight: float = 1.0,
        tv_weight: float = 0.0,
        clip_frames: int = 120,
        num_joints: int = 23,
        num_styles: int = 0,
        predict_style: int = 0,
        fps: float = 25.0,
        sample_rate: int = 16000,
        render_size: int = 256,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 5,
        gradient_clip: float | None = None,
        onset_points: int = 0,
    ) -> None:
        super().__init__(num_joints, fps, sample_rate, num_styles, predict_style, render_size,
                         (generator_optimizer, discriminator_optimizer, generator_scheduler,
                          discriminator_scheduler), n_critic, gradient_clip)  # fmt: skip
        self.save_hyperparameters(ignore=_FACTORIES)
        per_frame = sample_rate / fps
        if abs(per_frame - round(per_frame)) > 1e-9:
            raise AudiovisError(f"sample_rate / fps must be a whole number of samples, got "
                                f"{sample_rate} / {fps:g}")  # fmt: skip
        self.per_frame = round(per_frame)
        self.window = round(window_seconds * sample_rate)
        if self.window < self.per_frame:
            raise AudiovisError(f"window_seconds ({window_seconds}) is shorter than a frame")
        if lookahead_seconds < 0:
            raise AudiovisError(f"lookahead_seconds must be >= 0, got {lookahead_seconds}")
        if onset_points < 0:
            raise AudiovisError(f"onset_points must be >= 0 (0: none), got {onset_points}")
        self.lookahead = round(lookahead_seconds * sample_rate)
        self.noise, self.clip_frames, self.adversarial = noise, clip_frames, adversarial
        self.gp_on_audio, self.share_fake = gp_on_audio, share_fake
        self.gp_weight, self.l1_weight, self.tv_weight = gp_weight, l1_weight, tv_weight
        self.generator = AudioDanceGenerator(
            self.window, encoder, latent, encoder_out, audio_layers, noise, noise_hidden, width,
            blocks, num_joints, encoder_channels, encoder_activation, tanh, num_styles,
            onset_points,
        )  # fmt: skip
        self.discriminator = AudioDanceCritic(
            num_joints, clip_frames, clip_frames * self.per_frame, critic_channels,
            critic_blocks, code, critic_hidden, critic_audio_channels, use_audio_critic,
            num_styles,
        )  # fmt: skip

    @property
    def context_frames(self) -> int:
        """Frames of audio context a training clip needs on each side (its data's
        ``audio_context``): half a window beyond the frame, plus the look-ahead."""
        need = (self.window - self.per_frame) // 2 + self.lookahead
        return -(-need // self.per_frame)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        _check_clip_frames(self, self.clip_frames)
        self._check_audio_context()

    def _check_audio_context(self) -> None:
        dm = getattr(self._trainer, "datamodule", None)
        theirs = getattr(dm, "audio_context", None)
        k = self.context_frames
        if theirs is not None and (min(theirs) < k or theirs[0] != theirs[1]):
            raise AudiovisError(
                f"{type(self).__name__}: window_seconds and lookahead_seconds need "
                f"{k} frames of audio context on each side, the same before and after, but "
                f"data.audio_context is {list(theirs)}; set data.audio_context: [{k}, {k}]"
            )

    def frame_windows(self, audio: Tensor, num_frames: int) -> Tensor:
        """One window of ``window`` samples per frame, centred on the frame's centre plus
        ``lookahead_seconds``.

        ``audio`` holds the frames' samples with equal context before and after (what the
        DataModule gives with a symmetric ``audio_context``; none for a whole file); missing
        context is zero-padded.

        Shape:
            audio (B, S) → (B, T, window)
        """
        extra = audio.shape[-1] - num_frames * self.per_frame
        if extra < 0:
            raise AudiovisError(f"{audio.shape[-1]} audio samples are fewer than the "
                                f"{num_frames} frames need")  # fmt: skip
        have = extra // 2  # context samples before the first frame
        need = (self.window - self.per_frame) // 2
        start = have - need + self.lookahead
        stop = start + (num_frames - 1) * self.per_frame + self.window
        audio = F.pad(audio, (max(0, -start), max(0, stop - audio.shape[-1])))
        audio = audio[:, max(0, start) : max(0, start) + stop - start]
        return audio.unfold(-1, self.window, self.per_frame)[:, :num_frames]

    def forward(self, windows: Tensor, style: Tensor | None = None,
                state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:  # fmt: skip
        """Normalised dances (B, T, J, 3) from audio windows (B, T, window)."""
        b, t = windows.shape[:2]
        z = torch.randn(b, t, self.noise, device=windows.device)
        return self.generator(windows, z, style, state)

    def generate_batch(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Normalised real and generated dances of a training batch, its style and the audio
        under its frames."""
        pose = batch["pose3d"]
        t = pose.shape[1]
        style = self._style(batch)
        fake, _ = self(self.frame_windows(batch["audio"], t), style)
        return {"real": self.stats.normalise(pose), "fake": fake, "style": style,
                "audio": self._clip_audio(batch, t)}  # fmt: skip

    def discriminator_loss(self, batch: dict[str, Tensor],
                           out: dict[str, Any] | None = None
                           ) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
        """The critic's loss; ``out`` (from :meth:`generate_batch`) reuses generated dances
        (detached here) instead of drawing new ones."""
        if out is None:
            with torch.no_grad():
                out = self.generate_batch(batch)
        real, fake, audio, style = out["real"], out["fake"].detach(), out["audio"], out["style"]
        # real and fake share their music: one pass of the (costly) audio branch, and one of
        # the pose branch over both (the critic has no batch statistics, so this is exact)
        code = self.discriminator.audio_code(audio)
        both = None if style is None else torch.cat([style, style])
        scores = self.discriminator(torch.cat([real, fake]), audio, both, code)
        wd = wgan_critic_loss(*scores.chunk(2))
        gp = two_input_gradient_penalty(self.discriminator, real, fake, audio, style,
                                        self.gp_on_audio, code)  # fmt: skip
        return wd + self.gp_weight * gp, {
            "train/wasserstein": -wd.detach(),
            "train/gp": gp.detach(),
        }

    def generator_loss(self, batch: dict[str, Tensor],
                       out: dict[str, Any] | None = None
                       ) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
        """The generator's loss; ``out`` (from :meth:`generate_batch`, with gradients)
        reuses generated dances."""
        if out is None:
            out = self.generate_batch(batch)
        fake = out["fake"]
        l1 = F.l1_loss(fake, out["real"])
        tv = total_variation(fake, dim=1)
        loss = self.l1_weight * l1 + self.tv_weight * tv
        logs = {"train/l1": l1.detach(), "train/tv": tv.detach()}
        if self.adversarial:
            # the music's code does not depend on the generator: no gradient through it
            with torch.no_grad():
                code = self.discriminator.audio_code(out["audio"])
            adv = wgan_generator_loss(self.discriminator(fake, out["audio"], out["style"], code))
            loss = loss + adv
            logs["train/adv"] = adv.detach()
        return loss, logs

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if self.adversarial and not (self.share_fake and (batch_idx + 1) % self.n_critic == 0):
            return super().training_step(batch, batch_idx)
        if self.adversarial:  # one generated batch for both steps
            opt_g, opt_d = self.optimizers()  # type: ignore[misc,attr-defined]
            out = self.generate_batch(batch)
            with self.toggled_optimizer(opt_d):
                d_loss, d_logs = self.discriminator_loss(batch, out)
            self._optimize(opt_d, d_loss)
            with self.toggled_optimizer(opt_g):
                g_loss, g_logs = self.generator_loss(batch, out)
            self._optimize(opt_g, g_loss)
            self.log_dict({"train/d_loss": d_loss.detach(), **d_logs,
                           "train/g_loss": g_loss.detach(), **g_logs}, prog_bar=True,
                          batch_size=len(batch["pose3d"]))  # fmt: skip
            return None
        opt_g, _ = self.optimizers()  # type: ignore[misc,attr-defined]
        with self.toggled_optimizer(opt_g):
            loss, logs = self.generator_loss(batch)
        self._optimize(opt_g, loss)
        self.log_dict({"train/g_loss": loss.detach(), **logs}, prog_bar=True,
                      batch_size=len(batch["pose3d"]))  # fmt: skip
        return None

    def _real_and_fake(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        out = self.generate_batch(batch)
        return batch["pose3d"], self.stats.denormalise(out["fake"])

    def dance_metrics(self, real: list[np.ndarray], fake: list[np.ndarray],
                      audio: list[np.ndarray] | None = None) -> dict[str, float]:  # fmt: skip
        out = super().dance_metrics(real, fake, audio)
        # the original's validation measure: L1 to the real dance, standardised coordinates
        std = self.stats.std.cpu().numpy()
        out["l1"] = float(np.mean([np.abs((r - f) / std).mean()
                                   for r, f in zip(real, fake, strict=True)]))  # fmt: skip
        out["loss"] = out["l1"]
        return out

    def generate_dance(self, audio: Tensor, style: int | None = None,
                       chunk: int = 250) -> Tensor:  # fmt: skip
        frames = self._num_frames(audio)
        windows = self.frame_windows(audio[None, : frames * self.per_frame], frames)
        style_t = self._style_for_predict(style)
        return self._chunked(lambda a, b, state: self(windows[:, a:b], style_t, state), frames,
                             chunk)  # fmt: skip


# --------------------------------------------------------------------- style classifier


class DanceStyleClassifier(AudioVisualModule):
    """The dance-style classifier used to score generated dances (the original's: conv +
    temporal block + GRU), trained on real clips with cross-entropy.

    Args:
        num_classes: style classes (the dataset manifest's ``classes.style``; 5 for the
            studio default, whose list includes ``none``).
        num_joints: J.
        channels, hidden: network widths.
        optimizer: optimizer factory.
    """

    streams: ClassVar[tuple[str, ...]] = ("pose3d", "style")

    def __init__(self, num_classes: int = 5, num_joints: int = 23, channels: int = 64,
                 hidden: int = 64,
                 optimizer: OptimizerCallable = torch.optim.Adam) -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer"])
        self.optimizer = optimizer
        self.num_joints, self.num_classes = num_joints, num_classes
        self.stats = _PoseStats(num_joints)
        self.net = DanceStyleNet(num_joints, num_classes, channels, hidden)

    def on_fit_start(self) -> None:
        self.stats.fit(self, self.num_joints)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        _check_checkpoint_joints(self, checkpoint, self.num_joints)

    def configure_optimizers(self) -> Any:
        return self.optimizer(self.parameters())

    def forward(self, poses: Tensor) -> Tensor:
        """Logits (B, num_classes) of dances in metres (B, T, J, 3)."""
        return self.net(self.stats.normalise(poses))

    def _step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        logits = self(batch["pose3d"])
        loss = F.cross_entropy(logits, batch["style"])
        acc = (logits.argmax(-1) == batch["style"]).float().mean()
        self.log_dict({f"{split}/loss": loss, f"{split}/accuracy": acc}, prog_bar=True,
                      batch_size=len(logits), sync_dist=split != "train")  # fmt: skip
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    @torch.no_grad()
    def classify(self, dances: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Predicted style index of each dance (T, J, 3) in metres."""
        was = self.training
        self.eval()
        out = [int(self(torch.as_tensor(np.asarray(d), dtype=torch.float32,
                                        device=self.device)[None]).argmax(-1))
               for d in dances]  # fmt: skip
        self.train(was)
        return np.array(out, np.int64)
