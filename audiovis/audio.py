"""Audio front-ends as ``nn.Module``s: batched waveforms → time-frequency features on any device.

Each front-end maps (B, S) waveforms to (B, F, N) features with ``N = S // hop_length + 1``
frames (centred windows), so it can be a model's first layer and is chosen in YAML by
``class_path`` (``audiovis.audio.CQT``, ``LogMel``, ``Chroma``, ``OnsetEnvelope``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AudioFrontEnd(nn.Module):
    """Base class: records the rate, hop and feature count a model needs to size itself.

    Attributes:
        sample_rate: rate of the input waveform, Hz.
        hop_length: samples between feature frames.
        num_features: F, the feature dimension of the output.
    """

    sample_rate: int
    hop_length: int
    num_features: int
    #: the arguments the front-end was built with, so a checkpoint can rebuild it
    init_args: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__init__

        @functools.wraps(init)  # keeps the signature that LightningCLI reads
        def recording_init(self: AudioFrontEnd, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self) is cls:  # the most derived class's arguments
                bound = inspect.signature(init).bind(self, *args, **kw)
                bound.apply_defaults()
                self.init_args = {k: v for k, v in list(bound.arguments.items())[1:]}

        cls.__init__ = recording_init  # type: ignore[method-assign,assignment]

    def spec(self) -> dict[str, Any]:
        """``{"class_path": ..., "init_args": ...}``, as in a config file."""
        kind = type(self)
        return {"class_path": f"{kind.__module__}.{kind.__qualname__}",
                "init_args": dict(self.init_args)}  # fmt: skip

    @staticmethod
    def from_spec(spec: dict[str, Any]) -> AudioFrontEnd:
        """The front-end a :meth:`spec` describes (only audiovis front-ends are rebuilt)."""
        module, _, name = str(spec["class_path"]).rpartition(".")
        if not module.startswith("audiovis."):
            raise ValueError(f"not an audiovis front-end: {spec['class_path']}")
        kind = getattr(importlib.import_module(module), name)
        if not (isinstance(kind, type) and issubclass(kind, AudioFrontEnd)):
            raise ValueError(f"not an audio front-end: {spec['class_path']}")
        return kind(**spec.get("init_args", {}))

    def num_frames(self, num_samples: int) -> int:
        """Feature frames produced for a waveform of ``num_samples`` samples."""
        return num_samples // self.hop_length + 1

    @staticmethod
    def _as_batch(audio: Tensor) -> Tensor:
        if audio.dim() == 1:
            audio = audio[None]
        if audio.dim() != 2:
            raise ValueError(f"expected waveforms (B, S), got shape {tuple(audio.shape)}")
        return audio.float()  # spectral transforms stay in fp32 under autocast


class CQT(AudioFrontEnd):
    """Constant-Q transform (nnAudio ``CQT1992v2``), log-compressed.

    Args:
        sample_rate: input rate, Hz.
        hop_length: samples between frames.
        n_bins: number of frequency bins (84 = 7 octaves at 12 bins per octave).
        bins_per_octave: resolution.
        fmin: lowest bin centre, Hz (32.7 Hz = C1).
        log: apply ``log1p(100 · magnitude)``.

    Shape:
        (B, S) → (B, n_bins, S // hop_length + 1)
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        hop_length: int = 256,
        n_bins: int = 84,
        bins_per_octave: int = 12,
        fmin: float = 32.70,
        log: bool = True,
    ) -> None:
        super().__init__()
        from nnAudio.features import CQT1992v2

        fmax = fmin * 2 ** (n_bins / bins_per_octave)
        if fmax > sample_rate / 2:
            raise ValueError(
                f"CQT: {n_bins} bins from {fmin} Hz reach {fmax:.0f} Hz, above the Nyquist "
                f"frequency of {sample_rate} Hz audio; lower n_bins or raise sample_rate"
            )
        self.sample_rate, self.hop_length, self.num_features = sample_rate, hop_length, n_bins
        self.log, self.fmin, self.bins_per_octave = log, fmin, bins_per_octave
        self.cqt = CQT1992v2(
            sr=sample_rate,
            hop_length=hop_length,
            fmin=fmin,
            n_bins=n_bins,
            bins_per_octave=bins_per_octave,
            output_format="Magnitude",
            pad_mode="constant",
            verbose=False,
        )  # reflect fails on short clips

    def first_midi(self) -> float:
        """The MIDI pitch of the lowest bin's centre (24.0 for C1)."""
        return 69.0 + 12.0 * math.log2(self.fmin / 440.0)

    def forward(self, audio: Tensor) -> Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            spec = self.cqt(self._as_batch(audio))  # (B, n_bins, N)
            return torch.log1p(100.0 * spec) if self.log else spec


class LogMel(AudioFrontEnd):
    """Log-mel spectrogram (torchaudio).

    Shape:
        (B, S) → (B, n_mels, S // hop_length + 1)
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mels: int = 80,
        f_min: float = 20.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__()
        import torchaudio.transforms as T

        self.sample_rate, self.hop_length, self.num_features = sample_rate, hop_length, n_mels
        self.mel = T.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            power=2.0,
            center=True,
        )

    def forward(self, audio: Tensor) -> Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            return torch.log(self.mel(self._as_batch(audio)) + 1e-6)


def chroma_filterbank(
    sample_rate: int, n_fft: int, n_chroma: int = 12, fmin: float = 55.0, fmax: float = 5000.0
) -> Tensor:
    """Weights mapping STFT bins to pitch classes (C = 0), triangular in pitch distance.

    Each FFT bin between ``fmin`` and ``fmax`` contributes to the pitch class nearest its
    frequency, weighted 1 at the class centre falling to 0 one class away (cyclically).

    Shape:
        (n_chroma, n_fft // 2 + 1)
    """
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    valid = (freqs >= fmin) & (freqs <= fmax)
    midi = 69 + 12 * torch.log2(freqs.clamp(min=1e-3) / 440.0)
    pitch = (midi * n_chroma / 12.0) % n_chroma  # continuous pitch class in [0, n_chroma)
    centres = torch.arange(n_chroma, dtype=torch.float64)[:, None]
    dist = (pitch[None] - centres).abs()
    dist = torch.minimum(dist, n_chroma - dist)
    weights = (1.0 - dist).clamp(min=0.0) * valid[None]
    return weights.float()


class Chroma(AudioFrontEnd):
    """Chromagram: STFT power folded onto pitch classes, each frame normalised to max 1.

    Shape:
        (B, S) → (B, n_chroma, S // hop_length + 1)
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 2048,
        hop_length: int = 256,
        n_chroma: int = 12,
        fmin: float = 55.0,
        fmax: float = 5000.0,
    ) -> None:
        super().__init__()
        self.sample_rate, self.hop_length, self.num_features = sample_rate, hop_length, n_chroma
        self.n_fft = n_fft
        self.window: Tensor
        self.fb: Tensor
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer(
            "fb", chroma_filterbank(sample_rate, n_fft, n_chroma, fmin, fmax), persistent=False
        )

    def forward(self, audio: Tensor) -> Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            spec = torch.stft(
                self._as_batch(audio),
                self.n_fft,
                self.hop_length,
                window=self.window,
                center=True,
                return_complex=True,
            )
            chroma = self.fb @ spec.abs().pow(2)  # (B, n_chroma, N)
            return chroma / chroma.amax(dim=1, keepdim=True).clamp(min=1e-8)


class OnsetEnvelope(AudioFrontEnd):
    """Onset strength: positive log-mel flux averaged over bands (spectral flux).

    Shape:
        (B, S) → (B, 1, S // hop_length + 1); the first frame is 0.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mels: int = 64,
    ) -> None:
        super().__init__()
        self.sample_rate, self.hop_length, self.num_features = sample_rate, hop_length, 1
        self.logmel = LogMel(sample_rate, n_fft, hop_length, n_mels)

    def forward(self, audio: Tensor) -> Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            mel = self.logmel(audio)  # (B, M, N)
            flux = F.relu(mel[..., 1:] - mel[..., :-1]).mean(dim=1, keepdim=True)
            return F.pad(flux, (1, 0))


def frames_to_video_rate(features: Tensor, num_frames: int) -> Tensor:
    """Resample feature frames (B, F, N) to one vector per video frame (B, num_frames, F).

    Averages the feature frames that fall in each video frame's time span (adaptive average
    pooling), so any hop length lines up with any fps.
    """
    pooled = F.adaptive_avg_pool1d(features, num_frames)  # (B, F, T)
    return pooled.transpose(1, 2)


def hop_for(sample_rate: int, fps: float, per_frame: int = 4) -> int:
    """A hop length giving about ``per_frame`` feature frames per video frame."""
    return max(1, math.floor(sample_rate / fps / per_frame))
