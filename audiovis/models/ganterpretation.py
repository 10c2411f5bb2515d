"""GANterpretations (Castro, NeurIPS 2020 creativity workshop): a video that walks a
class-conditional GAN between classes as fast as the audio's spectrum changes, with the
generator to walk — a BigGAN-style ClassConditionalGAN trained on studio frames — or BigGAN-deep
loaded from a local file.

The walk: spectrogram (NFFT 256, hop 128) → per-column change mean |S[:, i] − S[:, i + 1]|,
normalised by its maximum → running mean → inflection points (extrema that stand out from the
rolling means before and after them by more than a threshold). Each inflection point gets a
class and a fresh noise vector; between two of them the class vector and z move from one to the
next with α = the change accumulated since the first, normalised over the segment, so the image
moves when the music moves and rests when it rests.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from scipy.ndimage import uniform_filter1d
from torch import Tensor, nn

from audiovis.callbacks import MediaSample
from audiovis.data.schema import LABELS
from audiovis.errors import AudiovisError, FileProblem
from audiovis.losses import hinge_discriminator_loss, hinge_generator_loss
from audiovis.media import SILENCE, VideoWriter, to_uint8
from audiovis.models.base import GANModule
from audiovis.networks.biggan import (
    ConditionalGenerator,
    ProjectionDiscriminator,
    biggan_from_state_dict,
    load_biggan,
    truncated_noise,
)

#: the original's time constants at 44.1 kHz: 256 smoothing and 200 rolling columns of hop 128
SMOOTHING_SECONDS = 256 * 128 / 44100
ROLLING_SECONDS = 200 * 128 / 44100


class WalkableGenerator(Protocol):
    """What the Ganterpreter walks: (z, class vectors, truncation) → images in [-1, 1]."""

    z_dim: int
    num_classes: int
    image_size: int

    def __call__(self, z: Tensor, y: Tensor, truncation: float) -> Tensor: ...


# --------------------------------------------------------------------- the change curve


def spectral_change(
    audio: np.ndarray, n_fft: int = 256, hop_length: int = 128, chunk: int = 8192
) -> np.ndarray:
    """Mean absolute difference between consecutive power-spectrum columns.

    Computed ``chunk`` columns at a time, so memory does not grow with the audio's length
    beyond the waveform itself.

    Args:
        audio: (S,) mono waveform.
        n_fft: window (Hann) and FFT size.
        hop_length: samples between columns.

    Returns:
        (N − 1,) change between columns i and i + 1, for N columns (N ≥ 2).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < n_fft + hop_length:
        audio = np.pad(audio, (0, n_fft + hop_length - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop_length]  # (N, n_fft)
    window = np.hanning(n_fft).astype(np.float32)
    out, last = [], None
    for start in range(0, len(frames), chunk):
        spec = np.abs(np.fft.rfft(frames[start : start + chunk] * window, axis=1)) ** 2
        if last is not None:
            spec = np.concatenate([last, spec])
        out.append(np.abs(np.diff(spec, axis=0)).mean(axis=1))
        last = spec[-1:]
    return np.concatenate(out).astype(np.float64)


@dataclass
class ChangeCurve:
    """The audio's change measure at column rate.

    Attributes:
        times: (N,) seconds of each value.
        raw: (N,) change normalised by its maximum (zeros for silence).
        smooth: (N,) its centred running mean, normalised by its maximum.
        silent: no change at all (silence or a constant signal).
    """

    times: np.ndarray
    raw: np.ndarray
    smooth: np.ndarray
    silent: bool

    def at(self, times: np.ndarray, smooth: bool = True) -> np.ndarray:
        """The curve sampled at ``times`` (seconds)."""
        return np.interp(times, self.times, self.smooth if smooth else self.raw)


def change_curve(
    audio: np.ndarray,
    sample_rate: int,
    n_fft: int = 256,
    hop_length: int = 128,
    smoothing: float = SMOOTHING_SECONDS,
) -> ChangeCurve:
    """The change measure of ``audio``: normalised, smoothed over ``smoothing`` seconds.

    Unlike the original, the running mean is centred (a trailing one makes the images change
    half a window late) and the smoothed curve is normalised by its own maximum too (after
    smoothing, a curve normalised by its largest spike peaks anywhere from 0.01 to 0.6, so
    one threshold would mean different things for different recordings).
    """
    diffs = spectral_change(audio, n_fft, hop_length)
    times = ((np.arange(len(diffs)) + 0.5) * hop_length + n_fft / 2) / sample_rate
    peak = float(diffs.max()) if len(diffs) else 0.0
    silent = peak <= 1e-20 or float(np.abs(audio).max(initial=0.0)) < SILENCE
    raw = np.zeros_like(diffs) if silent else diffs / peak
    width = max(1, int(round(smoothing * sample_rate / hop_length)))
    smooth = uniform_filter1d(raw, size=width, mode="nearest") if width > 1 else raw.copy()
    if not silent:
        # normalised again after smoothing, so a threshold means the same for every recording
        smooth /= max(float(smooth.max()), 1e-12)
    return ChangeCurve(times=times, raw=raw, smooth=smooth, silent=silent)


def inflection_points(
    curve: np.ndarray, threshold: float, rolling: int, kind: str = "both"
) -> tuple[np.ndarray, float]:
    """Extrema of ``curve`` that stand out from their neighbourhood.

    Index ``i`` is an inflection point when it is a local extremum lying on the same side
    (above for a peak, below for a trough) of the mean of the ``rolling`` values before it and
    of the ``rolling`` values after it, by more than ``threshold`` from both. After a point is
    taken, the next is looked for at least ``rolling`` values later.

    Args:
        curve: (N,) values.
        threshold: least distance from both rolling means.
        rolling: length of the rolling means.
        kind: ``"both"``, ``"max"`` (peaks only) or ``"min"`` (troughs only).

    Returns:
        the interior indices (ascending; neither end of the curve) and the largest distance
        any extremum of the kind stands out by (what the threshold must stay under).
    """
    if kind not in ("both", "max", "min"):
        raise AudiovisError(f"inflection kind must be 'both', 'max' or 'min', got {kind!r}")
    if threshold < 0 or rolling < 1:
        raise AudiovisError(f"threshold must be >= 0 and rolling >= 1, got {threshold}, {rolling}")
    x = np.asarray(curve, dtype=np.float64)
    n = len(x)
    idx = np.arange(rolling, n - rolling - 1)
    if len(idx) == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    c = np.concatenate([[0.0], np.cumsum(x)])
    before = (c[idx] - c[idx - rolling]) / rolling  # mean of x[i - L : i]
    after = (c[idx + 1 + rolling] - c[idx + 1]) / rolling  # mean of x[i + 1 : i + 1 + L]
    v = x[idx]
    peak = (v > x[idx - 1]) & (v > x[idx + 1]) & (v > before) & (v > after)
    trough = (v < x[idx - 1]) & (v < x[idx + 1]) & (v < before) & (v < after)
    shape = {"both": peak | trough, "max": peak, "min": trough}[kind]
    stand_out = np.minimum(np.abs(v - before), np.abs(v - after))
    largest = float(stand_out[shape].max(initial=0.0))
    chosen, last = [], -(10**18)
    for i in idx[shape & (stand_out > threshold)]:
        if i >= last + rolling:
            chosen.append(int(i))
            last = i
    return np.asarray(chosen, dtype=np.int64), largest


# ------------------------------------------------------------------------------- beats


def beat_times(audio: np.ndarray, sample_rate: int, tightness: float = 100.0) -> np.ndarray:
    """Beat times (seconds) by dynamic programming over an onset envelope (Ellis 2007).

    The tempo is the autocorrelation peak of the spectral-flux envelope between 60 and 200
    BPM; beats are the onsets that best fit a grid of that period.
    """
    from audiovis.audio import OnsetEnvelope

    hop = 256 if sample_rate >= 16000 else 128
    with torch.no_grad():
        env = OnsetEnvelope(sample_rate, n_fft=4 * hop, hop_length=hop)(
            torch.from_numpy(np.asarray(audio, np.float32))[None]
        )[0, 0].numpy().astype(np.float64)  # fmt: skip
    rate = sample_rate / hop
    if env.std() <= 1e-9 or len(env) < 4 * rate:
        return np.zeros(0)
    env = (env - env.mean()) / env.std()
    lags = np.arange(int(rate * 60 / 200), int(rate * 60 / 60) + 1)
    ac = np.array([np.dot(env[:-lag], env[lag:]) for lag in lags])
    period = float(lags[int(np.argmax(ac))])
    score = env.copy()
    back = np.full(len(env), -1)
    window = np.arange(-int(2 * period), -int(period / 2) + 1)
    penalty = -tightness * np.log(-window / period) ** 2
    for t in range(len(env)):
        prev = t + window
        ok = prev >= 0
        if not ok.any():
            continue
        cand = score[prev[ok]] + penalty[ok]
        best = int(np.argmax(cand))
        score[t] = env[t] + cand[best]
        back[t] = prev[ok][best]
    t = int(np.argmax(score[-int(period) :])) + len(env) - int(period)
    beats = []
    while t >= 0:
        beats.append(t)
        t = int(back[t])
    return np.asarray(beats[::-1], dtype=np.float64) / rate


# ------------------------------------------------------------------------------ the walk


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of rows: keeps the noise's norm where a line would shrink it.

    Shape:
        a, b (N, D), t (N,) → (N, D).
    """
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = np.clip((a * b).sum(1) / np.maximum(na * nb, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)[:, None]
    t = t[:, None]
    so = np.sin(omega)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / so
    linear = (1 - t) * a + t * b
    return np.where(so < 1e-6, linear, out)  # type: ignore[no-any-return]


@dataclass
class WalkPlan:
    """Where the walk is at every frame: small per-frame arrays, latents made per batch.

    Attributes:
        fps: frame rate.
        num_frames: round(duration · fps).
        curve: the change curve at column rate.
        change: (T,) the smoothed change at each frame's centre.
        keys: (K,) frames of the inflection points, the first and the last frame included.
        classes: (K,) the class at each key frame.
        noise: (K, z_dim) the z drawn at each key frame.
        alpha: (T,) position between the key frames around each frame, in [0, 1].
        segment: (T,) index of the key frame before each frame.
        beats: frames of the beats (empty without pulses).
        pulse: strength of the beat pulses; ``pulse_decay`` their decay in seconds.
        pulse_noise: (len(beats), z_dim) a direction per beat.
    """

    fps: float
    num_frames: int
    curve: ChangeCurve
    change: np.ndarray
    keys: np.ndarray
    classes: np.ndarray
    noise: np.ndarray
    alpha: np.ndarray
    segment: np.ndarray
    beats: np.ndarray
    pulse: float
    pulse_decay: float
    pulse_noise: np.ndarray

    def latents(self, start: int, stop: int, num_classes: int) -> tuple[Tensor, Tensor]:
        """z (n, z_dim) and class vectors (n, num_classes) for frames [start, stop)."""
        frames = np.arange(start, stop)
        seg, a = self.segment[frames], self.alpha[frames]
        z = slerp(self.noise[seg], self.noise[seg + 1], a)
        y = np.zeros((len(frames), num_classes), np.float32)
        rows = np.arange(len(frames))
        np.add.at(y, (rows, self.classes[seg]), 1 - a)
        np.add.at(y, (rows, self.classes[seg + 1]), a)
        if self.pulse > 0 and len(self.beats):
            last = np.searchsorted(self.beats, frames, side="right") - 1
            hit = last >= 0
            since = (frames[hit] - self.beats[last[hit]]) / self.fps
            envelope = np.exp(-since / self.pulse_decay)[:, None]
            z[hit] = z[hit] + self.pulse * envelope * self.pulse_noise[last[hit]]
        return torch.from_numpy(z.astype(np.float32)), torch.from_numpy(y)


class Ganterpreter:
    """Audio → a walk through a class-conditional generator → video frames.

    Args:
        generator: what to walk (a :class:`~audiovis.networks.biggan.ConditionalGenerator`,
            :class:`~audiovis.networks.biggan.BigGANDeep`, anything with ``z_dim``,
            ``num_classes`` and ``(z, y, truncation) → images``).
        fps: output frame rate (frames are timed to the audio, not one per spectrum column).
        threshold: how far an extremum of the smoothed change (normalised to peak at 1) must
            stand out from the rolling means around it to become an inflection point. The
            original's default is 0.035 on its differently normalised curve; on ours that gives
            about one point a second on studio music, each segment then gets a whole class
            transition however little happens in it, and the image change follows the
            music less (bench/results/ganterpretation_coupling.json): 0.1 by default.
        kind: inflection points at ``"both"`` peaks and troughs, ``"max"`` or ``"min"`` only.
        smoothing: running-mean length in seconds (the original's 256 columns at 44.1 kHz).
        rolling: rolling-mean length in seconds (the original's 200 columns).
        n_fft: spectrogram window; ``hop_length`` its hop (the original's 256 and 128).
        truncation: noise truncation (BigGAN-deep also picks its norm statistics by it).
        beat_pulse: strength of a pulse added to z on each beat (0: none).
        pulse_decay: the pulse's decay time in seconds.
        seed: random classes, noise and pulse directions come from this seed.
        batch_size: frames generated at once.
        device: where the generator runs.
        class_names: names of the generator's classes, for messages.
    """

    def __init__(
        self,
        generator: WalkableGenerator | nn.Module,
        fps: float = 25.0,
        threshold: float = 0.1,
        kind: str = "both",
        smoothing: float = SMOOTHING_SECONDS,
        rolling: float = ROLLING_SECONDS,
        n_fft: int = 256,
        hop_length: int = 128,
        truncation: float = 0.4,
        beat_pulse: float = 0.0,
        pulse_decay: float = 0.25,
        seed: int = 0,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
        class_names: Sequence[str] | None = None,
    ) -> None:
        if fps <= 0 or batch_size < 1 or smoothing < 0 or rolling <= 0:
            raise AudiovisError("fps, batch_size and rolling must be > 0, smoothing >= 0")
        if not 0 < truncation <= 1:
            raise AudiovisError(f"truncation must be in (0, 1], got {truncation}")
        if kind not in ("both", "max", "min"):
            raise AudiovisError(f"kind must be 'both', 'max' or 'min', got {kind!r}")
        if threshold < 0:
            raise AudiovisError(f"threshold must be >= 0, got {threshold}")
        self.generator = generator
        self.fps, self.threshold, self.kind = fps, threshold, kind
        self.smoothing, self.rolling = smoothing, rolling
        self.n_fft, self.hop_length = n_fft, hop_length
        self.truncation, self.beat_pulse, self.pulse_decay = truncation, beat_pulse, pulse_decay
        self.seed, self.batch_size, self.device = seed, batch_size, torch.device(device)
        self.num_classes = int(getattr(generator, "num_classes"))  # noqa: B009
        self.z_dim = int(getattr(generator, "z_dim"))  # noqa: B009
        self.class_names = list(class_names) if class_names else None

    def check_classes(self, classes: Sequence[int]) -> list[int]:
        """The class ids, each checked against the generator."""
        bad = [c for c in classes if not 0 <= int(c) < self.num_classes]
        if bad:
            names = f" ({', '.join(self.class_names)})" if self.class_names else ""
            raise AudiovisError(
                f"unknown class id(s) {bad}: the generator has {self.num_classes} classes, "
                f"0..{self.num_classes - 1}{names}"
            )
        return [int(c) for c in classes]

    def plan(
        self, audio: np.ndarray, sample_rate: int, classes: Sequence[int] | None = None
    ) -> WalkPlan:
        """Analyse ``audio`` and lay out the walk.

        Args:
            audio: (S,) mono waveform.
            sample_rate: its rate.
            classes: the class of each inflection point in order (the first frame's first);
                points beyond the list get random classes from the seed. ``None``: all random.

        Raises:
            AudiovisError: a threshold no point of a non-silent audio's curve crosses, or an
                unknown class id. Silent audio is no error: the video drifts slowly from one
                class to the next over its whole length.
        """
        given = self.check_classes(classes or [])
        rng = np.random.default_rng(self.seed)
        duration = len(audio) / sample_rate
        num_frames = max(1, int(round(duration * self.fps)))
        curve = change_curve(audio, sample_rate, self.n_fft, self.hop_length, self.smoothing)
        times = (np.arange(num_frames) + 0.5) / self.fps
        rolling = max(1, int(round(self.rolling * sample_rate / self.hop_length)))
        if curve.silent:
            warnings.warn("the audio is silent: the video drifts slowly between two classes",
                          stacklevel=2)  # fmt: skip
            points = np.zeros(0, dtype=np.int64)
        else:
            points, largest = inflection_points(curve.smooth, self.threshold, rolling, self.kind)
            if len(points) == 0:
                hint = (
                    f"use a threshold below {largest:.3g}, e.g. {largest / 2:.2g}"
                    if largest > 0
                    else f"the audio ({duration:.1f} s) is too short for rolling means of "
                    f"{self.rolling:.2f} s: shorten them"
                )
                raise AudiovisError(
                    f"no point of the audio's change curve crosses the threshold "
                    f"{self.threshold:g} ({self.kind} extrema stand out by at most "
                    f"{largest:.3g}); {hint}"
                )
        point_frames = np.clip(np.round(curve.times[points] * self.fps - 0.5), 0, num_frames - 1)
        keys = np.unique(np.concatenate([[0], point_frames, [num_frames - 1]])).astype(np.int64)
        if len(keys) == 1:  # a one-frame video
            keys = np.zeros(2, dtype=np.int64)
        alpha, segment = self._alphas(curve, keys, times, num_frames)
        chosen = self._classes(given, len(keys), rng)
        noise = truncated_noise(len(keys), self.z_dim, self.truncation, rng)
        beats = np.zeros(0, dtype=np.int64)
        if self.beat_pulse > 0 and not curve.silent:
            beats = np.unique(np.round(beat_times(audio, sample_rate) * self.fps - 0.5))
            beats = beats[(beats >= 0) & (beats < num_frames)].astype(np.int64)
        pulse_noise = truncated_noise(len(beats), self.z_dim, self.truncation, rng)
        return WalkPlan(fps=self.fps, num_frames=num_frames, curve=curve,
                        change=curve.at(times), keys=keys, classes=np.asarray(chosen),
                        noise=noise, alpha=alpha, segment=segment, beats=beats,
                        pulse=self.beat_pulse, pulse_decay=self.pulse_decay,
                        pulse_noise=pulse_noise)  # fmt: skip

    def _alphas(
        self, curve: ChangeCurve, keys: np.ndarray, times: np.ndarray, num_frames: int
    ) -> tuple[np.ndarray, np.ndarray]:
        # α rises with the change accumulated since the segment's first key frame
        frames = np.arange(num_frames)
        segment = np.clip(np.searchsorted(keys, frames, side="right") - 1, 0, len(keys) - 2)
        activity = np.concatenate([[0.0], np.cumsum(curve.smooth)])
        column = np.concatenate([[0.0], curve.times])
        done = np.interp(times, column, activity)  # (T,) change accumulated by each frame
        lo, hi = keys[segment], keys[segment + 1]
        span = done[hi] - done[lo]
        linear = (frames - lo) / np.maximum(hi - lo, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            by_change = (done - done[lo]) / span
        alpha = np.where(span > 1e-9 * max(activity[-1], 1e-12), by_change, linear)
        return np.clip(alpha, 0.0, 1.0), segment

    def _classes(self, given: list[int], count: int, rng: np.random.Generator) -> list[int]:
        chosen = given[:count]
        pool = np.arange(self.num_classes)
        while len(chosen) < count:
            options = pool[pool != chosen[-1]] if chosen and self.num_classes > 1 else pool
            chosen.append(int(rng.choice(options)))
        return chosen

    @torch.no_grad()
    def frames(self, plan: WalkPlan) -> Iterator[np.ndarray]:
        """The video, ``batch_size`` frames at a time, as (n, H, W, 3) uint8."""
        generator = self.generator
        if isinstance(generator, nn.Module):
            generator.eval()
        for start in range(0, plan.num_frames, self.batch_size):
            stop = min(start + self.batch_size, plan.num_frames)
            z, y = plan.latents(start, stop, self.num_classes)
            images = generator(z.to(self.device), y.to(self.device), self.truncation)
            yield to_uint8(images)

    def render(
        self,
        audio: np.ndarray,
        sample_rate: int,
        out: str | os.PathLike[str],
        classes: Sequence[int] | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> tuple[Path, WalkPlan]:
        """Write the video of ``audio`` with the audio muxed in, streaming the frames.

        Args:
            progress: called with the number of frames of each batch written.
        """
        plan = self.plan(audio, sample_rate, classes)
        with VideoWriter(out, self.fps, audio=audio, sample_rate=sample_rate) as writer:
            for batch in self.frames(plan):
                writer.write(batch)
                if progress is not None:
                    progress(len(batch))
        return Path(out), plan


# ------------------------------------------------------------------------- loading generators


def _as_checkpoint_generator(path: Path, checkpoint: dict[str, Any]) -> ConditionalGenerator:
    state = checkpoint.get("state_dict", {})
    hp = checkpoint.get("hyper_parameters", {}) or {}
    weights = {k.removeprefix("generator."): v for k, v in state.items()
               if k.startswith("generator.")}  # fmt: skip
    if "embed.weight" not in weights or "num_classes" not in hp:
        raise FileProblem(path, "is a Lightning checkpoint of another model: it holds no "
                                "ClassConditionalGAN generator")  # fmt: skip
    generator = ConditionalGenerator(
        num_classes=int(hp["num_classes"]), image_size=int(hp.get("image_size", 64)),
        channels=int(hp.get("channels", 32)), z_dim=int(hp.get("z_dim", 128)),
        embed_dim=int(hp.get("embed_dim", 128)), attention=hp.get("attention", 64),
    )  # fmt: skip
    try:
        generator.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise FileProblem(path, f"its generator does not fit its hyper-parameters ({first})") \
            from None  # fmt: skip
    return generator.eval()


def load_generator(path: str | os.PathLike[str]) -> tuple[nn.Module, list[str] | None]:
    """A generator to walk from a local file: a ClassConditionalGAN checkpoint (``.ckpt``), or
    BigGAN-deep weights in the ``pytorch-pretrained-biggan`` layout (a folder or its
    ``pytorch_model.bin``).

    Returns:
        the generator (eval mode) and its class names when the checkpoint records them.

    Raises:
        FileProblem: a missing or unreadable file, or the weights of another model.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        return load_biggan(path), None
    if not path.is_file():
        raise FileProblem(path, "no such file (a ClassConditionalGAN .ckpt or BigGAN weights)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError,
            UnicodeDecodeError, ValueError) as err:  # fmt: skip
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise FileProblem(path, f"is not a PyTorch checkpoint or weights file "
                                f"({first[:200]})") from None  # fmt: skip
    if isinstance(obj, dict) and "state_dict" in obj:
        names = obj.get("class_names")
        return _as_checkpoint_generator(path, obj), list(names) if names else None
    if isinstance(obj, dict) and all(isinstance(v, Tensor) for v in obj.values()):
        return biggan_from_state_dict(obj, path), None
    raise FileProblem(path, f"holds a {type(obj).__name__}, neither a ClassConditionalGAN "
                            "checkpoint nor BigGAN-deep weights")  # fmt: skip


# ---------------------------------------------------------------------------- the GAN to walk


def sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor) -> Tensor:
    """Sliced Wasserstein-1 distance between two equal-sized point sets: the mean over
    directions of the 1-D distance between the sorted projections.

    Shape:
        a, b (N, D), directions (D, P) unit columns → scalar.
    """
    pa, pb = (a @ directions).sort(dim=0).values, (b @ directions).sort(dim=0).values
    return (pa - pb).abs().mean()


class ClassConditionalGAN(GANModule):
    """A BigGAN-style class-conditional image GAN over performance frames, the zoo's own
    generator to walk: the class is a performance label (instrument, dance style or performer).

    Hinge loss, spectral norm in both networks, conditional batch norm in the generator, a
    projection discriminator, self-attention at 64 px. ``val/loss`` is the sliced Wasserstein
    distance between validation frames and generated frames of the same classes at 16 px
    (lower is better; a GAN's own losses do not measure quality).

    Args:
        label: the label that names the classes: ``instrument``, ``style`` or ``performer``.
        num_classes: classes of the generator (at least the dataset's classes of ``label``;
            6 covers every label of the default studio dataset).
        image_size: frame side (the data's ``image_size``), 32..128.
        channels: base width of both networks.
        z_dim: noise size; ``embed_dim``: class embedding size.
        attention: side where self-attention sits (``None``: none).
        frames_per_clip: frames taken from each training clip (neighbours are near copies).
        truncation: noise truncation of the samples shown and of ``predict``'s walks.
        fps, sample_rate: of ``predict``'s videos (the data's).
        threshold: ``predict``'s inflection threshold (see :class:`Ganterpreter`).
    """

    streams: ClassVar[tuple[str, ...]] = ("video", "instrument")
    generator: ConditionalGenerator
    discriminator: ProjectionDiscriminator

    def __init__(
        self,
        label: str = "instrument",
        num_classes: int = 6,
        image_size: int = 64,
        channels: int = 32,
        z_dim: int = 128,
        embed_dim: int = 128,
        attention: int | None = 64,
        frames_per_clip: int = 2,
        truncation: float = 0.4,
        fps: float = 25.0,
        sample_rate: int = 16000,
        threshold: float = 0.1,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 2,
        gradient_clip: float | None = None,
    ) -> None:
        super().__init__(generator_optimizer, discriminator_optimizer, generator_scheduler,
                         discriminator_scheduler, n_critic, gradient_clip)  # fmt: skip
        self.save_hyperparameters(
            ignore=[
                "generator_optimizer",
                "discriminator_optimizer",
                "generator_scheduler",
                "discriminator_scheduler",
            ]
        )
        if label not in LABELS:
            raise AudiovisError(f"model.label must be one of {list(LABELS)}, got {label!r}")
        if num_classes < 1 or frames_per_clip < 1:
            raise AudiovisError("model.num_classes and model.frames_per_clip must be >= 1")
        # the DataModule reads the streams off the instance: the label is the model's choice
        self.streams = ("video", label)  # type: ignore[misc]
        self.label, self.num_classes, self.image_size = label, num_classes, image_size
        self.z_dim, self.frames_per_clip, self.truncation = z_dim, frames_per_clip, truncation
        self.fps, self.sample_rate, self.threshold = fps, sample_rate, threshold
        try:
            self.generator = ConditionalGenerator(num_classes, image_size, channels, z_dim,
                                                  embed_dim, attention)  # fmt: skip
            self.discriminator = ProjectionDiscriminator(num_classes, image_size, channels,
                                                         attention)  # fmt: skip
        except ValueError as err:
            raise AudiovisError(f"model: {err}") from None
        self.class_names: list[str] = []
        directions = F.normalize(
            torch.randn(3 * 16 * 16, 64, generator=torch.Generator().manual_seed(0)), dim=0
        )
        self.swd_directions: Tensor
        self.register_buffer("swd_directions", directions, persistent=False)

    # --------------------------------------------------------------------------- set-up

    def setup(self, stage: str) -> None:
        manifest = getattr(getattr(self.trainer, "datamodule", None), "manifest", None)
        if manifest is None:
            return
        names = list(manifest.classes.get(self.label, []))
        if len(names) > self.num_classes:
            raise AudiovisError(
                f"the dataset has {len(names)} {self.label} classes ({', '.join(names)}) but "
                f"model.num_classes is {self.num_classes}; set it to {len(names)} or more"
            )
        self.class_names = names

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["class_names"] = list(self.class_names)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.class_names = list(checkpoint.get("class_names") or [])

    # ----------------------------------------------------------------------------- steps

    def images(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Frames (N, 3, H, W) spread over each clip and their class ids (N,)."""
        video, labels = batch["video"], batch[self.label]
        b, t = video.shape[:2]
        pick = torch.linspace(0, t - 1, min(self.frames_per_clip, t)).round().long()
        frames = video[:, pick].flatten(0, 1)
        classes = labels.long().repeat_interleave(len(pick))
        if int(classes.max()) >= self.num_classes:
            raise AudiovisError(f"a {self.label} class id {int(classes.max())} is beyond "
                                f"model.num_classes {self.num_classes}")  # fmt: skip
        return frames, classes

    def sample(
        self,
        classes: Tensor,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
    ) -> Tensor:
        """Generated frames (N, 3, H, W) of the given classes.

        Args:
            classes: (N,) class ids.
            generator: seeds z (fresh noise when ``None``).
            truncation: z from a normal truncated to [-2, 2] times this (``None``: a plain
                standard normal, as in training and validation).
        """
        if truncation is None:
            z = torch.randn(len(classes), self.z_dim, generator=generator)
            return self.generator(z.to(self.device), classes)  # type: ignore[no-any-return]
        seed = int(torch.randint(0, 2**31, (1,), generator=generator))
        z = torch.from_numpy(
            truncated_noise(len(classes), self.z_dim, truncation, np.random.default_rng(seed))
        )
        return self.generator(z.to(self.device), classes, truncation)  # type: ignore[no-any-return]

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        real, classes = self.images(batch)
        with torch.no_grad():
            fake = self.sample(classes)
        real_scores = self.discriminator(real, classes)
        fake_scores = self.discriminator(fake, classes)
        loss = hinge_discriminator_loss(real_scores, fake_scores)
        return loss, {"train/d_real": real_scores.mean().detach(),
                      "train/d_fake": fake_scores.mean().detach()}  # fmt: skip

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        _, classes = self.images(batch)
        scores = self.discriminator(self.sample(classes), classes)
        return hinge_generator_loss(scores), {}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        real, classes = self.images(batch)
        fake = self.sample(classes, torch.Generator().manual_seed(batch_idx))
        d_loss = hinge_discriminator_loss(self.discriminator(real, classes),
                                          self.discriminator(fake, classes))  # fmt: skip
        small = [F.interpolate(x.float(), size=16, mode="area").flatten(1) for x in (real, fake)]
        loss = sliced_wasserstein(small[0], small[1], self.swd_directions.to(small[0]))
        self.log_dict({"val/loss": loss, "val/d_loss": d_loss}, prog_bar=True,
                      batch_size=len(real))  # fmt: skip
        return loss

    # ---------------------------------------------------------------------------- outputs

    @torch.no_grad()
    def sample_grid(self, per_class: int = 4, seed: int = 0) -> np.ndarray:
        """A grid image, one row per class: (rows·S, per_class·S, 3) uint8."""
        count = len(self.class_names) or self.num_classes
        classes = torch.arange(count, device=self.device).repeat_interleave(per_class)
        was_training = self.generator.training
        self.generator.eval()
        images = to_uint8(
            self.sample(classes, torch.Generator().manual_seed(seed), self.truncation)
        )
        self.generator.train(was_training)
        s = self.image_size
        return images.reshape(count, per_class, s, s, 3).transpose(0, 2, 1, 3, 4).reshape(
            count * s, per_class * s, 3)  # fmt: skip

    def media_samples(self, batch: dict[str, Tensor]) -> list[MediaSample]:
        return [MediaSample(name="samples", images={"grid": self.sample_grid()})]

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[MediaSample]:
        if "name" in batch:  # whole audio files: a GANterpretation of each (in memory)
            walker = Ganterpreter(self.generator, fps=self.fps, threshold=self.threshold,
                                  truncation=self.truncation, device=self.device,
                                  class_names=self.class_names)  # fmt: skip
            samples = []
            for name, audio in zip(batch["name"], batch["audio"], strict=True):
                wave = audio.float().cpu().numpy()
                plan = walker.plan(wave, self.sample_rate)
                video = np.concatenate(list(walker.frames(plan)))
                change = {"change": plan.change.astype(np.float32)}
                sample = MediaSample(str(name), self.fps, video, wave, self.sample_rate)
                sample.arrays = change
                samples.append(sample)
            return samples
        real, classes = self.images(batch)
        fake = self.sample(classes, torch.Generator().manual_seed(batch_idx), self.truncation)
        pairs = np.concatenate([to_uint8(real), to_uint8(fake)], axis=1)  # (N, 2S, S, 3)
        grid = np.concatenate(list(pairs), axis=1)
        return [MediaSample(name=f"real_fake_{batch_idx:04d}", images={"grid": grid})]


def frame_change(frames: np.ndarray) -> np.ndarray:
    """Mean absolute pixel change between consecutive frames, in [0, 1].

    Shape:
        (T, H, W, 3) uint8 → (T − 1,).
    """
    x = frames.astype(np.float32) / 255.0
    return np.abs(np.diff(x, axis=0)).mean(axis=(1, 2, 3))  # type: ignore[no-any-return]


def coupling(image_change: np.ndarray, audio_change: np.ndarray) -> float:
    """Pearson correlation between per-frame image change and the audio change measure."""
    a, b = np.asarray(image_change, np.float64), np.asarray(audio_change, np.float64)
    if a.std() < 1e-12 or b.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def random_walk_latents(
    num_frames: int, z_dim: int, num_classes: int, step: float = 0.05, seed: int = 0,
    truncation: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The baseline that ignores the audio: z and a class mixture drift by random steps.

    Returns:
        z (T, z_dim) and class vectors (T, num_classes) (non-negative, summing to 1).
    """
    rng = np.random.default_rng(seed)
    z = truncated_noise(1, z_dim, truncation, rng) + np.cumsum(
        rng.normal(0, step * truncation, (num_frames, z_dim)), axis=0)  # fmt: skip
    logits = np.cumsum(rng.normal(0, step * 4, (num_frames, num_classes)), axis=0)
    y = np.exp(logits - logits.max(1, keepdims=True))
    return z.astype(np.float32), (y / y.sum(1, keepdims=True)).astype(np.float32)
