"""Audio2Guitarist-GAN networks (Lu, "Audio2Guitarist-GAN"; design from its diagrams only):
stage 1 audio → performer mask and joint heatmaps, stage 2 mask/pose → colour frame (PG2 style).

Conditions are images drawn from keypoints (OpenPose 67-point layout, x, y in [0, 1]):

* joint heatmaps: one tent heatmap per chosen body joint (the diagram's "7 joint heatmaps":
  neck, shoulders, elbows, wrists by default) and one per hand (its 21 points together);
* the instrument region: the original drew one fretboard mask per video by hand; we draw it
  from a reference frame's hands, a band along the line through both hands' centres, extended
  past the fretting hand towards the headstock (the fretboard lies between the hands).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral

from audiovis.audio import CQT, AudioFrontEnd, Chroma, LogMel, frames_to_video_rate
from audiovis.networks.keypoints import dlt_heatmaps
from audiovis.networks.unet import UNet, UpBlock, conv_block
from audiovis.skeleton import LEFT_HAND_OFFSET, NUM_HAND, RIGHT_HAND_OFFSET

# neck, right shoulder/elbow/wrist, left shoulder/elbow/wrist (BODY_25 indices)
DEFAULT_JOINTS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
HANDS: tuple[int, int] = (LEFT_HAND_OFFSET, RIGHT_HAND_OFFSET)


# --------------------------------------------------------------------------- drawn conditions


def joint_heatmaps(
    keypoints: Tensor, size: int, joints: Sequence[int] = DEFAULT_JOINTS, radius: float = 2.0
) -> Tensor:
    """One heatmap per chosen joint, then one per hand (its 21 points summed), in [0, 1].

    Tent heatmaps (the DLT of :func:`audiovis.networks.keypoints.dlt_heatmaps`) weighted by
    the confidence, so unseen joints draw nothing and the maps are differentiable.

    Shape:
        keypoints (..., 67, 3) → (..., len(joints) + 2, size, size)
    """
    idx = torch.as_tensor(list(joints), device=keypoints.device, dtype=torch.long)
    body = dlt_heatmaps(keypoints.index_select(-2, idx), size, radius=radius, per_point=True)
    hands = [
        dlt_heatmaps(keypoints[..., start : start + NUM_HAND, :], size, radius=radius, clamp=True)
        for start in HANDS
    ]  # each (..., 1, H, W)
    return torch.cat([body.clamp(0.0, 1.0), *hands], dim=-3)


def change_region(masks: Sequence[Tensor], margin: int) -> Tensor:
    """Where a frame may differ from its reference: the union of the performer's masks (the
    reference's and the target's) grown by ``margin`` pixels; in a fixed-camera video the rest
    of the frame does not move.

    Shape:
        masks [(N, 1, H, W)] in [0, 1] → (N, 1, H, W) {0, 1}
    """
    union = torch.stack([(m >= 0.5) for m in masks]).any(0).to(masks[0].dtype)
    if margin <= 0:
        return union
    return F.max_pool2d(union, 2 * margin + 1, stride=1, padding=margin)


def pose_points(keypoints: Tensor, joints: Sequence[int] = DEFAULT_JOINTS) -> Tensor:
    """The chosen joints and both hands' centres (their points' mean), x and y.

    Shape:
        keypoints (..., 67, 3) → (..., len(joints) + 2, 2)
    """
    idx = torch.as_tensor(list(joints), device=keypoints.device, dtype=torch.long)
    hands = [keypoints[..., s : s + NUM_HAND, :2].mean(-2, keepdim=True) for s in HANDS]
    return torch.cat([keypoints.index_select(-2, idx)[..., :2], *hands], -2)


def instrument_region(
    keypoints: Tensor, size: int, width: float = 0.07, reach: float = 0.5
) -> Tensor:
    """A band along the line through both hands' centres: where the guitar's neck lies.

    The band runs from the picking hand's centre to ``reach`` × the hands' distance past the
    fretting hand (towards the headstock) and is ``width`` (image fractions) wide, with round
    ends. Hands are weighted by their points' confidence; a hand not seen counts as the other.

    Shape:
        keypoints (..., 67, 3) → (..., 1, size, size) {0, 1}
    """
    centres = []
    for start in HANDS:
        hand = keypoints[..., start : start + NUM_HAND, :]
        conf = hand[..., 2:3]
        centres.append((hand[..., :2] * conf).sum(-2) / conf.sum(-2).clamp(min=1e-6))  # (..., 2)
    seen = [keypoints[..., s : s + NUM_HAND, 2].sum(-1, keepdim=True) > 0 for s in HANDS]
    fretting = torch.where(seen[0], centres[0], centres[1])  # left hand frets (OpenPose left)
    picking = torch.where(seen[1], centres[1], fretting)
    end = fretting + reach * (fretting - picking)
    pix = (torch.arange(size, device=keypoints.device, dtype=keypoints.dtype) + 0.5) / size
    grid = torch.stack(torch.meshgrid(pix, pix, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    a = picking[..., None, None, :]  # (..., 1, 1, 2)
    ab = (end - picking)[..., None, None, :]
    t = ((grid - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)
    nearest = a + t.clamp(0.0, 1.0)[..., None] * ab
    dist = (grid - nearest).norm(dim=-1)  # (..., H, W)
    return (dist <= width / 2).to(keypoints.dtype)[..., None, :, :]


# ------------------------------------------------------------------------------ audio features


def _minmax(x: Tensor) -> Tensor:
    """Scale each clip of (B, F, N) features to [0, 1] (a constant clip, e.g. silence, → 0)."""
    lo = x.amin(dim=(1, 2), keepdim=True)
    span = x.amax(dim=(1, 2), keepdim=True) - lo
    return torch.where(span > 1e-6, (x - lo) / span.clamp(min=1e-6), torch.zeros_like(x))


def _delta(x: Tensor) -> Tensor:
    """Frame-to-frame change of (B, F, N) features, scaled into [0, 1] around 0.5."""
    d = F.pad(x[..., 1:] - x[..., :-1], (1, 0))
    peak = d.abs().amax(dim=(1, 2), keepdim=True).clamp(min=1e-6)
    return 0.5 + 0.5 * d / peak


class GuitaristFeatures(AudioFrontEnd):
    """The original's audio features, stacked: CQT, log-mel and its Δ, chroma and its Δ, and a
    pitch track, each group scaled to [0, 1] per clip.

    The original used CREPE for pitch; with no pitch network installed, the pitch track here
    is the CQT's strongest bin (normalised to [0, 1]) and that bin's strength.

    Args:
        sample_rate: input rate, Hz.
        hop_length: samples between feature frames (all groups share it).
        n_cqt: CQT bins (12 per octave from C1; must stay under the Nyquist frequency).
        n_mels: mel bands.
        n_chroma: pitch classes.
        deltas: add the Δ of log-mel and chroma.
        pitch: add the two pitch-track rows.

    Shape:
        (B, S) → (B, num_features, S // hop_length + 1)
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        hop_length: int = 160,
        n_cqt: int = 84,
        n_mels: int = 64,
        n_chroma: int = 12,
        deltas: bool = True,
        pitch: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.deltas, self.pitch = deltas, pitch
        self.cqt = CQT(sample_rate, hop_length, n_bins=n_cqt)
        self.mel = LogMel(sample_rate, n_fft=1024, hop_length=hop_length, n_mels=n_mels)
        self.chroma = Chroma(sample_rate, n_fft=2048, hop_length=hop_length, n_chroma=n_chroma)
        d = 2 if deltas else 1
        self.num_features = n_cqt + d * (n_mels + n_chroma) + (2 if pitch else 0)

    def forward(self, audio: Tensor) -> Tensor:
        cqt = _minmax(self.cqt(audio))  # (B, n_cqt, N)
        mel = _minmax(self.mel(audio))
        chroma = self.chroma(audio)  # already in [0, 1]
        n = min(cqt.shape[-1], mel.shape[-1], chroma.shape[-1])
        groups = [cqt[..., :n], mel[..., :n], chroma[..., :n]]
        if self.deltas:
            groups += [_delta(mel[..., :n]), _delta(chroma[..., :n])]
        if self.pitch:
            strength, bin_ = groups[0].max(dim=1, keepdim=True)  # (B, 1, N)
            groups += [bin_.to(strength.dtype) / max(1, groups[0].shape[1] - 1), strength]
        return torch.cat(groups, 1)  # (B, F, N)


# ------------------------------------------------------------------------------- stage 1 parts


class SpectrogramEncoder(nn.Module):
    """Spectrogram branch: 1-D convolutions over time, pooled to video rate, an LSTM, a FC.

    The LSTM carries the performance across frames (and across windows through ``state``),
    which keeps consecutive masks coherent.

    Shape:
        feats (B, F, N), num_frames T → (B, T, out_dim), LSTM state
    """

    def __init__(
        self,
        in_features: int,
        channels: int = 128,
        hidden: int = 128,
        out_dim: int = 128,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()

        def sn(layer: nn.Module) -> nn.Module:
            return _spectral(layer) if spectral_norm else layer

        self.conv = nn.Sequential(
            sn(nn.Conv1d(in_features, channels, 5, padding=2)),
            nn.GroupNorm(math.gcd(channels, 8), channels),
            nn.LeakyReLU(0.2),
            sn(nn.Conv1d(channels, channels, 5, padding=2)),
            nn.GroupNorm(math.gcd(channels, 8), channels),
            nn.LeakyReLU(0.2),
        )
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.fc = sn(nn.Linear(hidden, out_dim))

    def forward(
        self, feats: Tensor, num_frames: int, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x = self.conv(feats.float())  # (B, C, N)
        x = frames_to_video_rate(x, num_frames)  # (B, T, C)
        x, state = self.lstm(x, state)  # (B, T, hidden)
        return self.fc(x), state


class ConditionEncoder(nn.Module):
    """Conditioning-image branch: strided convolutions to a small map, a FC to a code; the
    feature of each level is kept for the decoder's skip connections.

    Shape:
        (B, C, S, S) → code (B, code_dim), skips [(B, channels[i], S / 2**i, S / 2**i)]
    """

    def __init__(
        self, in_channels: int, size: int, base: int = 32, depth: int = 4, code_dim: int = 128
    ) -> None:
        super().__init__()
        if size % 2**depth:
            raise ValueError(f"ConditionEncoder: size {size} must be a multiple of 2**{depth}")
        self.channels = [min(base * 2**i, base * 8) for i in range(depth + 1)]
        ch = self.channels
        self.stem = conv_block(in_channels, ch[0])
        self.down = nn.ModuleList(conv_block(ch[i], ch[i + 1], stride=2) for i in range(depth))
        self.low = size // 2**depth
        self.fc = nn.Sequential(nn.Linear(ch[-1] * self.low**2, code_dim), nn.LeakyReLU(0.2))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        return self.fc(skips[-1].flatten(1)), skips


class AudioToMaskNet(nn.Module):
    """Stage-1 generator: audio features and a conditioning image → mask and heatmaps per frame.

    Spectrogram branch (conv → LSTM → FC) gives a code per frame; the conditioning-image
    branch (reference joint heatmaps + instrument region → conv → FC) one per clip. Their
    concatenation → FC → a small map → upsampling convolutions → 1 mask logit and one logit
    per heatmap channel. With ``skips`` the decoder also merges the conditioning branch's
    features of each size (our addition: a FC bottleneck alone loses the reference's layout,
    and the performer's outline barely moves between frames).

    Args:
        audio_features: F of the front-end.
        condition_channels: channels of the conditioning image.
        out_heatmaps: heatmap channels to predict besides the mask.
        size: frame side (a multiple of 2**depth).
        audio_dim: width of the spectrogram branch (its convolutions, LSTM and code).
        code_dim: width of the conditioning code.
        base: channels at full resolution (doubling per level, capped at 8 × base).
        depth: number of halvings between the frame and the decoder's first map.
        skips: merge the conditioning features into the decoder.
        audio_skips: also merge the audio code, projected to each level's width and spread
            over the map, at every decoder level (ours: the motion the audio explains is of
            arms and hands, finer than the decoder's first map).
        pose_points: with more than 0, a head :meth:`pose_change` predicting how far
            ``pose_points`` points moved from the reference from the audio code and the
            reference's points (ours: an auxiliary task that makes the audio code carry the
            pose; without it the decoder learns to copy the reference and ignores the audio).

    Shape:
        feats (B, F, N), condition (B, C, S, S), T → logits (B, T, 1 + out_heatmaps, S, S)
    """

    def __init__(
        self,
        audio_features: int,
        condition_channels: int,
        out_heatmaps: int,
        size: int = 128,
        audio_dim: int = 128,
        code_dim: int = 128,
        base: int = 32,
        depth: int = 4,
        skips: bool = True,
        audio_skips: bool = False,
        pose_points: int = 0,
    ) -> None:
        super().__init__()
        self.audio = SpectrogramEncoder(audio_features, audio_dim, audio_dim, audio_dim)
        self.pose_head = (
            nn.Sequential(
                nn.Linear(audio_dim + 2 * pose_points, audio_dim),
                nn.LeakyReLU(0.2),
                nn.Linear(audio_dim, 2 * pose_points),
            )
            if pose_points
            else None
        )
        self.condition = ConditionEncoder(condition_channels, size, base, depth, code_dim)
        ch, self.low, self.skips = self.condition.channels, self.condition.low, skips
        self.fc = nn.Sequential(
            nn.Linear(audio_dim + code_dim, ch[-1] * self.low**2), nn.LeakyReLU(0.2)
        )
        self.up = nn.ModuleList(
            UpBlock(ch[i + 1], (ch[i] if skips else 0) + (ch[i] if audio_skips else 0), ch[i])
            for i in reversed(range(depth))
        )
        self.audio_skips = (
            nn.ModuleList(
                nn.Sequential(nn.Linear(audio_dim, ch[i]), nn.LeakyReLU(0.2))
                for i in reversed(range(depth))
            )
            if audio_skips
            else None
        )
        self.head = nn.Conv2d(ch[0], 1 + out_heatmaps, 3, padding=1)

    def pose_change(self, feats: Tensor, reference_points: Tensor, num_frames: int) -> Tensor:
        """How far each point moved from the reference, per frame, from the audio alone.

        Shape:
            feats (B, F, N), reference_points (B, P, 2) → (B, T, P, 2)
        """
        if self.pose_head is None:
            raise ValueError("AudioToMaskNet: built without a pose head (pose_points=0)")
        audio, _ = self.audio(feats, num_frames)  # (B, T, A)
        ref = reference_points.flatten(1)[:, None].expand(-1, num_frames, -1).to(audio.dtype)
        out = self.pose_head(torch.cat([audio, ref], -1))  # (B, T, 2P)
        return out.view(*out.shape[:2], -1, 2)

    def forward(
        self,
        feats: Tensor,
        condition: Tensor,
        num_frames: int,
        state: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        b, t = condition.shape[0], num_frames
        audio, state = self.audio(feats, t, state)  # (B, T, A)
        code, skips = self.condition(condition)  # (B, Cc), skips per level
        joint = torch.cat([audio, code[:, None].expand(-1, t, -1).to(audio.dtype)], -1)
        x = self.fc(joint.flatten(0, 1)).view(b * t, -1, self.low, self.low)  # (B·T, C, s, s)
        for level, (block, skip) in enumerate(zip(self.up, reversed(skips[:-1]), strict=True)):
            size = skip.shape[-1]
            if self.skips:
                s = skip[:, None].expand(-1, t, -1, -1, -1).flatten(0, 1)  # (B·T, Cs, …)
            else:
                s = skip.new_zeros(b * t, 0, size, size)
            if self.audio_skips is not None:
                a = self.audio_skips[level](audio.flatten(0, 1))  # (B·T, Cs)
                s = torch.cat([s, a[:, :, None, None].expand(-1, -1, size, size).to(s.dtype)], 1)
            x = block(x, s)
        out = self.head(x)  # (B·T, 1 + K, S, S)
        return out.view(b, t, *out.shape[1:]), state


class AudioMaskDiscriminator(nn.Module):
    """Stage-1 discriminator: spectrogram branch (conv + LSTM + FC) and image branch (conv),
    concatenated → FC → a real/fake score per frame, plus a patch output on the image branch.

    The image branch sees each frame's mask and heatmaps with their change since the previous
    frame, so unsteady masks are told apart from real motion (temporal coherence).

    Args:
        audio_features: F of the front-end.
        image_channels: channels of a frame (mask + heatmaps), before the temporal difference.
        base: channels of the first convolution.
        layers: stride-2 convolutions of the image branch.
        audio_dim: width of the spectrogram branch.
        spectral_norm: spectrally normalise convolutions and linear layers.

    Shape:
        images (B, T, C, H, W), feats (B, F, N) → scores (B, T), patches (B, T, 1, h, w)
    """

    def __init__(
        self,
        audio_features: int,
        image_channels: int,
        base: int = 32,
        layers: int = 4,
        audio_dim: int = 128,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()

        def sn(layer: nn.Module) -> nn.Module:
            return _spectral(layer) if spectral_norm else layer

        chans = [2 * image_channels] + [min(base * 2**i, base * 8) for i in range(layers)]
        convs: list[nn.Module] = []
        for c_in, c_out in pairwise(chans):
            convs += [sn(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.image = nn.Sequential(*convs)
        self.patch = sn(nn.Conv2d(chans[-1], 1, 3, padding=1))
        self.audio = SpectrogramEncoder(audio_features, audio_dim, audio_dim, audio_dim,
                                        spectral_norm)  # fmt: skip
        self.head = nn.Sequential(
            sn(nn.Linear(chans[-1] + audio_dim, audio_dim)),
            nn.LeakyReLU(0.2),
            sn(nn.Linear(audio_dim, 1)),
        )

    def forward(self, images: Tensor, feats: Tensor) -> tuple[Tensor, Tensor]:
        b, t = images.shape[:2]
        change = images - torch.cat([images[:, :1], images[:, :-1]], 1)  # 0 at the first frame
        x = self.image(torch.cat([images, change], 2).flatten(0, 1))  # (B·T, C, h, w)
        patches = self.patch(x)  # (B·T, 1, h, w)
        audio, _ = self.audio(feats, t)  # (B, T, A)
        joint = torch.cat([x.mean((2, 3)), audio.flatten(0, 1).to(x.dtype)], 1)
        scores = self.head(joint)[:, 0]  # (B·T,)
        return scores.view(b, t), patches.view(b, t, *patches.shape[1:])


# ------------------------------------------------------------------------------- stage 2 parts


class PoseGuidedGenerator(nn.Module):
    """Stage-2 generator (PG2): target condition + reference frame and its condition → coarse
    U-Net → coarse frame; refinement U-Net on (coarse, reference) → difference map; the frame
    is coarse + difference.

    With ``residual`` (our addition) the coarse U-Net predicts a change of the reference frame
    rather than the frame, and both U-Nets' output layers start at zero: the untrained
    generator returns the reference frame exactly, so training starts from "copy the
    reference" (a strong baseline: most of a studio frame does not move) and only has to learn
    what moves.

    Args:
        condition_channels: channels of a condition image (mask + heatmaps, or heatmaps).
        base: channels of the coarse U-Net at full resolution; ``depth`` its halvings.
        refine_base: channels of the refinement U-Net; ``refine_depth`` its halvings.
        refine: use the refinement U-Net (without it the coarse frame is the output).
        residual: coarse frame = reference + change, zero-initialised outputs.

    Shape:
        target (N, C, H, W), reference (N, 3, H, W) in [-1, 1], reference_condition
        (N, C, H, W) → coarse (N, 3, H, W), frame (N, 3, H, W) in [-1, 1]
    """

    def __init__(
        self,
        condition_channels: int,
        base: int = 32,
        depth: int = 4,
        refine_base: int = 32,
        refine_depth: int = 3,
        refine: bool = True,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.coarse = UNet(3 + 2 * condition_channels, 3, base, depth)
        self.refine = UNet(6, 3, refine_base, refine_depth) if refine else None
        if residual:
            for net in (self.coarse, self.refine):
                if net is not None:
                    nn.init.zeros_(net.head.weight)
                    nn.init.zeros_(net.head.bias)  # type: ignore[arg-type]

    def forward(
        self,
        target: Tensor,
        reference: Tensor,
        reference_condition: Tensor,
        region: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``region`` (N, 1, H, W) in [0, 1], with ``residual`` only: where the frame may
        differ from the reference (both U-Nets' outputs are multiplied by it)."""
        x = torch.cat([reference, reference_condition, target], 1)
        gate = 1.0 if region is None else region.to(reference.dtype)
        if self.residual:
            coarse = (reference + gate * self.coarse(x)).clamp(-1.0, 1.0)  # (N, 3, H, W)
        else:
            coarse = torch.tanh(self.coarse(x))
            gate = 1.0
        if self.refine is None:
            return coarse, coarse
        difference = gate * self.refine(torch.cat([coarse, reference], 1))
        return coarse, (coarse + difference).clamp(-1.0, 1.0)


__all__ = [
    "DEFAULT_JOINTS",
    "AudioMaskDiscriminator",
    "AudioToMaskNet",
    "ConditionEncoder",
    "GuitaristFeatures",
    "PoseGuidedGenerator",
    "SpectrogramEncoder",
    "change_region",
    "instrument_region",
    "joint_heatmaps",
    "pose_points",
]
