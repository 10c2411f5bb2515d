"""APVG, "Let's Play Music": audio → keypoints (KHP) → coarse video (CVG) → final video (STU)
with an audio-video discriminator, trained end to end in one LightningModule."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor
from torchmetrics.classification import MultilabelF1Score

from audiovis.audio import CQT, AudioFrontEnd, frames_to_video_rate
from audiovis.callbacks import MediaSample
from audiovis.errors import AudiovisError, FileProblem
from audiovis.losses import change_weighted_l1, hinge_discriminator_loss, hinge_generator_loss
from audiovis.media import draw_skeleton, hstack_videos, to_uint8
from audiovis.metrics.video import FrameMetrics, KeypointDistance
from audiovis.models.base import GANModule, read_checkpoint
from audiovis.music import LOWEST_PITCH, NUM_KEYS
from audiovis.networks.coarse import CoarseVideoGeneratorNet
from audiovis.networks.discriminators import AudioVideoDiscriminator
from audiovis.networks.keyboard import (
    KeyLogits,
    KeyPressNet,
    draw_keys,
    key_rects,
    onset_targets,
    render_presses,
)
from audiovis.networks.keypoints import KeypointPredictorNet, dlt_heatmaps
from audiovis.networks.stu import StructuredTemporalUNet
from audiovis.networks.vgg import VGG19Features, perceptual_loss
from audiovis.networks.warp import keypoint_flow, warp
from audiovis.skeleton import NUM_KEYPOINTS

#: the keys' back part, as a fraction of their length, where the fingers pressing them never
#: reach (the studio reads the keys there too): :meth:`APVG.fit_key_colours` fits on it
KEY_BACK = 0.27

#: component → its parameters' prefix in the state dict
COMPONENTS = {
    "khp": "generator.khp.",
    "cvg": "generator.cvg.",
    "stu": "generator.stu.",
    "keys": "generator.keys.",
    "discriminator": "discriminator.",
}


class _Generator(torch.nn.Module):
    """The generator stages (and the piano's key presses), so one optimizer holds them all."""

    def __init__(self, khp: KeypointPredictorNet | None, cvg: CoarseVideoGeneratorNet | None,
                 stu: StructuredTemporalUNet | None,
                 keys: KeyPressNet | None = None) -> None:  # fmt: skip
        super().__init__()
        self.khp, self.cvg, self.stu, self.keys = khp, cvg, stu, keys


class APVG(GANModule):
    """Audio-driven performance video generation.

    From the audio of a window (and the previous frame), the KHP predicts body and hand
    keypoints, the DLT turns them into a heatmap, the CVG generates a coarse frame
    autoregressively, and the STU refines it into the final frame with a ConvGRU across frames
    and a GCN over the skeleton. An audio-video discriminator judges (frame, audio) pairs.
    ``stage`` chooses what trains. ``joint`` (the default) trains all stages at once: the
    losses of the early stages keep them supervised while the final stage learns. The paper's
    schedule is ``khp`` (keypoints alone: coordinate L2 + heatmap L1), ``cvg`` (coarse frames
    alone: L1), then ``final`` (STU + discriminator, with the KHP and CVG frozen and loaded
    from their stage checkpoints through ``init_from``). ``experiments/apvg_khp.yaml``,
    ``apvg_cvg.yaml`` and ``apvg_final.yaml`` run that schedule.

    Every component the paper ablates can be switched off: ``use_khp`` (the average pose is
    used), ``use_cvg`` (the reference frame stands in for the coarse frame), ``use_stu`` (the
    coarse frame is the output), ``use_gcn``, ``use_gru``, ``use_average`` (the KHP's
    instrument condition) and ``use_dlt`` (no heatmap loss through the landmark transformer).

    Args:
        frontend: audio front-end (CQT, 84 bins, as the paper, by default).
        image_size: frame side.
        fps: video frame rate.
        sample_rate: audio rate.
        khp_condition: the KHP's pose condition. ``average`` (the paper): the training set's
            average keypoints. ``first_pose`` (ours): the performer's pose at the frame
            generation starts from — the clip's first frame in training and evaluation, the
            reference frame's (or the previous window's last predicted pose) in generation —
            and the KHP predicts a change to it, so a performer unlike the average is
            followed from where they stand.
        heatmap_radius: DLT tent radius in pixels (1 = the paper's formula at 256 px).
        cvg_channels: width of the CVG decoder.
        cvg_scale: the CVG works at ``image_size / cvg_scale`` (a power of two; its change is
            upsampled onto the full-size frame; see
            :class:`~audiovis.networks.coarse.CoarseVideoGeneratorNet`); 1: the paper's full
            size.
        cvg_residual: the CVG decodes a change to the previous frame and starts by repeating
            it (our choice, see :class:`~audiovis.networks.coarse.CoarseVideoGeneratorNet`);
            ``False`` decodes whole frames as the paper.
        cvg_anchor: with ``cvg_residual``, what the change is to: ``previous`` (the previous
            generated frame) or ``first`` (the frame generation started from; cannot drift).
        warp_sigma: with the KHP on, warp the coarse frames by the predicted keypoints'
            motion from the generation's first pose before the STU refines them (ours:
            :func:`~audiovis.networks.warp.keypoint_flow`, each keypoint carrying the pixels
            within about ``warp_sigma`` of the frame side), so the performer's limbs move
            where the keypoints go; 0 switches it off (the paper).
        key_presses: for keyboard instruments (ours, not the paper): a key-press head
            (:class:`~audiovis.networks.keyboard.KeyPressNet`) predicts from the audio which
            of the 88 keys are down, trained on the data's ``roll``; the keyboard is located
            in the first frame (:func:`~audiovis.models.audeo.locate_key_columns`) and the
            predicted presses are rendered into a press map the STU reads beside the
            keypoint heatmap, and painted onto the coarse frame (a colour change per white /
            black key from the first frame's keys, started at its least-squares fit on the
            training videos (:meth:`fit_key_colours`) and learned on), so a pressed key is
            drawn where it is. Train the head first in the ``khp`` stage (it learns with the
            KHP there, thousands of cheap steps) and load it with ``init_from: {keys: ...}``.
        key_head: the key-press head: ``dense`` (any front-end) or ``pitch`` (one detector
            shared by every key over a semitone CQT; see
            :class:`~audiovis.networks.keyboard.KeyPressNet`).
        key_threshold: draw a key fully down where the head's probability reaches it and up
            elsewhere (the press map and the paint take the head's decisions, as a viewer
            reads a key: down or up); ``None`` draws the probabilities, an unsure key half
            pressed.
        key_onsets: the key-press head reads the keys' strokes too (an onset output per key,
            trained on the roll's onsets with weight ``w_key_onsets``), and with
            ``key_threshold`` a key is drawn down at each stroke and up on the frame before
            it (:func:`~audiovis.networks.keyboard.draw_keys`), so a note repeated on a key
            still down shows as the key rising and falling again.
        freeze_loaded_keys: a key-press head loaded through ``init_from`` (trained in the
            ``khp`` stage) reads the keys as loaded: its detector is not trained further
            (the paint still learns). The joint stage's few steps at the generator's
            learning rate, with a fresh Adam state, moved a well-trained head off the roll
            (held-out note-onset F1 of its keys 0.91 → 0.71 in one run of 72 steps).
        w_keys: weight of the key-press head's binary cross-entropy.
        w_key_changes: extra weight of that cross-entropy on the frames where a key changes
            (its onset, release, and the frame a re-struck key is up): a note's few changing
            frames decide its onset, and among many steady frames they weigh little (0). At 2
            the loop's onset F1 was 0.788 / 0.802 against 0.774 / 0.802 on two seeds
            (bench/results/loop_closed_studio-v2*.json): more re-strikes, more false ones.
        stu_base: width of the STU's UNet; ``stu_depth`` its depth.
        w_coord, w_heatmap, w_coarse, w_l1, w_perceptual, w_adv: loss weights.
        w_change: extra weight of the coarse and final frames' L1 where the real video
            changes from frame to frame (:func:`~audiovis.losses.change_weighted_l1`); 0 is
            the paper's plain L1.
        vgg_weights: a local VGG-19 state dict for the perceptual loss (random VGG otherwise).
        stage: ``joint``, ``khp``, ``cvg`` or ``final`` (see above).
        d_frames: frames of each clip the discriminator judges per step (``None``: all);
            a random subset keeps its cost low while every frame is still reconstructed.
        channels_last: keep the convolution weights (and so the frames through them) in
            channels-last memory: the same numbers, faster (oneDNN on CPU: generation at
            128 px +18%, a training step +12%; tensor cores on GPU).
        init_from: checkpoints to load components from before training, e.g.
            ``{"khp": "runs/apvg_khp/checkpoints/last.ckpt", "cvg": "..."}``; components are
            ``khp``, ``cvg``, ``stu`` and ``discriminator``.
    """

    streams: ClassVar[tuple[str, ...]] = ("audio", "video", "keypoints")
    generator: _Generator

    def __init__(
        self,
        frontend: AudioFrontEnd | None = None,
        image_size: int = 128,
        fps: float = 25.0,
        sample_rate: int = 16000,
        use_khp: bool = True,
        use_cvg: bool = True,
        use_stu: bool = True,
        use_gcn: bool = True,
        use_gru: bool = True,
        use_average: bool = True,
        use_dlt: bool = True,
        khp_condition: Literal["average", "first_pose"] = "average",
        heatmap_radius: float = 2.0,
        cvg_channels: int = 32,
        cvg_scale: int = 1,
        cvg_residual: bool = True,
        cvg_anchor: Literal["previous", "first"] = "previous",
        warp_sigma: float = 0.0,
        key_presses: bool = False,
        key_head: Literal["dense", "pitch"] = "dense",
        key_threshold: float | None = None,
        key_onsets: bool = False,
        freeze_loaded_keys: bool = False,
        stu_base: int = 16,
        stu_depth: int = 4,
        w_coord: float = 10.0,
        w_heatmap: float = 1.0,
        w_coarse: float = 1.0,
        w_l1: float = 10.0,
        w_perceptual: float = 1.0,
        w_adv: float = 0.05,
        w_change: float = 0.0,
        w_keys: float = 1.0,
        w_key_changes: float = 0.0,
        w_key_onsets: float = 1.0,
        vgg_weights: str | None = None,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 1,
        gradient_clip: float | None = 10.0,
        stage: Literal["joint", "khp", "cvg", "final"] = "joint",
        init_from: dict[str, str] | None = None,
        d_frames: int | None = 4,
        channels_last: bool = True,
    ) -> None:
        super().__init__(generator_optimizer, discriminator_optimizer, generator_scheduler,
                         discriminator_scheduler, n_critic, gradient_clip)  # fmt: skip
        # injected modules and factories are kept as objects; LightningCLI records their YAML
        self.save_hyperparameters(ignore=["frontend", "generator_optimizer",
                                          "discriminator_optimizer", "generator_scheduler",
                                          "discriminator_scheduler"])  # fmt: skip
        needs = {"khp": use_khp, "cvg": use_cvg, "final": use_stu}
        if not needs.get(stage, True):
            raise AudiovisError(f"APVG: stage {stage!r} trains a component switched off here")
        unknown = sorted(set(init_from or {}) - set(COMPONENTS))
        if unknown:
            raise AudiovisError(f"APVG.init_from: unknown components {unknown}; "
                                f"known: {list(COMPONENTS)}")  # fmt: skip
        self.stage, self.d_frames = stage, d_frames
        self.init_from = dict(init_from or {})
        self._fakes: dict[str, Any] | None = None
        self.frontend = frontend or CQT(sample_rate, hop_length=256, n_bins=84)
        feats = self.frontend.num_features
        self.image_size, self.fps, self.sample_rate = image_size, fps, sample_rate
        if khp_condition not in ("average", "first_pose"):
            raise AudiovisError(f"APVG.khp_condition: {khp_condition!r}; "
                                "known: 'average', 'first_pose'")  # fmt: skip
        self.khp_condition = khp_condition
        if warp_sigma < 0:
            raise AudiovisError(f"APVG.warp_sigma: {warp_sigma}; 0 (off) or a positive "
                                "fraction of the frame side")  # fmt: skip
        self.warp_sigma = warp_sigma
        if cvg_scale < 1 or cvg_scale & (cvg_scale - 1) or image_size // cvg_scale < 32:
            raise AudiovisError(f"APVG.cvg_scale: {cvg_scale}; a power of two leaving the "
                                f"coarse stage 32 px or more of {image_size}")  # fmt: skip
        khp = KeypointPredictorNet(feats, NUM_KEYPOINTS, use_average=use_average,
                                   residual=khp_condition == "first_pose") \
            if use_khp else None  # fmt: skip
        cvg = CoarseVideoGeneratorNet(feats, image_size, channels=cvg_channels, scale=cvg_scale,
                                      residual=cvg_residual, anchor=cvg_anchor) \
            if use_cvg else None  # fmt: skip
        stu = StructuredTemporalUNet(feats, base=stu_base, depth=stu_depth, use_gru=use_gru,
                                     use_gcn=use_gcn, heatmap_channels=3 if key_presses else 1) \
            if use_stu else None  # fmt: skip
        keys = KeyPressNet(feats, first_key=self._first_key(key_head), onsets=key_onsets) \
            if key_presses else None  # fmt: skip
        self.generator = _Generator(khp, cvg, stu, keys)
        if key_presses:  # the key-press head learns from the piano roll
            self.streams = (*APVG.streams, "roll")  # type: ignore[misc]  # per instance
        self.discriminator = AudioVideoDiscriminator(feats, image_size=image_size)
        self.vgg = VGG19Features(vgg_weights) if w_perceptual > 0 else None
        if channels_last:  # the frames follow the weights' layout through every convolution
            for module in (self.generator, self.discriminator, self.vgg):
                if module is not None:
                    module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # the instrument condition and the first frame of generation, from the training split
        self.use_dlt, self.heatmap_radius = use_dlt, heatmap_radius
        self.weights = {
            "coord": w_coord,
            "heatmap": w_heatmap,
            "coarse": w_coarse,
            "l1": w_l1,
            "perceptual": w_perceptual,
            "adv": w_adv,
            "keys": w_keys,
            "key_onsets": w_key_onsets,
        }
        self.w_change, self.w_key_changes = w_change, w_key_changes
        if w_key_changes < 0:
            raise AudiovisError(f"APVG.w_key_changes: {w_key_changes}; an extra weight >= 0")
        if w_key_onsets < 0:
            raise AudiovisError(f"APVG.w_key_onsets: {w_key_onsets}; a loss weight >= 0")
        if key_threshold is not None and not 0.0 < key_threshold < 1.0:
            raise AudiovisError(f"APVG.key_threshold: {key_threshold}; a probability in (0, 1) "
                                "or null")  # fmt: skip
        self.key_threshold = key_threshold
        self.freeze_loaded_keys = freeze_loaded_keys
        self.average_keypoints: Tensor
        self.reference_keypoints: Tensor
        self.reference_frame: Tensor
        self.reference_keys: Tensor
        self.initialised: Tensor
        self.register_buffer("average_keypoints", torch.full((NUM_KEYPOINTS, 3), 0.5))
        self.register_buffer("reference_keypoints", torch.full((NUM_KEYPOINTS, 3), 0.5))
        self.register_buffer("reference_frame", torch.zeros(3, image_size, image_size))
        # the piano keys down in the reference frame (its roll row; none without a roll)
        self.register_buffer("reference_keys", torch.zeros(NUM_KEYS))
        self.register_buffer("initialised", torch.tensor(False))
        self.val_frames, self.test_frames = FrameMetrics("val/"), FrameMetrics("test/")
        self.val_keypoints, self.test_keypoints = KeypointDistance(), KeypointDistance()
        # frame-level F1 of the key-press head's thresholded keys against the roll
        self.val_keys, self.test_keys = (MultilabelF1Score(NUM_KEYS, average="micro")
                                         for _ in range(2))  # fmt: skip
        for component, path in (init_from or {}).items():
            self.load_component(component, path)

    def _first_key(self, key_head: str) -> int | None:
        """The piano key (A0 = 0) of the front-end's first bin, for the ``pitch`` head."""
        if key_head == "dense":
            return None
        if key_head != "pitch":
            raise AudiovisError(f"APVG.key_head: {key_head!r}; known: 'dense', 'pitch'")
        frontend = self.frontend
        if not isinstance(frontend, CQT) or frontend.bins_per_octave != 12:
            raise AudiovisError("APVG.key_head: 'pitch' needs a CQT front-end at 12 bins per "
                                f"octave (one bin per key), not {frontend.spec()}")  # fmt: skip
        midi = frontend.first_midi()
        if abs(midi - round(midi)) > 0.1:
            raise AudiovisError(f"APVG.key_head: 'pitch' needs the CQT's fmin on a semitone; "
                                f"{frontend.fmin} Hz is MIDI {midi:.2f}")  # fmt: skip
        return round(midi) - LOWEST_PITCH

    def load_component(self, component: str, path: str | Path) -> None:
        """Load one component's weights (and the KHP's average pose) from a checkpoint.

        Raises:
            FileProblem: the file is missing, not a checkpoint, or holds no fitting weights.
        """
        path = Path(path).expanduser()
        ckpt = read_checkpoint(path, "missing (APVG.init_from)")
        weights = ckpt.get("state_dict", ckpt)
        prefix = COMPONENTS[component]
        part = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        target = getattr(self.generator, component, None) if component != "discriminator" \
            else self.discriminator  # fmt: skip
        if target is None:
            raise AudiovisError(f"APVG.init_from: {component} is switched off in this model")
        if not part:
            raise FileProblem(path, f"holds no APVG {component} weights ({prefix}*)")
        try:
            target.load_state_dict(part)
        except RuntimeError as err:
            first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            hint = "; key_head and key_onsets must be the checkpoint's" if component == "keys" \
                else ""  # fmt: skip
            raise FileProblem(path, f"{component} weights do not fit this model ({first}{hint})") \
                from None  # fmt: skip
        if component in ("khp", "cvg"):
            for name in ("average_keypoints", "reference_keypoints", "reference_frame",
                         "reference_keys", "initialised"):  # fmt: skip
                if name in weights and weights[name].shape == getattr(self, name).shape:
                    getattr(self, name).copy_(weights[name])
        rank_zero_info(f"APVG: {component} loaded from {path}")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # checkpoints from before the reference pose was kept: the average stands in
        state = checkpoint.get("state_dict", {})
        if "average_keypoints" in state:
            state.setdefault("reference_keypoints", state["average_keypoints"].clone())
            # from before the reference frame's keys were kept: none down
            state.setdefault("reference_keys", torch.zeros(NUM_KEYS))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the front-end is injected, so not among the hyperparameters: keep its spec apart
        checkpoint["audiovis_frontend"] = self.frontend.spec()

    # ------------------------------------------------------------------------------ set-up

    def on_fit_start(self) -> None:
        if self.vgg is not None:
            rank_zero_info(f"APVG: perceptual loss on VGG-19 features ({self.vgg.source} "
                           "weights)")  # fmt: skip
        if bool(self.initialised):
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        dataset = getattr(datamodule, "datasets", {}).get("train")
        if dataset is None:
            return
        keypoints, frames, first_pose = [], [], None
        for files in dataset.performances:
            poses = np.load(files.arrays["keypoints"], mmap_mode="r")
            keypoints.append(poses[::5])
            if first_pose is None:  # the reference: the first performance's first frame
                first_pose = np.array(poses[0])
                if "roll" in files.arrays:
                    roll = np.load(files.arrays["roll"], mmap_mode="r")
                    self.reference_keys.copy_(torch.from_numpy(np.array(roll[0])).float())
            frames.append(np.array(np.load(files.arrays["video"], mmap_mode="r")[0]))
        kp = torch.from_numpy(np.concatenate(keypoints)).float()  # (N, K, 3)
        conf = kp[..., 2:3]
        mean_xy = (kp[..., :2] * conf).sum(0) / conf.sum(0).clamp(min=1e-6)
        self.average_keypoints.copy_(torch.cat([mean_xy, conf.mean(0)], -1))
        first = torch.from_numpy(frames[0]).permute(2, 0, 1).float() / 127.5 - 1
        self.reference_frame.copy_(first)
        assert first_pose is not None
        self.reference_keypoints.copy_(torch.from_numpy(first_pose).float())
        if self.generator.khp is not None and "khp" not in self.init_from:
            self.generator.khp.start_at(self.average_keypoints)
        if self.generator.keys is not None and "keys" not in self.init_from:
            self.fit_key_colours(dataset.performances)
        self.initialised.fill_(True)

    @torch.no_grad()
    def fit_key_colours(self, performances: Any, frames_per_video: int = 100) -> None:
        """Start the key-press paint at the colour change pressed keys make in the videos.

        The paint maps the press map's change from the first frame (white, black) linearly to
        a colour change; its least-squares fit on sampled frames of each performance, pixels
        pooled (frame minus the performance's first frame against the true roll's press map
        minus the first frame's), so the generator draws a pressed key from its first step
        rather than learning the colour through the frame losses. Only the keys' back part
        (:data:`KEY_BACK`) counts: the hands cover the front of the keys they press.
        Performances without a roll are skipped.
        """
        keys = self.generator.keys
        assert keys is not None
        gram, cross, used = torch.zeros(2, 2), torch.zeros(2, 3), 0
        for files in performances:
            if "roll" not in files.arrays:
                continue
            video = np.load(files.arrays["video"], mmap_mode="r")
            roll = np.load(files.arrays["roll"], mmap_mode="r")
            n = min(len(video), len(roll))
            index = np.unique(np.linspace(0, n - 1, min(n, frames_per_video)).astype(int))
            frames = torch.from_numpy(np.array(video[index])).permute(0, 3, 1, 2)
            frames = frames.float() / 127.5 - 1  # (N, 3, H, W); index[0] == 0
            if frames.shape[-1] != self.image_size:
                continue
            try:
                box = self.locate_keys(frames[:1])
            except AudiovisError:
                raise FileProblem(files.arrays["video"], "its first frame shows no piano "
                                  "keyboard to fit the key colours on") from None  # fmt: skip
            probs = torch.from_numpy(np.array(roll[index])).float()[None]
            presses = render_presses(probs, key_rects(box), self.image_size)[0]
            # the keys' back part, where the fingers pressing them never reach
            x, y, w, h = (box[0, :4] * self.image_size).tolist()
            back = slice(int(y), int(y + KEY_BACK * h) + 1), slice(int(x), int(x + w) + 1)
            d = (presses - presses[:1])[..., back[0], back[1]].transpose(0, 1).flatten(1)
            v = (frames - frames[:1])[..., back[0], back[1]].transpose(0, 1).flatten(1)
            gram += d @ d.T
            cross += d @ v.T
            used += 1
        if not used:
            rank_zero_info("APVG.key_presses: no training video with a roll at this size; "
                           "the key paint starts at zero")  # fmt: skip
            return
        colour = torch.linalg.solve(gram + 1e-3 * torch.eye(2), cross)  # (2, 3)
        keys.colour.weight.copy_(colour.T[..., None, None].to(keys.colour.weight))
        rgb = [[round(c, 3) for c in row] for row in colour.tolist()]
        rank_zero_info(
            f"APVG.key_presses: key paint fitted on {used} performances "
            f"(RGB change of a pressed white key {rgb[0]}, black key {rgb[1]})"
        )

    # ----------------------------------------------------------------------------- forward

    def forward(
        self,
        audio: Tensor,
        num_frames: int,
        first_frame: Tensor | None = None,
        state: dict[str, Any] | None = None,
        first_pose: Tensor | None = None,
        first_keys: Tensor | None = None,
        margin: int = 0,
    ) -> dict[str, Any]:
        """Generate ``num_frames`` frames from a window of audio.

        Args:
            audio: (B, S) waveform of the window, with ``margin`` video frames of the music
                before and after it when ``margin`` > 0.
            num_frames: T.
            first_frame: (B, 3, H, W) the frame before the window (the reference frame when
                ``None`` and no state).
            state: what the previous window returned, to chain windows.
            first_pose: (B, K, 2+) the performer's keypoints at ``first_frame``, the KHP's
                condition with ``khp_condition="first_pose"`` (the reference frame's pose
                when ``None`` and no state).
            first_keys: (B, 88) the piano keys down in ``first_frame`` (the reference frame's
                when ``None`` and no first frame; else the key-press head's first frame):
                the key paint draws the change from them.
            margin: frames of context on each side of the window in ``audio``: the features
                are computed over it all and cut to the window, so that windows chained
                through a piece see the music across their edges (a 16-frame window's edge
                effects cost the key-press head 0.05 of note-onset F1 on the studio's
                held-out pieces).

        Returns:
            dict with ``keypoints`` (B, T, K, 2), ``heatmap`` (B, T, 1, H, W), ``coarse`` and
            ``frames`` (B, T, 3, H, W) in [-1, 1], ``audio_feat`` (B, T, F) and ``state``;
            with the key-press head also ``key_logits`` (B, T, 88), ``presses`` (B, T, 2, H,
            W) and, with ``key_onsets``, ``onset_logits`` (B, T, 88).
        """
        b = audio.shape[0]
        state = state or {}
        feats = self.frontend(audio)  # (B, F, N)
        span = num_frames + 2 * margin
        context = frames_to_video_rate(feats, span)  # (B, T + 2 margin, F)
        audio_feat = context[:, margin : margin + num_frames]  # (B, T, F)
        if margin:
            n = feats.shape[-1]
            feats = feats[..., round(n * margin / span) : round(n * (margin + num_frames) / span)]
        g = self.generator
        average = self.average_keypoints[None, :, :2].expand(b, -1, -1)
        if g.khp is not None:
            condition = self._condition(b, first_pose, state)
            keypoints = g.khp(feats, num_frames, condition)  # (B, T, K, 2)
        else:
            keypoints = average[:, None].expand(-1, num_frames, -1, -1)
        points = self._points(keypoints)
        heatmap = self._heatmap(keypoints)
        if first_frame is None:
            first_frame = self.reference_frame[None].expand(b, -1, -1, -1)
            if first_keys is None and "first_presses" not in state:
                first_keys = self.reference_keys[None].expand(b, -1)
        if g.cvg is not None:
            coarse, cvg_state = g.cvg(feats, num_frames, first_frame if "cvg" not in state
                                      else None, state=state.get("cvg"))  # fmt: skip
        else:
            coarse, cvg_state = first_frame[:, None].expand(-1, num_frames, -1, -1, -1), None
        anchor = state.get("anchor")
        if anchor is None:
            anchor = self.reference_keypoints[None, :, :2].expand(b, -1, -1) \
                if first_pose is None else first_pose[..., :2]  # fmt: skip
        if g.khp is not None and self.warp_sigma > 0:
            coarse = self._warp(coarse, anchor, points.detach())
        maps, extra = heatmap, {}
        if g.keys is not None:
            keyboard = state.get("keyboard")
            if keyboard is None:
                keyboard = self.locate_keys(first_frame)
            logits, probs = self.drawn_keys(context)  # the strokes in the margins count too
            window = slice(margin, margin + num_frames)
            key_logits, probs = logits.down[:, window], probs[:, window]
            presses = render_presses(probs, key_rects(keyboard), self.image_size)
            maps = torch.cat([heatmap, presses.to(heatmap.dtype)], 2)
            # the keys' colour change from the generation's first frame, whose own pressed
            # keys are in its pixels already (a key held from there on is not painted twice,
            # one it shows down and the music releases is painted up)
            first_presses = state.get("first_presses")
            if first_presses is None and first_keys is not None:
                first_presses = render_presses(first_keys[:, None].float(), key_rects(keyboard),
                                               self.image_size)  # fmt: skip
            elif first_presses is None:
                first_presses = presses[:, :1]
            change = g.keys.paint(presses - first_presses)
            coarse = (coarse.float() + change).clamp(-1, 1).to(coarse.dtype)
            extra = {"key_logits": key_logits, "presses": presses}
            if logits.onset is not None:
                extra["onset_logits"] = logits.onset[:, window]
        if g.stu is not None:
            frames, stu_state = g.stu(coarse, maps, points, audio_feat, state.get("stu"))
        else:
            frames, stu_state = coarse, None
        return {
            "keypoints": keypoints,
            "heatmap": heatmap,
            "coarse": coarse,
            "frames": frames,
            "audio_feat": audio_feat,
            **extra,
            "state": {
                "cvg": cvg_state,
                "stu": stu_state,
                "pose": keypoints[:, -1].detach(),
                "anchor": anchor,
                "keyboard": keyboard if g.keys is not None else None,
                "first_presses": first_presses if g.keys is not None else None,
            },
        }

    def locate_keys(self, frames: Tensor) -> Tensor:
        """(B, 40) the box (x, y, w, h) of the piano's 88 keys in each of the frames
        (B, 3, H, W) in [-1, 1] and its black keys' centres
        (:func:`~audiovis.models.audeo.locate_key_columns`), for the key-press map.

        Raises:
            AudiovisError: a frame shows no piano keyboard.
        """
        from audiovis.models.audeo import locate_key_columns  # Audeo's keyboard finder

        boxes = []
        for i, frame in enumerate(frames):
            try:
                boxes.append(locate_key_columns(frame[None], value_range="signed"))
            except AudiovisError as err:
                raise AudiovisError(
                    f"APVG.key_presses: frame {i} of the batch shows no piano "
                    f"keyboard to draw the keys on ({err})"
                ) from None
        return torch.from_numpy(np.stack(boxes)).float().to(frames.device)

    def _condition(self, batch: int, first_pose: Tensor | None,
                   state: dict[str, Any]) -> Tensor:  # fmt: skip
        """The KHP's pose condition (B, K, 2): the average pose, or with ``first_pose``
        the previous window's last pose, the given first pose, or the reference frame's."""
        if self.khp_condition == "average":
            pose = self.average_keypoints
        elif state.get("pose") is not None:
            pose = state["pose"]
        elif first_pose is not None:
            pose = first_pose
        else:
            pose = self.reference_keypoints
        return pose[..., :2].expand(batch, -1, -1)

    def drawn_keys(self, audio_feat: Tensor) -> tuple[KeyLogits, Tensor]:
        """The key-press head on audio features at video rate (B, T, F): its logits, and the
        keys it draws (B, T, 88): down where the probability reaches ``key_threshold`` and
        around the strokes (:func:`~audiovis.networks.keyboard.draw_keys`), or the
        probabilities themselves without a threshold."""
        keys = self.generator.keys
        if keys is None:
            raise AudiovisError("APVG.drawn_keys: this model has no key-press head "
                                "(key_presses: false)")  # fmt: skip
        logits = keys(audio_feat.float())
        # the head learns from the roll alone: the frame losses reach the paint and the STU,
        # not the key logits (through them they pulled the head off the roll: its held-out
        # frame F1 fell from 0.80 to 0.75 in a joint stage)
        probs = torch.sigmoid(logits.down.detach())
        if self.key_threshold is not None:
            onset = None if logits.onset is None else torch.sigmoid(logits.onset.detach())
            probs = draw_keys(probs, onset, self.key_threshold)
        return logits, probs

    @torch.no_grad()
    def paint_keys(self, frame: Tensor, keys: Tensor, frame_keys: Tensor) -> Tensor:
        """A still frame (B, 3, H, W) with the keys ``keys`` (B, T, 88) down, as the key
        paint draws them (no STU, no motion): the frame plus the paint of the press map's
        change from ``frame_keys`` (B, 88), the keys the frame shows down. → (B, T, 3, H, W)."""
        head = self.generator.keys
        if head is None:
            raise AudiovisError("APVG.paint_keys: this model has no key-press head "
                                "(key_presses: false)")  # fmt: skip
        rects = key_rects(self.locate_keys(frame))
        presses = render_presses(keys.float(), rects, self.image_size)
        change = presses - render_presses(frame_keys[:, None].float(), rects, self.image_size)
        return (frame[:, None].float() + head.paint(change)).clamp(-1, 1)

    def _points(self, keypoints: Tensor) -> Tensor:
        """(B, T, K, 2) → (B, T, K, 3) with the joints the instrument's performers show."""
        b, t = keypoints.shape[:2]
        conf = self.average_keypoints[:, 2:3].expand(b, t, -1, -1)
        return torch.cat([keypoints, (conf > 0.05).to(keypoints.dtype)], -1)

    def _warp(self, coarse: Tensor, anchor: Tensor, points: Tensor) -> Tensor:
        """Carry the coarse frames' pixels (drawn in the ``anchor`` pose, (B, K, 2)) with the
        keypoints to ``points`` (B, T, K, 3), in float32."""
        t = coarse.shape[1]
        source = torch.cat([anchor.float(), points[:, 0, :, 2:]], -1)[:, None]
        flow = keypoint_flow(source.expand(-1, t, -1, -1), points[..., :2].float(),
                             self.image_size, self.warp_sigma)  # fmt: skip
        warped = warp(coarse.flatten(0, 1).float(), flow.flatten(0, 1))
        return warped.view(coarse.shape).to(coarse.dtype)

    def _heatmap(self, keypoints: Tensor) -> Tensor:
        points = self._points(keypoints)
        if not self.use_dlt:
            points = points.detach()  # the heatmap no longer trains the keypoints
        return dlt_heatmaps(points, self.image_size, radius=self.heatmap_radius, clamp=True)

    def _generate(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        video, keypoints, roll = batch["video"], batch.get("keypoints"), batch.get("roll")
        return self(batch["audio"], video.shape[1], video[:, 0],
                    first_pose=None if keypoints is None else keypoints[:, 0],
                    first_keys=None if roll is None else roll[:, 0])  # fmt: skip

    # --------------------------------------------------------------------------- stages

    def trained_components(self) -> list[str]:
        """The components this stage optimises."""
        g = self.generator
        present = [c for c in ("khp", "cvg", "stu", "keys") if getattr(g, c) is not None]
        stages = {"khp": ["khp", "keys"], "cvg": ["cvg"], "final": ["stu"]}
        return stages.get(self.stage, present)

    def configure_optimizers(self) -> Any:
        trained = self.trained_components()
        for name in ("khp", "cvg", "stu", "keys"):
            module = getattr(self.generator, name)
            if module is not None:
                module.requires_grad_(name in trained)
        keys = self.generator.keys
        if isinstance(keys, KeyPressNet) and self.freeze_loaded_keys and "keys" in self.init_from:
            keys.detector_requires_grad_(False)
        return super().configure_optimizers()

    def _stage_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The supervised loss of the ``khp`` or ``cvg`` stage (no discriminator)."""
        video, g = batch["video"], self.generator
        feats = self.frontend(batch["audio"])
        if self.stage == "khp":
            assert g.khp is not None
            first = batch["keypoints"][:, 0]
            keypoints = g.khp(feats, video.shape[1], self._condition(len(video), first, {}))
            out = {"keypoints": keypoints, "heatmap": self._heatmap(keypoints)}
            losses = self.keypoint_losses(out, batch)
            if g.keys is not None:
                audio_feat = frames_to_video_rate(feats, video.shape[1]).float()
                logits = g.keys(audio_feat)
                losses |= self.key_losses({"key_logits": logits.down,
                                           "onset_logits": logits.onset}, batch)  # fmt: skip
        else:
            assert g.cvg is not None
            # teacher forcing: each frame decodes from the real previous one, in one pass
            coarse, _ = g.cvg(feats, video.shape[1], video[:, 0], teacher_frames=video)
            losses = {"coarse": change_weighted_l1(coarse, video, self.w_change)}
        total = sum(self.weights[k] * v for k, v in losses.items())
        return total, {f"train/{k}": v.detach() for k, v in losses.items()}  # type: ignore[return-value]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if self.stage in ("joint", "final"):
            # one generator pass serves both steps; the discriminator step sees it detached
            self._fakes = self._generate(batch)
            try:
                return super().training_step(batch, batch_idx)
            finally:
                self._fakes = None
        opt_g, _ = self.optimizers()  # type: ignore[misc,attr-defined]
        loss, logs = self._stage_loss(batch)
        self._optimize(opt_g, loss)
        self.log_dict({"train/g_loss": loss.detach(), **logs}, prog_bar=True,
                      batch_size=len(batch["video"]))  # fmt: skip
        return None

    # ------------------------------------------------------------------------------ losses

    def _judged(self, *clips: Tensor) -> list[Tensor]:
        """The frames (and audio features) the discriminator judges: ``d_frames`` random time
        steps of every clip, the same steps for all inputs, flattened into the batch."""
        t = clips[0].shape[1]
        if self.d_frames is not None and self.d_frames < t:
            steps = torch.randperm(t, device=clips[0].device)[: self.d_frames]
            clips = tuple(c[:, steps] for c in clips)
        return [c.flatten(0, 1) for c in clips]

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        out = self._fakes
        if out is None:
            with torch.no_grad():
                out = self._generate(batch)
        real, fake, audio_feat = self._judged(batch["video"], out["frames"].detach(),
                                              out["audio_feat"].detach())  # fmt: skip
        scores = self.discriminator(torch.cat([real, fake]), torch.cat([audio_feat, audio_feat]))
        real_score, fake_score = scores.chunk(2)
        return hinge_discriminator_loss(real_score, fake_score), {}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        out = self._fakes if self._fakes is not None else self._generate(batch)
        losses = self.reconstruction_losses(out, batch)
        judged, audio_feat = self._judged(out["frames"], out["audio_feat"])
        losses["adv"] = hinge_generator_loss(self.discriminator(judged, audio_feat))
        if self.vgg is not None:  # on d_frames frames of each clip too: VGG-19 is costly
            fake, real = self._judged(out["frames"], batch["video"])
            losses["perceptual"] = perceptual_loss(self.vgg, fake, real)
        total = sum(self.weights[k] * v for k, v in losses.items())
        return total, {f"train/{k}": v.detach() for k, v in losses.items()}  # type: ignore[return-value]

    def keypoint_losses(self, out: dict[str, Any], batch: dict[str, Tensor]
                        ) -> dict[str, Tensor]:  # fmt: skip
        """Keypoint L2 (confidence-weighted) and heatmap L1 through the DLT."""
        true = batch["keypoints"]
        conf = true[..., 2:3]
        coord = ((out["keypoints"] - true[..., :2]) ** 2 * conf).sum() / conf.sum().clamp(min=1)
        true_heat = dlt_heatmaps(true, self.image_size, radius=self.heatmap_radius,
                                 clamp=True)  # fmt: skip
        return {"coord": coord, "heatmap": F.l1_loss(out["heatmap"], true_heat)}

    def reconstruction_losses(self, out: dict[str, Any], batch: dict[str, Tensor]
                              ) -> dict[str, Tensor]:  # fmt: skip
        """Keypoint L2 (confidence-weighted), heatmap L1, coarse and final frame L1.

        In the ``final`` stage only the final frames' L1 counts: the rest is frozen.
        """
        video = batch["video"]
        l1 = change_weighted_l1(out["frames"], video, self.w_change)
        if self.stage == "final":
            return {"l1": l1}
        coarse = change_weighted_l1(out["coarse"], video, self.w_change)
        return {**self.keypoint_losses(out, batch), **self.key_losses(out, batch),
                "coarse": coarse, "l1": l1}  # fmt: skip

    def key_losses(self, out: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The key-press head's binary cross-entropy against the piano roll (none without
        the head)."""
        if "key_logits" not in out:
            return {}
        if "roll" not in batch:
            raise AudiovisError("APVG.key_presses: the batch holds no piano roll "
                                "(the data has no 'roll' stream)")  # fmt: skip
        target = batch["roll"].to(out["key_logits"].device).float()  # (B, T, 88)
        weight = None
        if self.w_key_changes:
            change = (target[:, 1:] != target[:, :-1]).float()  # between frames t and t + 1
            borders = (F.pad(change, (0, 0, 1, 0)) + F.pad(change, (0, 0, 0, 1))).clamp(max=1)
            weight = 1 + self.w_key_changes * borders  # (B, T, 88)
            weight = weight / weight.mean()
        bce = F.binary_cross_entropy_with_logits(out["key_logits"].float(), target, weight)
        losses = {"keys": bce}
        if out.get("onset_logits") is not None:  # a clip's first frame has no stroke to tell
            onset = out["onset_logits"][:, 1:].float()
            losses["key_onsets"] = F.binary_cross_entropy_with_logits(onset, onset_targets(target))
        return losses

    # ------------------------------------------------------------------------- evaluation

    def _evaluate(self, batch: dict[str, Tensor], split: str) -> None:
        """Log ``{split}/loss`` (the trained stage's L1 or keypoint distance), PSNR, SSIM and
        the mean keypoint distance (APVG's Tables I and II)."""
        out = self._generate(batch)
        # frame 0 is generated from itself (the clip's first frame is the condition): score
        # the frames after it
        fake, real = out["frames"][:, 1:].float(), batch["video"][:, 1:]
        frames = self.val_frames if split == "val" else self.test_frames
        keypoints = self.val_keypoints if split == "val" else self.test_keypoints
        frames.update(fake, real)
        keypoints.update(out["keypoints"].float(), batch["keypoints"])
        if self.stage == "khp":
            true = batch["keypoints"]
            conf = true[..., 2]
            loss = ((out["keypoints"].float() - true[..., :2]).norm(dim=-1) * conf).sum() \
                / conf.sum().clamp(min=1)  # fmt: skip
        elif self.stage == "cvg":
            loss = F.l1_loss(out["coarse"][:, 1:].float(), real)
        else:
            loss = F.l1_loss(fake, real)
        n = len(real)
        self.log(f"{split}/loss", loss, prog_bar=True, sync_dist=True, batch_size=n)
        self.log_dict(frames, prog_bar=True, batch_size=n)  # type: ignore[arg-type]
        self.log(f"{split}/keypoint_distance", keypoints, prog_bar=True, batch_size=n)
        if "key_logits" in out and "roll" in batch:
            keys = self.val_keys if split == "val" else self.test_keys
            keys.update(torch.sigmoid(out["key_logits"].float()).flatten(0, 1),
                        batch["roll"].flatten(0, 1).round().long())  # fmt: skip
            self.log(f"{split}/key_f1", keys, prog_bar=True, batch_size=n)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def generate(self, audio: Tensor, window: int = 16, margin: int = 8,
                 progress: Callable[[int], None] | None = None, first_frame: Tensor | None = None,
                 first_keys: Tensor | None = None) -> dict[str, Tensor]:  # fmt: skip
        """Frames for a whole waveform (S,), window by window with the state carried, each
        window's features computed with ``margin`` frames of the music around it (silence
        beyond the piece); ``progress`` is told the frames of each window as it is done.
        ``first_frame`` (3, H, W) in [-1, 1] is the scene to perform in (default the reference
        frame) and ``first_keys`` (88,) the piano keys down in it (see :meth:`forward`)."""
        if window < 1 or margin < 0:
            raise AudiovisError(f"APVG.generate: window {window} (>= 1 frame) and margin "
                                f"{margin} (>= 0 frames)")  # fmt: skip
        size = self.image_size
        if first_frame is not None and tuple(first_frame.shape) != (3, size, size):
            raise AudiovisError(f"APVG.generate: first_frame of shape {tuple(first_frame.shape)}; "
                                f"one frame (3, {size}, {size}) in [-1, 1]")  # fmt: skip
        if first_keys is not None and tuple(first_keys.shape) != (NUM_KEYS,):
            raise AudiovisError(f"APVG.generate: first_keys of shape {tuple(first_keys.shape)}; "
                                f"({NUM_KEYS},), the keys down in the first frame")  # fmt: skip
        per_frame = self.sample_rate / self.fps
        total = int(len(audio) / per_frame)
        pad = round(margin * per_frame)
        padded = F.pad(audio, (pad, pad + round(window * per_frame)))
        frames, keypoints, state = [], [], None
        for start in range(0, total, window):
            t = min(window, total - start)
            begin = round(start * per_frame)  # in ``padded``: margin frames before the window
            chunk = padded[begin : begin + round((t + 2 * margin) * per_frame)]
            if state is None and first_frame is not None:
                keys = None if first_keys is None else first_keys[None]
                out = self(chunk[None], t, first_frame=first_frame[None], first_keys=keys,
                           margin=margin)  # fmt: skip
            else:
                out = self(chunk[None], t, state=state, margin=margin)
            state = out["state"]
            frames.append(out["frames"][0])
            keypoints.append(out["keypoints"][0])
            if progress is not None:
                progress(t)
        return {"frames": torch.cat(frames), "keypoints": torch.cat(keypoints)}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[MediaSample]:
        samples = []
        names = batch.get("name") or [
            f"clip{batch_idx:04d}_{i}" for i in range(len(batch["audio"]))
        ]
        for name, audio in zip(names, batch["audio"], strict=True):
            out = self.generate(audio.float())
            video = to_uint8(out["frames"])
            kp = out["keypoints"].float().cpu().numpy()
            conf = self.average_keypoints[:, 2:3].cpu().numpy()
            points = np.concatenate([kp, np.broadcast_to(conf, kp.shape[:-1] + (1,))], -1)
            skeletons = np.stack([draw_skeleton(f, p) for f, p in zip(video, points, strict=True)])
            samples.append(MediaSample(
                name=str(name), fps=self.fps, video=hstack_videos(video, skeletons),
                audio=audio.float().cpu().numpy(), sample_rate=self.sample_rate,
                arrays={"keypoints": points.astype(np.float32)},
            ))  # fmt: skip
        return samples

    def media_samples(self, batch: dict[str, Tensor]) -> list[MediaSample]:
        out = self._generate({k: v[:2] for k, v in batch.items()})
        return [MediaSample(name=f"sample{i}", fps=self.fps,
                            video=hstack_videos(to_uint8(out["frames"][i]),
                                                to_uint8(batch["video"][i])),
                            audio=batch["audio"][i].float().cpu().numpy(),
                            sample_rate=self.sample_rate)
                for i in range(len(out["frames"]))]  # fmt: skip


def load_apvg(path: str | Path) -> APVG:
    """A trained APVG from its checkpoint (front-end included), in eval mode, or one clear
    error: a missing or unreadable file, or a checkpoint of another model."""
    path = Path(path).expanduser()
    ckpt = read_checkpoint(path, "no such APVG checkpoint")
    state = ckpt.get("state_dict", {})
    hparams = dict(ckpt.get("hyper_parameters", {}))
    if not any(k.startswith("generator.") for k in state) or "average_keypoints" not in state:
        raise FileProblem(path, "is not an APVG checkpoint")
    # the weights come from this file: stage checkpoints and VGG files are not reloaded
    hparams.pop("init_from", None)
    hparams.pop("vgg_weights", None)
    names = set(inspect.signature(APVG.__init__).parameters) - {"self", "frontend"}
    spec = ckpt.get("audiovis_frontend") or hparams.get("frontend")
    spec = spec if isinstance(spec, dict) else None
    try:
        frontend = AudioFrontEnd.from_spec(spec) if spec else None
        model = APVG(frontend, **{k: v for k, v in hparams.items() if k in names})
        model.on_load_checkpoint(ckpt)  # older files: what they lack, filled in
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as err:
        raise FileProblem(path, f"does not fit APVG ({str(err).splitlines()[0]})") from None
    return model.eval()
