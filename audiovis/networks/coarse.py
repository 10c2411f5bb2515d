"""APVG coarse video generator (CVG): audio + the previous frame + noise → the next frame.

From "Let's Play Music: audio-driven performance video generation": an audio encoder and an
LSTM give one audio feature per video frame; an image encoder (the first five layers of a
VGG plus two convs) encodes the previous generated frame; the decoder turns
[audio feature, image feature, noise z] into a coarse frame, trained with L1 to the real one.
Generation is autoregressive over the clip, and the returned :class:`CoarseState` lets a long
audio be generated window by window.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# atanh(±1) is infinite: keep base pixels this far inside [-1, 1] (atanh(1 − 1e-3) ≈ 3.8)
_EDGE = 1e-3


def tanh_residual(base: Tensor, delta: Tensor) -> Tensor:
    """``tanh(atanh(base) + delta)``: a correction added in tanh's pre-activation space, so a
    zero ``delta`` returns ``base`` exactly and any ``delta`` stays in [-1, 1]."""
    return torch.tanh(torch.atanh(base.clamp(-1 + _EDGE, 1 - _EDGE)) + delta)


def _norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: frames are decoded one time step at a time in small batches,
    # and per-sample statistics keep training, inference and window chaining identical
    groups = math.gcd(channels, 32)
    while groups > 1 and channels // groups < 4:  # at least 4 channels a group
        groups //= 2
    return nn.GroupNorm(groups, channels)


class CoarseState(NamedTuple):
    """What carries over between windows: the audio LSTM's state, the last frame and the
    frame generation started from (the residual's base with ``anchor="first"``).

    Shape:
        h, c (1, B, audio_dim); previous, first (B, 3, H, W) in [-1, 1]
    """

    h: Tensor
    c: Tensor
    previous: Tensor
    first: Tensor | None = None


class AudioEncoder(nn.Module):
    """Per-frame audio encoder + LSTM: audio features → one feature per video frame.

    Features are resampled to ``sub_frames`` steps per video frame and each frame's
    (F, sub_frames) patch is encoded on its own, so the encoder keeps sub-frame timing while
    all context across frames lives in the LSTM state, which windows can carry over.

    Args:
        num_features: F, the audio front-end's feature dimension.
        audio_dim: A, output width (MLP and LSTM).
        sub_frames: feature steps per video frame seen by the per-frame encoder.

    Shape:
        (B, F, N), num_frames T → (B, T, A) and the LSTM state ((1, B, A), (1, B, A))
    """

    def __init__(self, num_features: int, audio_dim: int = 256, sub_frames: int = 4) -> None:
        super().__init__()
        self.sub_frames = sub_frames
        self.norm = nn.BatchNorm1d(num_features)  # front-ends differ in scale (log, dB, [0,1])
        self.mlp = nn.Sequential(
            nn.Linear(num_features * sub_frames, audio_dim), nn.LeakyReLU(0.2),
            nn.Linear(audio_dim, audio_dim), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.lstm = nn.LSTM(audio_dim, audio_dim, batch_first=True)

    def forward(
        self, features: Tensor, num_frames: int, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        b, f, _ = features.shape
        r = self.sub_frames
        x = F.adaptive_avg_pool1d(self.norm(features), num_frames * r)  # (B, F, T·R)
        x = x.view(b, f, num_frames, r).transpose(1, 2).flatten(2)  # (B, T, F·R)
        out, (h, c) = self.lstm(self.mlp(x), state)  # (B, T, A)
        return out, (h, c)


class VGGStem(nn.Module):
    """Image encoder: VGG's first five layers + two stride-2 convs, globally pooled.

    Built from scratch (no weights are downloaded): conv3x3-64, ReLU, conv3x3-64, ReLU,
    maxpool (VGG16 ``features[:5]`` at ``channels=64``), then two 4x4 stride-2 convs doubling
    the width, average-pooled over space and projected to ``out_dim``.

    Args:
        out_dim: width of the image feature.
        channels: VGG's first width (64).

    Shape:
        (B, 3, H, W) → (B, out_dim), any H, W ≥ 8
    """

    def __init__(self, out_dim: int = 256, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c, H/2, W/2)
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), _norm(2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1), _norm(4 * c), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.proj = nn.Linear(4 * c, out_dim)

    def forward(self, image: Tensor) -> Tensor:
        return self.proj(self.net(image).mean(dim=(2, 3)))  # (B, out_dim)


class ImageDecoder(nn.Module):
    """A vector → an image: a 4x4 seed doubled by upsample + conv blocks, tanh output.

    Nearest upsampling then a 3x3 conv avoids transposed-conv checkerboards. Widths halve
    towards the output, from ``8·channels`` at most to ``channels`` at full size.

    Args:
        in_dim: input vector width.
        image_size: output side, a power of two ≥ 32.
        channels: width at full resolution.

    Shape:
        (B, in_dim) → (B, 3, image_size, image_size) in [-1, 1]
    """

    def __init__(self, in_dim: int, image_size: int, channels: int = 64) -> None:
        super().__init__()
        if image_size < 32 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 32, got {image_size}")
        n = int(math.log2(image_size)) - 2  # doublings from 4x4
        widths = [channels * 2 ** min(n - i, 3) for i in range(n + 1)]
        self.seed = nn.Linear(in_dim, widths[0] * 16)
        self.seed_act = nn.Sequential(_norm(widths[0]), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*[
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False),  # norm has a bias
                _norm(widths[i + 1]),
                nn.LeakyReLU(0.2),
            )
            for i in range(n)
        ])  # fmt: skip
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def logits(self, z: Tensor) -> Tensor:
        """The image before the tanh."""
        x = self.seed_act(self.seed(z).view(z.shape[0], -1, 4, 4))  # (B, C0, 4, 4)
        return self.to_rgb(self.blocks(x))  # (B, 3, S, S)

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.logits(z))


class CoarseVideoGeneratorNet(nn.Module):
    """CVG: frames decoded autoregressively from [audio_t, ImageEncoder(frame_{t-1}), z_t].

    Args:
        num_features: F, the audio front-end's feature dimension.
        image_size: frame side, a power of two ≥ 32.
        audio_dim: width of the per-frame audio feature.
        image_dim: width of the previous-frame feature.
        noise_dim: width of z_t (0: deterministic).
        channels: image encoder's first width and decoder's full-resolution width.
        sub_frames: audio feature steps per video frame seen by the audio encoder.
        residual: decode a change to the previous frame (``tanh(atanh(previous) + Δ)``, Δ's
            layer zero-initialised, so the untrained CVG repeats the previous frame) instead of
            the paper's whole frame from the code. The code is a global vector, so decoding
            every frame from it alone is blurry for many steps; the residual keeps the
            previous frame's detail and learns the motion.
        anchor: with ``residual``, the frame the change is to: ``previous`` (the frame
            before, as above) or ``first`` (the frame generation started from, carried across
            windows). A change to the previous generated frame compounds its errors over a
            long generation (colours drift); a change to the first frame cannot drift, and
            the previous frame still reaches the code through the image encoder.
        scale: the coarse stage works at ``image_size / scale``: the image encoder reads the
            previous frame average-pooled ``scale`` times and the decoder's output is
            upsampled (bilinear) to ``image_size``; with ``residual`` the upsampled change is
            added to the full-size base frame, so the base's detail is kept. 1: full size.
    """

    def __init__(
        self,
        num_features: int,
        image_size: int,
        audio_dim: int = 256,
        image_dim: int = 256,
        noise_dim: int = 32,
        channels: int = 64,
        sub_frames: int = 4,
        residual: bool = False,
        anchor: str = "previous",
        scale: int = 1,
    ) -> None:
        super().__init__()
        if anchor not in ("previous", "first"):
            raise ValueError(f"anchor must be 'previous' or 'first', got {anchor!r}")
        if scale < 1 or scale & (scale - 1) or image_size // scale < 32:
            raise ValueError(f"scale must be a power of two leaving at least 32 pixels, got "
                             f"{scale} for {image_size}")  # fmt: skip
        self.image_size, self.noise_dim, self.residual = image_size, noise_dim, residual
        self.anchor, self.scale = anchor, scale
        self.audio = AudioEncoder(num_features, audio_dim, sub_frames)
        self.image = VGGStem(image_dim, channels)
        self.decoder = ImageDecoder(audio_dim + image_dim + noise_dim, image_size // scale,
                                    channels)  # fmt: skip
        if residual:
            nn.init.zeros_(self.decoder.to_rgb.weight)
            nn.init.zeros_(self.decoder.to_rgb.bias)  # type: ignore[arg-type]

    def _decode(self, code: Tensor, base: Tensor) -> Tensor:
        """One batch of frames from their codes, (N, A+I+Z) and the residual's base frames
        (N, 3, H, W) → (N, 3, H, W)."""
        logits = self.decoder.logits(code)  # (N, 3, H / scale, W / scale)
        if self.scale > 1:
            logits = F.interpolate(logits, scale_factor=float(self.scale), mode="bilinear",
                                   align_corners=False)  # fmt: skip
        if self.residual:
            return tanh_residual(base, logits)
        return torch.tanh(logits)

    def _encode(self, frames: Tensor) -> Tensor:
        """Image features of (N, 3, H, W) frames at the stage's size → (N, image_dim)."""
        if self.scale > 1:
            frames = F.avg_pool2d(frames, self.scale)
        return self.image(frames)

    def forward(
        self,
        audio_features: Tensor,
        num_frames: int,
        first_frame: Tensor | None = None,
        noise: bool = True,
        teacher_frames: Tensor | None = None,
        state: CoarseState | None = None,
    ) -> tuple[Tensor, CoarseState]:
        """Generate ``num_frames`` frames under the audio.

        Args:
            audio_features: the window's audio features.
            num_frames: T, frames to generate.
            first_frame: the frame before the window (the previous frame at t = 0); when
                ``state`` is also given it replaces ``state.previous`` (re-anchoring).
            noise: draw z_t ~ N(0, I) (False: z_t = 0, deterministic).
            teacher_frames: real frames; frame t then conditions on ``teacher_frames[t-1]``
                instead of the generated one, and all frames decode in one batched pass.
            state: the previous window's returned state, to continue it.

        Shape:
            audio_features (B, F, N), first_frame (B, 3, H, W), teacher_frames
            (B, T, 3, H, W) → frames (B, T, 3, H, W) in [-1, 1]

        Returns:
            The frames and the state after them (its ``previous`` is the last generated
            frame, or the last teacher frame under teacher forcing).
        """
        if first_frame is None and state is None:
            raise ValueError("CoarseVideoGeneratorNet needs first_frame or state")
        previous = first_frame if first_frame is not None else state.previous  # type: ignore[union-attr]
        first = previous if first_frame is not None or state is None else state.first
        first = previous if first is None else first  # a state saved without it
        if previous.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"frames must be {self.image_size}x{self.image_size}, got {tuple(previous.shape)}"
            )
        lstm_state = None if state is None else (state.h, state.c)
        audio, (h, c) = self.audio(audio_features, num_frames, lstm_state)  # (B, T, A)
        b, s = audio.shape[0], self.image_size
        z = audio.new_zeros(b, num_frames, self.noise_dim)  # (B, T, Z)
        if noise:
            z = torch.randn_like(z)
        if teacher_frames is not None:
            # every previous frame is known: encode and decode the whole window at once
            prev = torch.cat([previous[:, None], teacher_frames[:, :-1]], dim=1)  # (B, T, 3, H, W)
            image = self._encode(prev.flatten(0, 1)).view(b, num_frames, -1)  # (B, T, I)
            code = torch.cat([audio, image, z], dim=-1).flatten(0, 1)
            base = prev if self.anchor == "previous" else first[:, None].expand_as(prev)
            frames = self._decode(code, base.flatten(0, 1))
            state = CoarseState(h, c, teacher_frames[:, -1], first)
            return frames.view(b, num_frames, 3, s, s), state
        out = []
        for t in range(num_frames):
            code = torch.cat([audio[:, t], self._encode(previous), z[:, t]], dim=-1)  # (B, A+I+Z)
            base = previous if self.anchor == "previous" else first
            previous = self._decode(code, base)  # (B, 3, H, W), fed back with its gradient
            out.append(previous)
        return torch.stack(out, dim=1), CoarseState(h, c, previous, first)
