"""Audio2Guitarist-GAN: a guitarist video from audio in two stages, audio → performer mask and
joint heatmaps (:class:`AudioToMaskGAN`), mask → colour frame (:class:`MaskToImageGAN`), and the
stage-2 generator driven by keypoints instead (:class:`PoseToImageGAN`).

The original released only diagrams; sizes not given there are ours (see the YAML files).
:func:`render_guitarist` chains the stages and :func:`write_guitarist_video` turns a music file
into an .mp4 with its audio, or into the original's four-row comparison (audio visualisation,
stage-1 output, stage-2 output, ground truth) when the ground truth is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from audiovis.callbacks import MediaSample
from audiovis.errors import AudiovisError, FileProblem
from audiovis.losses import hinge_discriminator_loss, hinge_generator_loss
from audiovis.media import heatmap_overlay, read_audio, read_video, resample, to_uint8, write_video
from audiovis.metrics.guitarist import FrameMetrics, KeypointMaskConsistency, MaskIoU
from audiovis.models.base import GANModule
from audiovis.networks.discriminators import PatchDiscriminator
from audiovis.networks.guitarist import (
    DEFAULT_JOINTS,
    AudioMaskDiscriminator,
    AudioToMaskNet,
    GuitaristFeatures,
    PoseGuidedGenerator,
    change_region,
    instrument_region,
    joint_heatmaps,
    pose_points,
)
from audiovis.networks.vgg import VGG19Features, perceptual_loss
from audiovis.skeleton import NUM_KEYPOINTS

STAGE_KEY = "audiovis_guitarist_stage"
# injected factories: kept as objects, LightningCLI records their YAML
_FACTORIES = ("generator_optimizer", "discriminator_optimizer", "generator_scheduler",
              "discriminator_scheduler")  # fmt: skip
STAGES = {"mask": "AudioToMaskGAN", "image": "MaskToImageGAN", "pose": "PoseToImageGAN"}


class WrongCheckpointError(AudiovisError):
    """A checkpoint of another stage (or model) was given to an Audio2Guitarist stage."""


def check_stage(checkpoint: dict[str, Any], expected: str, where: str = "the checkpoint") -> None:
    """Raise one clear error unless ``checkpoint`` was saved by the ``expected`` stage."""
    found = checkpoint.get(STAGE_KEY)
    if found == expected:
        return
    if found in STAGES:
        raise WrongCheckpointError(
            f"{where} is a checkpoint of {STAGES[found]}, not of {STAGES[expected]}; "
            f"give the {STAGES[expected]} checkpoint here"
        )
    raise WrongCheckpointError(
        f"{where} is not an Audio2Guitarist checkpoint (expected one of {STAGES[expected]})"
    )


class _GuitaristStage(GANModule):
    """Common to the three stages: the stage tag in checkpoints and the reference frame."""

    stage: ClassVar[str]
    image_size: int
    joints: tuple[int, ...]
    heatmap_radius: float
    reference_frame: Tensor
    reference_mask: Tensor
    reference_keypoints: Tensor
    initialised: Tensor

    def _register_reference(self, size: int) -> None:
        # a frame of the training split: the default reference of generation
        self.register_buffer("reference_frame", torch.zeros(3, size, size))
        self.register_buffer("reference_mask", torch.zeros(1, size, size))
        self.register_buffer("reference_keypoints", torch.full((NUM_KEYPOINTS, 3), 0.5))
        self.register_buffer("initialised", torch.tensor(False))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[STAGE_KEY] = self.stage

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_stage(checkpoint, self.stage)

    def on_fit_start(self) -> None:
        if bool(self.initialised):
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        dataset = getattr(datamodule, "datasets", {}).get("train")
        if dataset is None or not dataset.performances:
            return
        files = dataset.performances[0]
        size = self.image_size
        if "video" in files.arrays:
            frame = np.array(np.load(files.arrays["video"], mmap_mode="r")[0])
            self.reference_frame.copy_(torch.from_numpy(frame).permute(2, 0, 1) / 127.5 - 1)
        if "mask" in files.arrays:
            mask = np.array(np.load(files.arrays["mask"], mmap_mode="r")[0], np.float32)
            self.reference_mask.copy_(torch.from_numpy(mask)[None])
        if "keypoints" in files.arrays:
            kp = np.array(np.load(files.arrays["keypoints"], mmap_mode="r")[0], np.float32)
            self.reference_keypoints.copy_(torch.from_numpy(kp))
        assert self.reference_frame.shape[-1] == size
        self.initialised.fill_(True)

    def heatmaps(self, keypoints: Tensor) -> Tensor:
        """The joint and hand heatmaps of keypoints (..., 67, 3) → (..., J + 2, S, S)."""
        return joint_heatmaps(keypoints, self.image_size, self.joints, self.heatmap_radius)


# ================================================================================== stage 1


def soft_dice_loss(prob: Tensor, target: Tensor) -> Tensor:
    """1 − soft Dice of each mask, averaged: a loss that follows IoU for thin shapes.

    Shape:
        prob, target (..., H, W) in [0, 1] → scalar
    """
    inter = (prob * target).flatten(-2).sum(-1)
    total = (prob + target).flatten(-2).sum(-1)
    return (1 - (2 * inter + 1) / (total + 1)).mean()


class AudioToMaskGAN(_GuitaristStage):
    """Stage 1: audio → the performer's binary mask and joint/hand heatmaps, frame by frame.

    The generator (:class:`~audiovis.networks.guitarist.AudioToMaskNet`) reads the audio
    features and a conditioning image drawn from a reference frame's keypoints (joint and
    hand heatmaps and the instrument region; in training, the clip's first frame). The
    discriminator judges (mask + heatmaps, audio) per frame and per patch. Temporal coherence
    comes from the LSTM, which carries across windows at generation, a loss matching the
    frame-to-frame change of the masks to the real one, and a discriminator that sees each
    frame's change.

    Args:
        image_size: frame side.
        fps: video frame rate.
        sample_rate: audio rate.
        hop_length, n_cqt, n_mels, n_chroma, deltas, pitch: the audio features
            (:class:`~audiovis.networks.guitarist.GuitaristFeatures`).
        joints: BODY_25 joints drawn as heatmaps (the original's 7 by default); the two hands
            add one heatmap each.
        heatmap_radius: tent radius of the heatmaps, pixels.
        region_width: width of the instrument region, a fraction of the frame.
        use_reference_mask: add the reference frame's mask to the conditioning image (our
            addition: the original's branch had heatmaps and the fretboard mask only; with the
            performer's outline given, the audio has only the motion to explain).
        audio_dim, code_dim, base, depth, skips, audio_skips: generator sizes and merges (see
            ``AudioToMaskNet``).
        d_base, d_layers: discriminator sizes.
        window: frames per generation window (the training clip length).
        w_mask, w_dice, w_heatmap, w_temporal, w_pose, w_adv, w_patch: loss weights;
            ``w_pose`` weighs an auxiliary task of ours (0 drops it): predicting from the
            audio code alone how far the joints and hands moved from the reference, which
            makes the audio code carry the pose (without it the decoder copies the
            reference's outline and ignores the music).
        image_checkpoint: a MaskToImageGAN checkpoint; ``predict`` then renders colour frames.
    """

    stage = "mask"
    streams: ClassVar[tuple[str, ...]] = ("audio", "mask", "keypoints")
    generator: AudioToMaskNet
    discriminator: AudioMaskDiscriminator

    def __init__(
        self,
        image_size: int = 128,
        fps: float = 25.0,
        sample_rate: int = 16000,
        hop_length: int = 160,
        n_cqt: int = 84,
        n_mels: int = 64,
        n_chroma: int = 12,
        deltas: bool = True,
        pitch: bool = True,
        joints: list[int] | None = None,
        heatmap_radius: float = 2.0,
        region_width: float = 0.07,
        use_reference_mask: bool = True,
        audio_dim: int = 128,
        code_dim: int = 128,
        base: int = 32,
        depth: int = 4,
        skips: bool = True,
        audio_skips: bool = False,
        d_base: int = 32,
        d_layers: int = 4,
        window: int = 16,
        w_mask: float = 1.0,
        w_dice: float = 1.0,
        w_heatmap: float = 1.0,
        w_temporal: float = 1.0,
        w_pose: float = 1.0,
        w_adv: float = 0.05,
        w_patch: float = 0.05,
        image_checkpoint: str | None = None,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 1,
        gradient_clip: float | None = 10.0,
    ) -> None:
        super().__init__(generator_optimizer, discriminator_optimizer, generator_scheduler,
                         discriminator_scheduler, n_critic, gradient_clip)  # fmt: skip
        # image_checkpoint is a predict-time choice: kept out of the checkpoint, so that
        # `--ckpt_path` (which restores the recorded arguments) leaves the command line's
        self.save_hyperparameters(ignore=[*_FACTORIES, "image_checkpoint"])
        # built from scalars rather than injected, so load_from_checkpoint rebuilds it exactly
        try:
            self.frontend = GuitaristFeatures(sample_rate, hop_length, n_cqt, n_mels, n_chroma,
                                              deltas, pitch)  # fmt: skip
        except ValueError as err:
            raise AudiovisError(f"AudioToMaskGAN: {err}") from None
        self.image_size, self.fps, self.sample_rate, self.window = (
            image_size,
            fps,
            sample_rate,
            window,
        )
        self.joints = tuple(DEFAULT_JOINTS if joints is None else joints)
        self.heatmap_radius, self.region_width = heatmap_radius, region_width
        self.use_reference_mask = use_reference_mask
        channels = len(self.joints) + 2  # joint heatmaps, two hands
        feats = self.frontend.num_features
        self.generator = AudioToMaskNet(
            feats,
            channels + 1 + use_reference_mask,
            channels,
            image_size,
            audio_dim,
            code_dim,
            base,
            depth,
            skips,
            audio_skips,
            channels if w_pose > 0 else 0,
        )
        self.discriminator = AudioMaskDiscriminator(
            feats, 1 + channels, d_base, d_layers, audio_dim
        )
        self.weights = {"mask": w_mask, "dice": w_dice, "heatmap": w_heatmap,
                        "temporal": w_temporal, "pose": w_pose, "adv": w_adv,
                        "patch": w_patch}  # fmt: skip
        self.image_checkpoint = image_checkpoint
        self.image_model: MaskToImageGAN | None = None
        self.val_iou = MaskIoU()
        self.val_consistency = KeypointMaskConsistency()
        self._register_reference(image_size)

    # ----------------------------------------------------------------------------- forward

    def condition(self, reference_keypoints: Tensor, reference_mask: Tensor) -> Tensor:
        """Conditioning image of a reference frame: heatmaps, instrument region (and mask).

        Shape:
            (B, 67, 3), (B, 1, S, S) → (B, J + 3 (+ 1), S, S)
        """
        region = instrument_region(reference_keypoints, self.image_size, self.region_width)
        parts = [self.heatmaps(reference_keypoints), region]
        if self.use_reference_mask:
            parts.append(reference_mask.to(region.dtype))
        return torch.cat(parts, 1)

    def forward(
        self,
        audio: Tensor,
        num_frames: int,
        reference_keypoints: Tensor | None = None,
        reference_mask: Tensor | None = None,
        state: tuple[Tensor, Tensor] | None = None,
    ) -> dict[str, Any]:
        """Mask and heatmap logits for a window of audio.

        Args:
            audio: (B, S) waveform of the window.
            num_frames: T.
            reference_keypoints: (B, 67, 3); the stored reference frame's when ``None``.
            reference_mask: (B, 1, S, S); likewise.
            state: the LSTM state the previous window returned.

        Returns:
            dict with ``mask`` (B, T, 1, S, S) and ``heatmaps`` (B, T, J + 2, S, S) logits,
            ``state``.
        """
        if reference_keypoints is None:
            reference_keypoints = self.reference_keypoints[None].expand(len(audio), -1, -1)
        if reference_mask is None:
            reference_mask = self.reference_mask[None].expand(len(audio), -1, -1, -1)
        feats = self.frontend(audio)  # (B, F, N)
        condition = self.condition(reference_keypoints, reference_mask)
        logits, state = self.generator(feats, condition, num_frames, state)
        return {"mask": logits[:, :, :1], "heatmaps": logits[:, :, 1:], "state": state,
                "features": feats}  # fmt: skip

    def _generate(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Stage 1 on a batch, from its ``reference_keypoints`` (B, 67, 3) and
        ``reference_mask`` (B, 1, S, S) when given, else from each clip's first frame.

        A reference drawn from elsewhere in the performance matches generation, which keeps
        one reference for a whole piece; a clip's own first frame is so close to its other
        frames (a third of a second apart) that copying it alone scores well.
        """
        ref_kp = batch.get("reference_keypoints", batch["keypoints"][:, 0])
        ref_mask = batch.get("reference_mask", batch["mask"][:, 0])
        return self(batch["audio"], batch["mask"].shape[1], ref_kp, ref_mask)

    # ------------------------------------------------------------------------------ losses

    def _fake_images(self, out: dict[str, Any]) -> Tensor:
        return torch.cat([out["mask"], out["heatmaps"]], 2).sigmoid()

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            out = self._generate(batch)
        real = torch.cat([batch["mask"], self.heatmaps(batch["keypoints"])], 2)
        real_score, real_patch = self.discriminator(real, out["features"])
        fake_score, fake_patch = self.discriminator(self._fake_images(out), out["features"])
        loss = hinge_discriminator_loss(real_score, fake_score) + hinge_discriminator_loss(
            real_patch, fake_patch
        )
        return loss, {}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        out = self._generate(batch)
        losses = self.reconstruction_losses(out, batch)
        score, patch = self.discriminator(self._fake_images(out), out["features"])
        losses["adv"] = hinge_generator_loss(score)
        losses["patch"] = hinge_generator_loss(patch)
        total = sum(self.weights[k] * v for k, v in losses.items())
        return total, {f"train/{k}": v.detach() for k, v in losses.items()}  # type: ignore[return-value]

    def reconstruction_losses(self, out: dict[str, Any], batch: dict[str, Tensor]
                              ) -> dict[str, Tensor]:  # fmt: skip
        """Mask BCE and Dice, heatmap BCE, and the temporal term: the L1 distance between the
        predicted and the true frame-to-frame change of the mask."""
        mask, logits = batch["mask"], out["mask"].float()
        prob = logits.sigmoid()
        heat = self.heatmaps(batch["keypoints"])
        losses = {
            "mask": F.binary_cross_entropy_with_logits(logits, mask),
            "dice": soft_dice_loss(prob, mask),
            "heatmap": F.binary_cross_entropy_with_logits(out["heatmaps"].float(), heat),
        }
        if mask.shape[1] > 1:
            losses["temporal"] = F.l1_loss(prob.diff(dim=1), mask.diff(dim=1))
        if self.generator.pose_head is not None:
            # the audio's auxiliary task: how far the joints and hands moved from the
            # reference, in pixels
            ref = pose_points(batch.get("reference_keypoints", batch["keypoints"][:, 0]),
                              self.joints)  # fmt: skip
            true = (pose_points(batch["keypoints"], self.joints) - ref[:, None]) * self.image_size
            pred = self.generator.pose_change(out["features"], ref, mask.shape[1])
            losses["pose"] = F.mse_loss(pred.float(), true)
        return losses

    # ------------------------------------------------------------------------- evaluation

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self._generate(batch)
        prob = out["mask"].float().sigmoid()
        losses = self.reconstruction_losses(out, batch)
        self.val_iou(prob, batch["mask"])
        self.val_consistency(batch["keypoints"], prob)
        n = len(batch["mask"])
        self.log_dict({"val/loss": losses["mask"] + losses["dice"],
                       "val/heatmap": losses["heatmap"]}, prog_bar=True, sync_dist=True,
                      batch_size=n)  # fmt: skip
        self.log("val/mask_iou", self.val_iou, prog_bar=True, batch_size=n)
        self.log("val/keypoint_mask_consistency", self.val_consistency, batch_size=n)

    def generate(
        self,
        audio: Tensor,
        reference_keypoints: Tensor | None = None,
        reference_mask: Tensor | None = None,
        window: int | None = None,
    ) -> dict[str, Tensor]:
        """Mask and heatmap probabilities for a whole waveform (S,), window by window with the
        LSTM state carried over, from a reference frame's keypoints (67, 3) and mask (1, S, S)
        (the stored reference's when ``None``).

        Returns:
            ``mask`` (T, 1, S, S) and ``heatmaps`` (T, J + 2, S, S) in [0, 1], ``features``
            (F, N) of the whole waveform, for display.
        """
        window = window or self.window
        per_frame = self.sample_rate / self.fps
        total = int(len(audio) / per_frame)
        ref = None if reference_keypoints is None else reference_keypoints[None]
        ref_mask = None if reference_mask is None else reference_mask[None]
        masks, heats, state = [], [], None
        for start in range(0, total, window):
            t = min(window, total - start)
            # the last window is padded with silence to a whole one: the features see the
            # window length they were trained on (and the spectra's frames fit)
            chunk = audio[round(start * per_frame) : round((start + window) * per_frame)]
            chunk = F.pad(chunk, (0, max(0, round(window * per_frame) - len(chunk))))
            out = self(chunk[None], window, ref, ref_mask, state)
            state = out["state"]
            masks.append(out["mask"][0, :t].float().sigmoid())
            heats.append(out["heatmaps"][0, :t].float().sigmoid())
        return {"mask": torch.cat(masks), "heatmaps": torch.cat(heats),
                "features": self.frontend(audio[None])[0]}  # fmt: skip

    def on_predict_start(self) -> None:
        if self.image_checkpoint and self.image_model is None:
            self.image_model = load_stage(self.image_checkpoint, MaskToImageGAN)
            self.image_model.to(self.device)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[MediaSample]:
        samples = []
        names = batch.get("name") or [
            f"clip{batch_idx:04d}_{i}" for i in range(len(batch["audio"]))
        ]
        for i, (name, audio) in enumerate(zip(names, batch["audio"], strict=True)):
            ref = Reference(self.reference_frame, self.reference_mask, self.reference_keypoints)
            truth = None
            if (
                "keypoints" in batch
            ):  # a window of the dataset: its own first frame is the reference
                video = batch["video"][i] if "video" in batch else None
                ref = Reference(video[0] if video is not None else self.reference_frame,
                                batch["mask"][i, 0], batch["keypoints"][i, 0])  # fmt: skip
                truth = to_uint8(video) if video is not None else _mask_rgb(batch["mask"][i])
            render = render_guitarist(audio.float(), self, self.image_model, ref, truth)
            arrays = {"mask": render.masks.numpy(), "heatmaps": render.heatmaps.numpy()}
            if render.frames is not None:
                arrays["frames"] = to_uint8(render.frames)  # (T, S, S, 3)
            samples.append(MediaSample(
                name=str(name), fps=self.fps, video=render.video,
                audio=audio.float().cpu().numpy(), sample_rate=self.sample_rate, arrays=arrays,
            ))  # fmt: skip
        return samples


# ================================================================================== stage 2


def pose_mask_l1(fake: Tensor, real: Tensor, mask: Tensor | None = None) -> Tensor:
    """PG2's pose-mask L1: |fake − real| weighted by (1 + mask), so the performer counts twice.

    Shape:
        fake, real (N, 3, H, W), mask (N, 1, H, W) or None → scalar
    """
    diff = (fake - real).abs()
    return (diff * (1 + mask)).mean() if mask is not None else diff.mean()


class _PoseGuidedGAN(_GuitaristStage):
    """Stage 2 and the pose-guided generator: condition images → colour frames (PG2).

    Every frame of a clip is generated from the clip's first frame (the reference) with its
    condition and the frame's own condition; a PatchGAN conditioned on the condition judges.
    Losses: pose-mask L1 on the coarse and the refined frame, hinge adversarial, and VGG
    perceptual when ``vgg_weights`` names a local VGG-19 state dict.
    """

    generator: PoseGuidedGenerator
    discriminator: PatchDiscriminator

    def __init__(
        self,
        condition_channels: int,
        image_size: int,
        fps: float,
        sample_rate: int,
        joints: list[int] | None,
        heatmap_radius: float,
        base: int,
        depth: int,
        refine_base: int,
        refine_depth: int,
        refine: bool,
        residual: bool,
        change_margin: float | None,
        d_base: int,
        d_layers: int,
        w_coarse: float,
        w_l1: float,
        w_adv: float,
        w_perceptual: float,
        vgg_weights: str | None,
        generator_optimizer: OptimizerCallable,
        discriminator_optimizer: OptimizerCallable,
        generator_scheduler: LRSchedulerCallable | None,
        discriminator_scheduler: LRSchedulerCallable | None,
        n_critic: int,
        gradient_clip: float | None,
    ) -> None:
        super().__init__(generator_optimizer, discriminator_optimizer, generator_scheduler,
                         discriminator_scheduler, n_critic, gradient_clip)  # fmt: skip
        self.image_size, self.fps, self.sample_rate = image_size, fps, sample_rate
        self.joints = tuple(DEFAULT_JOINTS if joints is None else joints)
        self.heatmap_radius = heatmap_radius
        self.generator = PoseGuidedGenerator(condition_channels, base, depth, refine_base,
                                             refine_depth, refine, residual)  # fmt: skip
        self.change_margin = change_margin if residual and self.condition_has_mask else None
        self.discriminator = PatchDiscriminator(3 + condition_channels, d_base, d_layers)
        # perceptual only with real VGG weights: a random VGG's features mean little
        self.vgg = VGG19Features(vgg_weights) if vgg_weights and w_perceptual > 0 else None
        self.weights = {"coarse": w_coarse, "l1": w_l1, "adv": w_adv, "perceptual": w_perceptual}
        self.val_frames = FrameMetrics(prefix="val/")
        self._register_reference(image_size)

    def condition(self, keypoints: Tensor, mask: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _batch_condition(self, batch: dict[str, Tensor]) -> Tensor:
        return self.condition(batch["keypoints"], batch.get("mask"))

    def forward(
        self, condition: Tensor, reference: Tensor, reference_condition: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Coarse and refined frames (N, 3, S, S) for target conditions (N, C, S, S), from a
        reference frame (N, 3, S, S) and its condition.

        With a ``change_margin``, only the performer's masks (the reference's and the
        target's, grown by the margin) may differ from the reference frame.
        """
        region = None
        if self.change_margin is not None:
            margin = round(self.change_margin * self.image_size)
            region = change_region([condition[:, :1], reference_condition[:, :1]], margin)
        return self.generator(condition, reference, reference_condition, region)  # type: ignore[no-any-return]

    def _generate(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        cond = self._batch_condition(batch)  # (B, T, C, S, S)
        b, t = cond.shape[:2]
        reference = batch["video"][:, :1].expand(-1, t, -1, -1, -1).flatten(0, 1)
        ref_cond = cond[:, :1].expand(-1, t, -1, -1, -1).flatten(0, 1)
        coarse, frames = self(cond.flatten(0, 1), reference, ref_cond)
        return coarse, frames, cond.flatten(0, 1)

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            _, fake, cond = self._generate(batch)
        real = batch["video"].flatten(0, 1)
        return hinge_discriminator_loss(
            self.discriminator(torch.cat([real, cond], 1)),
            self.discriminator(torch.cat([fake, cond], 1)),
        ), {}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        coarse, fake, cond = self._generate(batch)
        real = batch["video"].flatten(0, 1)
        mask = batch["mask"].flatten(0, 1) if "mask" in batch else None
        losses = {
            "coarse": pose_mask_l1(coarse, real, mask),
            "l1": pose_mask_l1(fake, real, mask),
            "adv": hinge_generator_loss(self.discriminator(torch.cat([fake, cond], 1))),
        }
        if self.vgg is not None:
            losses["perceptual"] = perceptual_loss(self.vgg, fake, real)
        total = sum(self.weights[k] * v for k, v in losses.items())
        return total, {f"train/{k}": v.detach() for k, v in losses.items()}  # type: ignore[return-value]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        _, fake, _ = self._generate(batch)
        real = batch["video"].flatten(0, 1)
        self.val_frames.update(fake.float(), real)
        self.log("val/loss", F.l1_loss(fake.float(), real), prog_bar=True, sync_dist=True,
                 batch_size=len(real))  # fmt: skip
        self.log_dict(self.val_frames, prog_bar=True, batch_size=len(real))  # type: ignore[arg-type]

    def render(self, condition: Tensor, reference: Reference, batch: int = 16) -> Tensor:
        """Frames (T, 3, S, S) in [-1, 1] for conditions (T, C, S, S) from one reference."""
        ref_cond = self.condition(reference.keypoints[None], reference.mask[None])[0]
        frames = []
        for start in range(0, len(condition), batch):
            cond = condition[start : start + batch]
            n = len(cond)
            _, out = self(cond, reference.frame[None].expand(n, -1, -1, -1),
                          ref_cond[None].expand(n, -1, -1, -1))  # fmt: skip
            frames.append(out.float())
        return torch.cat(frames)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[MediaSample]:
        if "video" not in batch or "keypoints" not in batch:
            raise AudiovisError(
                f"{type(self).__name__} renders from the dataset's keypoints (and masks); "
                "predict on a split (no --data.predict_audio), or use write_guitarist_video "
                "for audio"
            )
        cond = self._batch_condition(batch)
        samples = []
        for i in range(len(cond)):
            ref = Reference(batch["video"][i, 0], batch["mask"][i, 0] if "mask" in batch
                            else self.reference_mask, batch["keypoints"][i, 0])  # fmt: skip
            frames = self.render(cond[i], ref)
            shown = _condition_rgb(cond[i], self.condition_has_mask)
            video = np.concatenate([shown, to_uint8(frames), to_uint8(batch["video"][i])], 2)
            samples.append(MediaSample(name=f"clip{batch_idx:04d}_{i}", fps=self.fps, video=video,
                                       audio=batch["audio"][i].float().cpu().numpy()
                                       if "audio" in batch else None,
                                       sample_rate=self.sample_rate if "audio" in batch
                                       else None))  # fmt: skip
        return samples

    condition_has_mask: ClassVar[bool] = True


class MaskToImageGAN(_PoseGuidedGAN):
    """Stage 2: the performer's mask and joint/hand heatmaps → a colour frame (PG2 style).

    Args:
        image_size: frame side.
        fps, sample_rate: rates of the media written by ``predict``.
        joints: BODY_25 joints drawn as heatmaps (plus one heatmap per hand).
        heatmap_radius: their tent radius, pixels.
        base, depth: the coarse U-Net's width and halvings.
        refine_base, refine_depth: the refinement U-Net's; ``refine`` switches it off.
        residual: the coarse U-Net predicts a change of the reference frame, both U-Nets'
            outputs start at zero, so the untrained generator copies the reference frame.
        change_margin: with ``residual``, the frame may differ from the reference only within
            this margin (a fraction of the frame side) around the performer's mask in the
            reference or the target frame (a fixed camera: the rest does not move); None lets
            the whole frame change.
        d_base, d_layers: the PatchGAN's width and stride-2 layers.
        w_coarse, w_l1, w_adv, w_perceptual: loss weights.
        vgg_weights: a local VGG-19 state dict; the perceptual loss is used only with one.
    """

    stage = "image"
    streams: ClassVar[tuple[str, ...]] = ("video", "mask", "keypoints")

    def __init__(
        self,
        image_size: int = 128,
        fps: float = 25.0,
        sample_rate: int = 16000,
        joints: list[int] | None = None,
        heatmap_radius: float = 2.0,
        base: int = 32,
        depth: int = 4,
        refine_base: int = 32,
        refine_depth: int = 3,
        refine: bool = True,
        residual: bool = True,
        change_margin: float | None = 0.03,
        d_base: int = 64,
        d_layers: int = 3,
        w_coarse: float = 1.0,
        w_l1: float = 10.0,
        w_adv: float = 1.0,
        w_perceptual: float = 1.0,
        vgg_weights: str | None = None,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 1,
        gradient_clip: float | None = 10.0,
    ) -> None:
        channels = 1 + len(DEFAULT_JOINTS if joints is None else joints) + 2
        super().__init__(channels, image_size, fps, sample_rate, joints, heatmap_radius, base,
                         depth, refine_base, refine_depth, refine, residual, change_margin,
                         d_base, d_layers, w_coarse, w_l1, w_adv, w_perceptual, vgg_weights,
                         generator_optimizer, discriminator_optimizer, generator_scheduler,
                         discriminator_scheduler, n_critic, gradient_clip)  # fmt: skip
        self.save_hyperparameters(ignore=list(_FACTORIES))

    def condition(self, keypoints: Tensor, mask: Tensor | None) -> Tensor:
        """Mask and heatmaps: (..., 67, 3), (..., 1, S, S) → (..., 1 + J + 2, S, S)."""
        if mask is None:
            raise AudiovisError("MaskToImageGAN needs the performer's mask")
        return torch.cat([mask.to(keypoints.dtype), self.heatmaps(keypoints)], -3)


class PoseToImageGAN(_PoseGuidedGAN):
    """Pose-guided generation: the stage-2 generator driven by hand and body keypoints drawn as
    heatmaps (from a reference video's poses) instead of stage-1 masks.

    Arguments as :class:`MaskToImageGAN`; ``joints`` defaults to all 25 body joints here,
    since the heatmaps alone must carry the body's shape.
    """

    stage = "pose"
    streams: ClassVar[tuple[str, ...]] = ("video", "keypoints")
    condition_has_mask = False

    def __init__(
        self,
        image_size: int = 128,
        fps: float = 25.0,
        sample_rate: int = 16000,
        joints: list[int] | None = None,
        heatmap_radius: float = 2.0,
        base: int = 32,
        depth: int = 4,
        refine_base: int = 32,
        refine_depth: int = 3,
        refine: bool = True,
        residual: bool = True,
        d_base: int = 64,
        d_layers: int = 3,
        w_coarse: float = 1.0,
        w_l1: float = 10.0,
        w_adv: float = 1.0,
        w_perceptual: float = 1.0,
        vgg_weights: str | None = None,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 1,
        gradient_clip: float | None = 10.0,
    ) -> None:
        joints = list(range(25)) if joints is None else joints
        super().__init__(len(joints) + 2, image_size, fps, sample_rate, joints, heatmap_radius,
                         base, depth, refine_base, refine_depth, refine, residual, None,
                         d_base, d_layers, w_coarse, w_l1, w_adv, w_perceptual, vgg_weights,
                         generator_optimizer, discriminator_optimizer, generator_scheduler,
                         discriminator_scheduler, n_critic, gradient_clip)  # fmt: skip
        self.save_hyperparameters(ignore=list(_FACTORIES))

    def condition(self, keypoints: Tensor, mask: Tensor | None = None) -> Tensor:
        """Heatmaps of the keypoints: (..., 67, 3) → (..., J + 2, S, S); a mask is ignored."""
        return self.heatmaps(keypoints)

    def render_keypoints(self, keypoints: Tensor, reference: Reference | None = None) -> Tensor:
        """Frames (T, 3, S, S) in [-1, 1] following a keypoint sequence (T, 67, 3)."""
        reference = reference or Reference(self.reference_frame, self.reference_mask,
                                           self.reference_keypoints)  # fmt: skip
        return self.render(self.condition(keypoints.to(self.device)), reference)


# ================================================================================== pipeline


@dataclass
class Reference:
    """The reference frame of generation: (3, S, S) in [-1, 1], its mask (1, S, S) and its
    keypoints (67, 3)."""

    frame: Tensor
    mask: Tensor
    keypoints: Tensor


@dataclass
class GuitaristRender:
    """What :func:`render_guitarist` produced: ``masks`` (T, 1, S, S) and ``heatmaps``
    (T, J + 2, S, S) in [0, 1], ``frames`` (T, 3, S, S) in [-1, 1] or None, and ``video``
    (T, H, W, 3) uint8: the colour frames, or the four-row comparison when ground truth was
    given (the stage-1 view alone without a stage 2)."""

    masks: Tensor
    heatmaps: Tensor
    frames: Tensor | None
    video: np.ndarray


def _mask_rgb(mask: Tensor) -> np.ndarray:
    """(T, 1, S, S) in [0, 1] → (T, S, S, 3) uint8 grey."""
    return to_uint8(mask.float() * 2 - 1)


def _condition_rgb(cond: Tensor, has_mask: bool) -> np.ndarray:
    """A condition stack (T, C, S, S) shown as the mask (if any) with its heatmaps in colour."""
    base = _mask_rgb(cond[:, :1]) // 2 if has_mask else np.zeros((len(cond), *cond.shape[-2:], 3),
                                                                 np.uint8)  # fmt: skip
    heat = (cond[:, 1:] if has_mask else cond).float().cpu().numpy()
    return np.stack([heatmap_overlay(b, h) for b, h in zip(base, heat, strict=True)])


def audio_visualisation(features: Tensor, num_frames: int, size: int, span: int = 48) -> np.ndarray:
    """The original's top row: a scrolling spectrogram, ``span`` video frames wide, with the
    current frame at a red cursor in the middle.

    Shape:
        features (F, N) in [0, 1] → (num_frames, size, size, 3) uint8
    """
    feats = features.float().cpu().numpy()
    per = feats.shape[1] / max(num_frames, 1)
    width = max(1, round(span * per))
    padded = np.pad(feats, ((0, 0), (width // 2, width - width // 2)))
    rows = np.linspace(0, feats.shape[0] - 1, size).round().astype(int)[::-1]  # low at bottom
    cols = np.linspace(0, width - 1, size).round().astype(int)
    out = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        centre = round((t + 0.5) * per)
        window = np.clip(padded[rows][:, centre + cols], 0, 1)  # (size, size)
        out[t] = np.stack([255 * window**0.7, 200 * window, 90 + 120 * window], -1).astype(np.uint8)
        out[t, :, size // 2] = (255, 40, 40)
    return out


@torch.no_grad()
def render_guitarist(
    audio: Tensor,
    mask_model: AudioToMaskGAN,
    image_model: MaskToImageGAN | None = None,
    reference: Reference | None = None,
    truth: np.ndarray | None = None,
) -> GuitaristRender:
    """Audio → stage 1 → stage 2, and the comparison video when the ground truth is given.

    Args:
        audio: (S,) waveform at the models' rate.
        mask_model: stage 1.
        image_model: stage 2 (None: masks only).
        reference: the reference frame; the stage-2 model's stored one (else stage 1's).
        truth: ground-truth frames (T', H, W, 3) uint8 for the comparison's bottom row.
    """
    mask_model.eval()
    device = mask_model.device
    if reference is None:
        source: _GuitaristStage = image_model if image_model is not None else mask_model
        reference = Reference(source.reference_frame, source.reference_mask,
                              source.reference_keypoints)  # fmt: skip
    reference = Reference(*(x.to(device).float() for x in (reference.frame, reference.mask,
                                                            reference.keypoints)))  # fmt: skip
    out = mask_model.generate(audio.to(device).float(), reference.keypoints, reference.mask)
    masks, heats = out["mask"], out["heatmaps"]
    stage1 = _condition_rgb(torch.cat([masks, heats], 1), True)
    frames = None
    if image_model is not None:
        image_model.eval()
        hard = (masks >= 0.5).to(masks.dtype)  # stage 2 was trained on binary masks
        cond = torch.cat([hard, heats], 1).to(image_model.device)
        frames = image_model.render(cond, reference)
    if truth is None:
        video = to_uint8(frames) if frames is not None else stage1
    else:
        t = min(len(masks), len(truth))
        rows = [audio_visualisation(out["features"], len(masks), mask_model.image_size)[:t],
                stage1[:t]]  # fmt: skip
        if frames is not None:
            rows.append(to_uint8(frames)[:t])
        rows.append(np.asarray(truth)[:t])
        video = np.concatenate(rows, axis=1)  # top to bottom, as the original's GIFs
    return GuitaristRender(masks.cpu(), heats.cpu(), frames.cpu() if frames is not None else None,
                           video)  # fmt: skip


def load_stage(path: str | Path, cls: type[_GuitaristStage]) -> Any:
    """Load a stage from its checkpoint, with one clear error for a wrong or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileProblem(path, "no such checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not a checkpoint"
        raise FileProblem(path, f"not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(checkpoint, dict):
        raise FileProblem(path, "not a Lightning checkpoint")
    check_stage(checkpoint, cls.stage, str(path))
    model = cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    return model.eval()


def load_audio(path: str | Path, sample_rate: int, fps: float, min_frames: int) -> np.ndarray:
    """Read a music file for generation, with one clear error for each bad case: unreadable,
    silent, recorded at a rate below the model's (the features' upper bands would be empty)
    or shorter than ``min_frames`` video frames."""
    wave, rate = read_audio(path)  # raises MediaError: missing, corrupt, silent, not audio
    if rate < sample_rate:
        raise FileProblem(
            path,
            f"recorded at {rate} Hz, below the model's {sample_rate} Hz; its features above "
            f"{rate // 2} Hz would be empty. Give a recording at {sample_rate} Hz or more",
        )
    wave = resample(wave, rate, sample_rate)
    if len(wave) < min_frames * sample_rate / fps:
        raise FileProblem(
            path,
            f"{len(wave) / sample_rate:.2f} s of audio is shorter than the "
            f"{min_frames / fps:.2f} s ({min_frames} frames) one generation window needs",
        )
    return wave


def load_reference_image(path: str | Path, size: int) -> Tensor:
    """A reference frame from an image file: (3, size, size) in [-1, 1]; another size is an
    error (the reference's keypoints and mask are in its own frame)."""
    from audiovis.media import read_image

    rgb = read_image(path, size, "reference image")
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 127.5 - 1


def _read_truth(path: str | Path, fps: float, size: int) -> np.ndarray:
    """Ground-truth frames from a video file or a performance folder (``frames.npy``)."""
    path = Path(path)
    if path.is_dir():
        frames = path / "frames.npy"
        if not frames.is_file():
            raise FileProblem(path, "a ground-truth folder needs frames.npy")
        arr = np.load(frames, mmap_mode="r")
        if arr.shape[1:3] != (size, size):
            raise FileProblem(
                frames, f"frames are {arr.shape[2]}x{arr.shape[1]}, not {size}x{size}"
            )
        return np.array(arr)
    return read_video(path, fps=fps, size=size)[0]


def write_guitarist_video(
    audio_path: str | Path,
    mask_checkpoint: str | Path,
    out: str | Path,
    image_checkpoint: str | Path | None = None,
    reference_image: str | Path | None = None,
    ground_truth: str | Path | None = None,
) -> Path:
    """A music file → a guitarist video (.mp4 with the music muxed in).

    Args:
        audio_path: any audio file (or a video's audio track).
        mask_checkpoint: an AudioToMaskGAN checkpoint.
        out: the .mp4 to write.
        image_checkpoint: a MaskToImageGAN checkpoint; without one the video shows masks.
        reference_image: a frame of the performer at the models' size; the keypoints and mask
            of the stored reference frame go with it, so it must share that framing.
        ground_truth: a video file or performance folder; the output is then the four-row
            comparison (audio visualisation, stage 1, stage 2, ground truth).
    """
    mask_model: AudioToMaskGAN = load_stage(mask_checkpoint, AudioToMaskGAN)
    image_model = load_stage(image_checkpoint, MaskToImageGAN) if image_checkpoint else None
    if image_model is not None and image_model.image_size != mask_model.image_size:
        raise AudiovisError(f"stage 1 makes {mask_model.image_size}-pixel masks but stage 2 "
                            f"takes {image_model.image_size}")  # fmt: skip
    rate, fps, size = mask_model.sample_rate, mask_model.fps, mask_model.image_size
    wave = load_audio(audio_path, rate, fps, min_frames=mask_model.window)
    source: _GuitaristStage = image_model if image_model is not None else mask_model
    reference = Reference(source.reference_frame, source.reference_mask, source.reference_keypoints)
    if reference_image is not None:
        reference.frame = load_reference_image(reference_image, size)
    truth = _read_truth(ground_truth, fps, size) if ground_truth is not None else None
    render = render_guitarist(torch.from_numpy(wave), mask_model, image_model, reference, truth)
    # the comparison stops with the shorter of music and ground truth; so does its sound
    wave = wave[: round(len(render.video) * rate / fps)]
    return write_video(out, render.video, fps, wave, rate)


__all__ = [
    "AudioToMaskGAN",
    "GuitaristRender",
    "MaskToImageGAN",
    "PoseToImageGAN",
    "Reference",
    "WrongCheckpointError",
    "audio_visualisation",
    "check_stage",
    "load_audio",
    "load_reference_image",
    "load_stage",
    "render_guitarist",
    "write_guitarist_video",
]
