"""Networks of the music-oriented dance WGAN (Abary, music2dance): residual fully connected pose
generator and critic, a GRU sequence generator with a temporal convolutional critic, audio
encoders of 0.2 s windows, and a two-encoder (pose + audio) critic."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ----------------------------------------------------------------------------------- blocks


def _norm1d(width: int, kind: str) -> nn.Module:
    """Normalisation of (N, C) features: batch norm in generators; layer norm or none in
    critics, whose gradient penalty is per sample (batch statistics would mix samples)."""
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'layer' or 'none', got {kind!r}")


class ResidualLinearBlock(nn.Module):
    """``act(x + norm(fc2(act(norm(fc1(x))))))``.

    The original applied its second layer to the block's input instead of the first layer's
    output, so the first layer did nothing; here the residual branch is the two layers in
    series, as in a ResNet block.

    Shape:
        (N, width) → (N, width)
    """

    def __init__(self, width: int, norm: str = "batch", negative_slope: float = 0.0) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.norm1, self.norm2 = _norm1d(width, norm), _norm1d(width, norm)
        self.negative_slope = negative_slope

    def _act(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        branch = self.norm2(self.fc2(self._act(self.norm1(self.fc1(x)))))
        return self._act(x + branch)


class TemporalBlock(nn.Module):
    """Residual block of two same-length 1-D convolutions over time.

    Shape:
        (B, C, T) → (B, C, T)
    """

    def __init__(self, channels: int, kernel: int = 7, negative_slope: float = 0.2) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"temporal kernel must be odd to keep the length, got {kernel}")
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        branch = self.conv2(F.leaky_relu(self.conv1(x), self.negative_slope))
        return F.leaky_relu(x + branch, self.negative_slope)


# ------------------------------------------------------------------------------ phase 1: poses


class PoseGenerator(nn.Module):
    """Residual fully connected generator of single poses.

    FC(latent → width) + BN + ReLU → ``blocks`` residual blocks → Dropout(0.5) → FC → J·3.

    Args:
        latent: noise size.
        width: hidden width.
        blocks: residual blocks.
        num_joints: J.
        dropout: before the output layer (0.5 in the original).
        num_styles: > 0 adds a learnt style embedding to the input (conditional generation).

    Shape:
        z (N, latent), style (N,) → (N, J, 3)
    """

    def __init__(self, latent: int = 50, width: int = 256, blocks: int = 2, num_joints: int = 23,
                 dropout: float = 0.5, num_styles: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.latent, self.num_joints = latent, num_joints
        self.style = nn.Embedding(num_styles, latent) if num_styles > 0 else None
        self.inp = nn.Sequential(nn.Linear(latent, width), nn.BatchNorm1d(width), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualLinearBlock(width) for _ in range(blocks)))
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_joints * 3))

    def forward(self, z: Tensor, style: Tensor | None = None) -> Tensor:
        if self.style is not None and style is not None:
            z = z + self.style(style)
        return self.out(self.blocks(self.inp(z))).view(-1, self.num_joints, 3)


class PoseCritic(nn.Module):
    """The mirror of :class:`PoseGenerator`: FC → residual blocks (layer norm) → FC → score.

    Shape:
        pose (N, J, 3), style (N,) → (N,)
    """

    def __init__(self, width: int = 256, blocks: int = 2, num_joints: int = 23,
                 num_styles: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.style = nn.Embedding(num_styles, width) if num_styles > 0 else None
        self.inp = nn.Linear(num_joints * 3, width)
        self.blocks = nn.Sequential(
            *(ResidualLinearBlock(width, norm="layer", negative_slope=0.2) for _ in range(blocks))
        )
        self.out = nn.Linear(width, 1)

    def forward(self, pose: Tensor, style: Tensor | None = None) -> Tensor:
        h = self.inp(pose.flatten(1))
        if self.style is not None and style is not None:
            h = h + self.style(style)
        return self.out(self.blocks(F.leaky_relu(h, 0.2))).squeeze(-1)


# --------------------------------------------------------------------------- phase 2: sequences


class FrameDecoder(nn.Module):
    """Per-frame decoder: FC + BN + ReLU → residual blocks → FC → J·3 (optionally tanh).

    Shape:
        (B, T, latent) → (B, T, J, 3)
    """

    def __init__(self, latent: int, width: int = 256, blocks: int = 2, num_joints: int = 23,
                 tanh: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.num_joints, self.tanh = num_joints, tanh
        self.inp = nn.Sequential(nn.Linear(latent, width), nn.BatchNorm1d(width), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualLinearBlock(width) for _ in range(blocks)))
        self.out = nn.Linear(width, num_joints * 3)

    def forward(self, h: Tensor) -> Tensor:
        b, t, _ = h.shape
        x = self.out(self.blocks(self.inp(h.reshape(b * t, -1))))
        if self.tanh:
            x = torch.tanh(x)
        return x.view(b, t, self.num_joints, 3)


class SequenceGenerator(nn.Module):
    """Per-frame noise → GRU → frame decoder: a dance of any length.

    Args:
        noise: per-frame noise size (50).
        hidden: GRU size (50); ``layers`` GRU layers (3).
        width, blocks: the frame decoder's (256, 2).
        num_joints: J.
        num_styles: > 0 conditions on the dance style (an embedding added to the noise).

    Shape:
        noise (B, T, noise), style (B,) → (B, T, J, 3) and the GRU state (layers, B, hidden).
    """

    def __init__(self, noise: int = 50, hidden: int = 50, layers: int = 3, width: int = 256,
                 blocks: int = 2, num_joints: int = 23, num_styles: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.noise_size = noise
        self.style = nn.Embedding(num_styles, noise) if num_styles > 0 else None
        self.rnn = nn.GRU(noise, hidden, layers, batch_first=True)
        self.decoder = FrameDecoder(hidden, width, blocks, num_joints)

    def forward(self, noise: Tensor, style: Tensor | None = None,
                state: Tensor | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
        if self.style is not None and style is not None:
            noise = noise + self.style(style)[:, None]
        h, state = self.rnn(noise, state)
        return self.decoder(h), state


class SequenceCritic(nn.Module):
    """1-D temporal convolutional critic with the joint coordinates as channels.

    Conv1d(J·3 → channels, k 25) → ``blocks`` residual temporal blocks (k 7) → Conv1d with a
    kernel the length of the clip → ``out`` values. It scores fixed-length clips
    (``seq_len`` frames, 120 in the original).

    Shape:
        poses (B, T = seq_len, J, 3), style (B,) → (B,) when ``out`` is 1 else (B, out)
    """

    def __init__(self, num_joints: int = 23, seq_len: int = 120, channels: int = 128,
                 first_kernel: int = 25, blocks: int = 3, block_kernel: int = 7, out: int = 1,
                 num_styles: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.seq_len = seq_len
        self.inp = nn.Conv1d(num_joints * 3, channels, first_kernel, padding=first_kernel // 2)
        self.style = nn.Embedding(num_styles, channels) if num_styles > 0 else None
        self.blocks = nn.Sequential(*(TemporalBlock(channels, block_kernel) for _ in range(blocks)))
        self.out = nn.Conv1d(channels, out, seq_len)

    def forward(self, poses: Tensor, style: Tensor | None = None) -> Tensor:
        b, t = poses.shape[:2]
        if t != self.seq_len:
            raise ValueError(f"the critic scores clips of {self.seq_len} frames, got {t}")
        x = poses.reshape(b, t, -1).transpose(1, 2)  # (B, J·3, T)
        # odd kernels keep the length; an even one would drop a frame
        h = self.inp(x)[..., :t]
        if self.style is not None and style is not None:
            h = h + self.style(style)[..., None]
        y = self.out(self.blocks(F.leaky_relu(h, 0.2))).squeeze(-1)  # (B, out)
        return y.squeeze(-1) if y.shape[-1] == 1 else y


# ------------------------------------------------------------------------ phase 3: audio → dance


def _activation(kind: str) -> nn.Module:
    if kind == "id":
        return nn.Identity()
    if kind == "relu":
        return nn.ReLU()
    if kind == "tanh":
        return nn.Tanh()
    raise ValueError(f"activation must be 'id', 'relu' or 'tanh', got {kind!r}")


def _length_after(layers: nn.Module, window: int) -> int:
    with torch.no_grad():
        was = layers.training
        layers.eval()
        length = int(layers(torch.zeros(1, 1, window)).shape[-1])
        layers.train(was)
    if length < 1:
        raise ValueError(f"an audio window of {window} samples is too short for this encoder")
    return length


class DefaultAudioEncoder(nn.Module):
    """Conv1d(1 → 32, k 250, s 50) → 5 convs (k 4, s 2) doubling the channels → a conv over
    what is left of the window → ``out``. At 3,200 samples (0.2 s at 16 kHz) the last conv has
    kernel 2, as in the original.

    Shape:
        (N, window) → (N, out)
    """

    def __init__(self, window: int = 3200, out: int = 250, channels: int = 32,
                 activation: str = "id") -> None:  # fmt: skip
        super().__init__()
        stride = max(1, round(window / 64))  # 50 at 3,200 samples
        kernel = 5 * stride
        layers: list[nn.Module] = [
            nn.Conv1d(1, channels, kernel, stride, kernel // 2 - 1),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
        ]
        c = channels
        for _ in range(5):
            layers += [nn.Conv1d(c, 2 * c, 4, 2, 1), nn.BatchNorm1d(2 * c), nn.ReLU()]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv1d(c, out, _length_after(self.features, window))
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.head(self.features(x[:, None]))).flatten(1)


class _UBlock(nn.Module):
    """A 1-D U: three max-pool levels down, linear upsampling back, skip concatenations."""

    def __init__(self, channels: int) -> None:
        super().__init__()

        def conv(cin: int) -> nn.Module:
            return nn.Sequential(
                nn.Conv1d(cin, channels, 3, 1, 1), nn.BatchNorm1d(channels), nn.LeakyReLU(0.2)
            )

        self.down = nn.ModuleList([conv(channels) for _ in range(4)])
        self.up = nn.ModuleList([conv(2 * channels) for _ in range(3)])

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, layer in enumerate(self.down):
            x = layer(x if i == 0 else F.max_pool1d(x, 2, ceil_mode=True))
            skips.append(x)
        x = skips.pop()
        for layer in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-1], mode="linear", align_corners=False)
            x = layer(torch.cat([x, skip], 1))
        return x


class UNetAudioEncoder(nn.Module):
    """U-Net style: Conv1d(1 → 32, k 160, s 4) → two strided convs → a 1-D U-block → a conv
    over the remaining length (200 at 3,200 samples) → ``out``.

    Shape:
        (N, window) → (N, out)
    """

    def __init__(self, window: int = 3200, out: int = 250, channels: int = 32,
                 activation: str = "id") -> None:  # fmt: skip
        super().__init__()
        kernel = max(4, round(window / 20))  # 160 at 3,200 samples
        layers: list[nn.Module] = [
            nn.Conv1d(1, channels, kernel, 4, kernel // 2 - 1),
            nn.BatchNorm1d(channels),
            nn.LeakyReLU(0.2),
        ]
        c = channels
        for _ in range(2):
            layers += [nn.Conv1d(c, 2 * c, 4, 2, 1), nn.BatchNorm1d(2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers, _UBlock(c))
        self.head = nn.Conv1d(c, out, _length_after(self.features, window))
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.head(self.features(x[:, None]))).flatten(1)


class WaveGANAudioEncoder(nn.Module):
    """WaveGAN style: four convs (k 25, s 4) doubling the channels from 32, then a conv over
    the remaining length (5 at 3,200 samples) → ``out``. Windows shorter than 3,200 samples
    get a proportionally smaller odd kernel.

    Shape:
        (N, window) → (N, out)
    """

    def __init__(self, window: int = 3200, out: int = 250, channels: int = 32,
                 activation: str = "id") -> None:  # fmt: skip
        super().__init__()
        # kernel 25 at 0.2 s of 16 kHz audio; scaled down for shorter windows
        kernel = min(25, max(5, round(25 * window / 3200)) | 1)
        layers: list[nn.Module] = []
        cin, c = 1, channels
        for _ in range(4):
            layers += [nn.Conv1d(cin, c, kernel, 4), nn.BatchNorm1d(c), nn.ReLU()]
            cin, c = c, 2 * c
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv1d(cin, out, _length_after(self.features, window))
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.head(self.features(x[:, None]))).flatten(1)


AUDIO_ENCODERS: dict[str, type[nn.Module]] = {
    "default": DefaultAudioEncoder,
    "unet": UNetAudioEncoder,
    "wavegan": WaveGANAudioEncoder,
}


def audio_encoder(kind: str, window: int, out: int, channels: int = 32,
                  activation: str = "id") -> nn.Module:  # fmt: skip
    """The audio encoder named ``kind``: ``default``, ``unet`` or ``wavegan``."""
    if kind not in AUDIO_ENCODERS:
        raise ValueError(f"audio encoder must be one of {sorted(AUDIO_ENCODERS)}, got {kind!r}")
    return AUDIO_ENCODERS[kind](window, out, channels, activation)


class WindowOnsets(nn.Module):
    """The onset strength inside each audio window at ``points`` times: half-wave rectified
    log-magnitude spectral flux (hops of a twentieth of the window: 10 ms of 0.2 s),
    averaged over frequency and pooled to ``points`` values across the window.

    A learned encoder can find onsets in the waveform too, but only after much training; a
    dancer steps on the beats, and onsets mark them, so the GRU is handed where they are.
    Measured (bench/results/dance_pilot_*onsets*.json): at 300-900 CPU-s it lifts the L1
    baseline's beat alignment above chance a little (+0.01 to +0.03 against -0.01 to -0.04
    without), and not the WGAN's.

    Shape:
        (N, window) → (N, points)
    """

    hann: Tensor

    def __init__(self, window: int, points: int, n_fft: int = 512) -> None:
        super().__init__()
        n_fft = min(n_fft, window // 2)  # short windows: at least 10 hops of flux
        self.points, self.n_fft, self.hop = points, n_fft, max(1, window // 20)
        self.register_buffer("hann", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        spec = torch.stft(x.float(), self.n_fft, self.hop, window=self.hann, center=False,
                          return_complex=True).abs()  # (N, F, S)  # fmt: skip
        flux = F.relu(torch.log1p(100 * spec).diff(dim=-1)).mean(1)  # (N, S − 1)
        return F.adaptive_avg_pool1d(flux[:, None], self.points)[:, 0]  # (N, points)


class AudioDanceGenerator(nn.Module):
    """Audio windows → encoder → GRU, beside noise → GRU; both concatenated → frame decoder.

    Args:
        window: samples per audio window (3,200: 0.2 s at 16 kHz).
        encoder: ``default``, ``unet`` or ``wavegan``.
        latent: decoder input size (250): the audio GRU gives ``latent - noise_hidden``.
        encoder_out: audio code size (250).
        audio_layers: audio GRU layers (3).
        noise: per-frame noise size (10); ``noise_hidden`` its GRU's size (10).
        width, blocks: frame decoder (256, 2).
        channels: first channels of the audio encoder (32).
        activation: the encoder's output activation (``id``; ``tanh`` is an ablation).
        tanh: squash the decoder's output (an ablation of the original).
        num_styles: > 0 conditions on the style (embedding added to the noise).
        onset_points: > 0 gives the audio GRU each window's onset strength at that many
            times (:class:`WindowOnsets`) beside the encoder's code.

    Shape:
        windows (B, T, window), noise (B, T, noise) → (B, T, J, 3), state
    """

    def __init__(self, window: int = 3200, encoder: str = "default", latent: int = 250,
                 encoder_out: int = 250, audio_layers: int = 3, noise: int = 10,
                 noise_hidden: int = 10, width: int = 256, blocks: int = 2,
                 num_joints: int = 23, channels: int = 32, activation: str = "id",
                 tanh: bool = False, num_styles: int = 0,
                 onset_points: int = 0) -> None:  # fmt: skip
        super().__init__()
        if latent <= noise_hidden:
            raise ValueError(f"latent ({latent}) must exceed noise_hidden ({noise_hidden})")
        self.window, self.noise_size = window, noise
        self.encoder = audio_encoder(encoder, window, encoder_out, channels, activation)
        self.onsets = WindowOnsets(window, onset_points) if onset_points > 0 else None
        self.audio_rnn = nn.GRU(encoder_out + onset_points, latent - noise_hidden, audio_layers,
                                batch_first=True)  # fmt: skip
        self.noise_rnn = nn.GRU(noise, noise_hidden, 1, batch_first=True)
        self.style = nn.Embedding(num_styles, noise) if num_styles > 0 else None
        self.decoder = FrameDecoder(latent, width, blocks, num_joints, tanh=tanh)

    def forward(self, windows: Tensor, noise: Tensor, style: Tensor | None = None,
                state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:  # fmt: skip
        b, t, w = windows.shape
        flat = windows.reshape(b * t, w)
        code = self.encoder(flat).view(b, t, -1)  # (B, T, E)
        if self.onsets is not None:
            code = torch.cat([code, self.onsets(flat).view(b, t, -1).to(code.dtype)], -1)
        audio_h, audio_state = self.audio_rnn(code, None if state is None else state[0])
        if self.style is not None and style is not None:
            noise = noise + self.style(style)[:, None]
        noise_h, noise_state = self.noise_rnn(noise, None if state is None else state[1])
        return self.decoder(torch.cat([audio_h, noise_h], -1)), (audio_state, noise_state)


class CriticAudioEncoder(nn.Module):
    """The critic's audio branch: five convs (k 25, s 4, 32 → 512 channels) → a conv over the
    remaining length (75 for 4.8 s at 16 kHz) → ``code``.

    Shape:
        (B, samples) → (B, code)
    """

    def __init__(self, samples: int = 76800, code: int = 100, channels: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, c = 1, channels
        for _ in range(5):
            layers += [nn.Conv1d(cin, c, 25, 4, 11), nn.LeakyReLU(0.2)]
            cin, c = c, 2 * c
        self.features = nn.Sequential(*layers)
        self.samples = samples
        self.head = nn.Conv1d(cin, code, _length_after(self.features, samples))

    def forward(self, audio: Tensor) -> Tensor:
        if audio.shape[-1] != self.samples:
            raise ValueError(
                f"the audio critic takes {self.samples} samples, got {audio.shape[-1]}"
            )
        return self.head(self.features(audio[:, None])).flatten(1)


class AudioDanceCritic(nn.Module):
    """Two encoders, one per modality, fused by a small MLP: (poses, audio) → score.

    The pose encoder is a :class:`SequenceCritic` with ``code`` outputs (conv k 25 → 2 temporal
    blocks → conv over the clip); the audio encoder a :class:`CriticAudioEncoder`; their codes
    are concatenated → FC(2·code → 128) → LeakyReLU → FC → 1. ``use_audio=False`` is the
    original's ablation without the audio branch.

    Shape:
        poses (B, seq_len, J, 3), audio (B, samples), style (B,) → (B,)
    """

    def __init__(self, num_joints: int = 23, seq_len: int = 120, samples: int = 76800,
                 channels: int = 128, blocks: int = 2, code: int = 100, hidden: int = 128,
                 audio_channels: int = 32, use_audio: bool = True,
                 num_styles: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.pose = SequenceCritic(num_joints, seq_len, channels, 25, blocks, 7, code,
                                   num_styles)  # fmt: skip
        self.audio = CriticAudioEncoder(samples, code, audio_channels) if use_audio else None
        self.fuse = nn.Sequential(
            nn.Linear(code * (2 if use_audio else 1), hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def audio_code(self, audio: Tensor) -> Tensor | None:
        """The audio branch's code (B, code), or None without the branch.

        Scoring several pose sets against the same music, compute it once and pass it to
        :meth:`forward` as ``audio_code``: the audio branch is the critic's costliest part.
        """
        return None if self.audio is None else self.audio(audio)

    def forward(self, poses: Tensor, audio: Tensor, style: Tensor | None = None,
                audio_code: Tensor | None = None) -> Tensor:  # fmt: skip
        """Scores of ``poses`` against ``audio``; ``audio_code`` (from :meth:`audio_code`,
        one row per pose set or one per audio, repeated) replaces the audio branch's pass."""
        code = self.pose(poses, style).view(len(poses), -1)
        if self.audio is not None:
            sound = self.audio(audio) if audio_code is None else audio_code
            if len(sound) != len(code):
                if len(code) % len(sound):
                    raise ValueError(f"{len(sound)} audio codes for {len(code)} pose sets")
                sound = sound.repeat(len(code) // len(sound), 1)
            code = torch.cat([code, sound], -1)
        return self.fuse(F.leaky_relu(code, 0.2)).squeeze(-1)


# ------------------------------------------------------------------------ evaluation: style


class DanceStyleNet(nn.Module):
    """Dance-style classifier of pose sequences (the original's: conv + temporal block + GRU).

    Conv1d(J·3 → channels, k 5) → temporal block → GRU → mean over time → linear → logits.

    Shape:
        poses (B, T, J, 3) → (B, num_classes)
    """

    def __init__(self, num_joints: int = 23, num_classes: int = 4, channels: int = 64,
                 hidden: int = 64) -> None:  # fmt: skip
        super().__init__()
        self.inp = nn.Conv1d(num_joints * 3, channels, 5, padding=2)
        self.block = TemporalBlock(channels, 5)
        self.rnn = nn.GRU(channels, hidden, batch_first=True)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, poses: Tensor) -> Tensor:
        b, t = poses.shape[:2]
        h = self.block(F.leaky_relu(self.inp(poses.reshape(b, t, -1).transpose(1, 2)), 0.2))
        seq, _ = self.rnn(h.transpose(1, 2))  # (B, T, hidden)
        return self.out(seq.mean(1))
