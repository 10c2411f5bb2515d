"""Audeo (Su et al., NeurIPS 2020): piano video → per-frame key roll (Video2Roll) → MIDI-ready
roll (Roll2Midi, a least-squares GAN) → MIDI → audio."""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from audiovis.callbacks import MediaSample
from audiovis.errors import AudiovisError, FileProblem
from audiovis.losses import lsgan_discriminator_loss, lsgan_generator_loss
from audiovis.media import draw_roll, to_uint8
from audiovis.metrics.transcription import FrameMetrics
from audiovis.models.base import AudioVisualModule, GANModule, read_checkpoint
from audiovis.music import NUM_KEYS, fit_length, roll_to_midi, synthesize
from audiovis.networks.audeo import PatchDiscriminator, Roll2MidiGenerator, Video2RollNet
from audiovis.networks.keyboard import black_key_centres, fit_key_columns

# Where the studio's piano rig draws the keyboard, as fractions of the frame (x, y, w, h):
# the keys span nearly the full width, their far edge lies at 0.23–0.29 of the height and they
# are 0.27–0.32 of it long over the rig's camera looks; the box adds the fingers below them.
STUDIO_KEYBOARD_BOX = (0.0, 0.2, 1.0, 0.45)
# The keys' own box (x, y, w, h) in the studio's nominal framing (zoom 1, no shift), as
# locate_keyboard finds it: where "auto" models crop when no keyboard can be located.
STUDIO_KEYS = (0.04, 0.26, 0.92, 0.3)
_FACTORIES = ("_optimizer", "_scheduler")
CONTEXT = 2  # frames on each side of the predicted one (5 stacked frames)


# ----------------------------------------------------------------------------- input frames


def keyboard_crops(
    video: Tensor,
    box: Sequence[float],
    size: Sequence[int],
    value_range: str = "signed",
    colour: bool = False,
) -> Tensor:
    """Greyscale (or colour) crops of the keyboard, resized to the network's input.

    Args:
        video: (..., 3, H, W) RGB frames, in [-1, 1] (``value_range="signed"``, the batch
            format) or uint8 0..255 (``"byte"``).
        box: (x, y, w, h) of the keyboard as fractions of the frame.
        size: (height, width) of the network's input.
        colour: keep the RGB channels instead of the original's greyscale.

    Returns:
        (..., height, width) float in [0, 1] (the original's ``/ 255`` greyscale input), or
        (..., 3, height, width) with ``colour``.
    """
    lead = video.shape[:-3]
    h, w = video.shape[-2:]
    x0, y0 = int(round(box[0] * w)), int(round(box[1] * h))
    x1, y1 = int(round((box[0] + box[2]) * w)), int(round((box[1] + box[3]) * h))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    crop = video[..., y0:y1, x0:x1].reshape(-1, 3, y1 - y0, x1 - x0).float()
    crop = (crop + 1) / 2 if value_range == "signed" else crop / 255.0
    if not colour:
        weights = torch.tensor([0.299, 0.587, 0.114], device=crop.device)
        crop = (crop * weights[:, None, None]).sum(1, keepdim=True)  # (N, 1, h, w)
    crop = F.interpolate(crop, size=tuple(size), mode="bilinear", antialias=True,
                         align_corners=False)  # fmt: skip
    channels = (3,) if colour else ()
    return crop.clamp(0, 1).reshape(*lead, *channels, *size)


def check_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """A keyboard box (x, y, w, h) in fractions that lies inside the frame, or an error."""
    if len(box) != 4:
        raise AudiovisError(f"keyboard_box must be (x, y, w, h), got {list(box)}")
    x, y, w, h = (float(v) for v in box)
    eps = 1e-6
    if w <= 0 or h <= 0 or x < -eps or y < -eps or x + w > 1 + eps or y + h > 1 + eps:
        raise AudiovisError(
            f"keyboard_box {list(box)} (fractions of the frame) is not inside the frame"
        )
    return x, y, w, h


# ------------------------------------------------------------------- keyboard registration

# The crop a located keyboard gives the network: the keys' box widened by these fractions of
# the keys' length above (the fallboard's edge) and below (the fingers on the keys' front), as
# the fixed studio box holds them in the nominal framing.
AUTO_MARGIN_ABOVE = 0.2
AUTO_MARGIN_BELOW = 0.3
LOCATE_FRAMES = 32  # frames (evenly spaced) whose median the keyboard is located in
_DARK = 0.5  # grey level (0..1) below which a pixel reads as a black key or the case
_MIN_BLACK_KEYS = 12  # dark runs a row needs to count as crossing the black keys (36 on 88)
_MIN_BAR_AGREEMENT = 0.85  # pixels of the black keys' top rows matching their median row
# white keys (A0 = 0) of the 88 keys, and where each black key sits between them
_WHITE_OF_KEY = np.cumsum([(k + 9) % 12 not in (1, 3, 6, 8, 10) for k in range(NUM_KEYS)]) - 1
_IS_BLACK = np.array([(k + 9) % 12 in (1, 3, 6, 8, 10) for k in range(NUM_KEYS)])


def _grey(frames: Tensor | np.ndarray, value_range: str) -> np.ndarray:
    """(H, W) grey level in [0, 1]: the median over (up to ``LOCATE_FRAMES``) frames
    (..., 3, H, W) (tensors, the batch layout) or (..., H, W, 3) (numpy, the file layout)."""
    if isinstance(frames, Tensor):
        x = frames.detach().reshape(-1, *frames.shape[-3:]).float()
        channels_first = True
    else:
        x = torch.from_numpy(np.ascontiguousarray(frames).reshape(-1, *frames.shape[-3:]))
        x = x.float()
        channels_first = False
    if len(x) > LOCATE_FRAMES:
        x = x[torch.linspace(0, len(x) - 1, LOCATE_FRAMES).round().long()]
    weights = torch.tensor([0.299, 0.587, 0.114])
    grey = (x * weights[:, None, None]).sum(1) if channels_first else (x * weights).sum(-1)
    grey = (grey + 1) / 2 if value_range == "signed" else grey / 255.0
    return grey.median(dim=0).values.numpy()


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the runs of True in a 1-d bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def locate_keyboard(
    frames: Tensor | np.ndarray,
    value_range: str = "byte",
    name: str | os.PathLike[str] | None = None,
) -> tuple[float, float, float, float]:
    """The box (x, y, w, h), in fractions of the frame, that the 88 keys span in a video.

    From pixels only: the median of the frames removes the moving hands; the rows crossing
    the black keys are those with many dark runs between bright ones (36 black keys); the
    keyboard's ends are the bright (white-key) runs just outside the first and last black
    key on the black keys' top rows (no hand reaches there), its far edge the last bright row
    above them and its near edge the last mostly bright row below them.

    Args:
        frames: (..., 3, H, W) tensor frames in [-1, 1] (``value_range="signed"``) or 0..255
            (``"byte"``), or (..., H, W, 3) uint8 numpy frames (as files store them).
        name: the video's file, named in the error.

    Returns:
        (x, y, w, h) of the keys' outer edges, as fractions of the frame's width and height.

    Raises:
        AudiovisError (FileProblem with ``name``): no keyboard is seen.
    """
    grey = _grey(frames, value_range)
    height, width = grey.shape
    left, top, right, front, _ = _find_keys(grey, name)
    return left / width, top / height, (right - left) / width, (front - top) / height


def locate_key_columns(
    frames: Tensor | np.ndarray,
    value_range: str = "byte",
    name: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """The keyboard's box to a fraction of a pixel and each black key's centre, measured:
    what drawing single keys into the frame needs (APVG's key presses), where a crop of the
    keyboard (Audeo) needs the box alone.

    Args: as :func:`locate_keyboard`.

    Returns:
        (40,): the box (x, y, w, h) as :func:`locate_keyboard` finds it, its left edge and
        width refined to a fraction of a pixel by the black keys' darkness on their top rows
        (:func:`audiovis.networks.keyboard.fit_key_columns`), then the 36 black keys'
        centres (A#0 first) as fractions of the frame's width
        (:func:`audiovis.networks.keyboard.black_key_centres`).

    Raises:
        AudiovisError (FileProblem with ``name``): no keyboard is seen.
    """
    grey = _grey(frames, value_range)
    height, width = grey.shape
    left, top, right, front, darkness = _find_keys(grey, name)
    x, w = fit_key_columns(darkness, float(left), float(right - left))
    centres = black_key_centres(darkness, x, w)
    box = [x / width, top / height, w / width, (front - top) / height]
    return np.concatenate([box, centres / width])


def _find_keys(
    grey: np.ndarray, name: str | os.PathLike[str] | None
) -> tuple[int, int, int, int, np.ndarray]:
    """The keys' outer edges in whole pixels (left, top, right, front) in a median grey
    frame, and how dark each column of the black keys' top rows is (0 white ... 1 black),
    as :func:`locate_keyboard` describes."""
    height, width = grey.shape

    def fail(problem: str) -> AudiovisError:
        what = f"no piano keyboard found ({problem})"
        return FileProblem(Path(name), what) if name is not None else AudiovisError(what)

    dark = grey < _DARK
    runs = (dark[:, 1:] & ~dark[:, :-1]).sum(axis=1)  # dark runs starting after a bright pixel
    if runs.max(initial=0) < _MIN_BLACK_KEYS:
        raise fail("no row crosses a row of black keys")
    band_starts, band_ends = _runs(runs >= max(_MIN_BLACK_KEYS, 0.6 * runs.max()))
    longest = int(np.argmax(band_ends - band_starts))
    b0, b1 = int(band_starts[longest]), int(band_ends[longest])
    # the black keys' top rows (a third of them): hands never reach there
    profile = np.median(grey[b0 : b0 + max(1, (b1 - b0) // 3)], axis=0) >= _DARK  # bright
    starts, ends = _runs(profile)
    # the black keys: dark runs with bright on both sides, of about one width (the case's
    # sides and a hand resting on the keys are wider); A0 and C8 are the white runs just
    # outside the first and last of them
    dark_starts, dark_ends = _runs(~profile)
    inner = (dark_starts > 0) & (dark_ends < width)
    sizes = dark_ends - dark_starts
    if inner.sum() < _MIN_BLACK_KEYS:
        raise fail("too few black keys")
    keys = inner & (sizes <= 3 * np.median(sizes[inner]))
    k_first, k_last = np.flatnonzero(keys)[[0, -1]]
    left_run = np.flatnonzero(ends == dark_starts[k_first])
    right_run = np.flatnonzero(starts == dark_ends[k_last])
    if not len(left_run) or not len(right_run):
        raise fail("the keyboard's ends are not bright")
    left, right = int(starts[left_run[0]]), int(ends[right_run[0]])
    # black keys are vertical bars: each of the top rows repeats the profile's dark pattern
    # (rows of texture or noise also hold many dark runs, but not the same ones row by row)
    rows = grey[b0 : b0 + max(1, (b1 - b0) // 3), left:right] >= _DARK
    if (rows == profile[None, left:right]).mean() < _MIN_BAR_AGREEMENT:
        raise fail("the dark runs are not the vertical bars of black keys")
    # far edge: up from the black keys while the keyboard's row is mostly bright
    bright_rows = (grey[:, left:right] >= _DARK).mean(axis=1)
    top = b0
    while top > 0 and bright_rows[top - 1] >= 0.5:
        top -= 1
    front = b1
    while front < height and bright_rows[front] >= 0.5:
        front += 1
    if front - top < 2 or right - left < 2:
        raise fail("the keys are too small")
    row = np.median(grey[b0 : b0 + max(1, (b1 - b0) // 3)], axis=0)
    keyboard = row[left:right]
    bright = np.median(keyboard[keyboard >= _DARK])
    black = np.median(keyboard[keyboard < _DARK])
    return left, top, right, front, np.clip((bright - row) / (bright - black), 0, 1)


def crop_box(
    keys: Sequence[float], key_offset: int = 0, num_keys: int = NUM_KEYS
) -> tuple[float, float, float, float]:
    """The crop (x, y, w, h) a located keyboard ``keys`` (as :func:`locate_keyboard` gives
    it) makes for a model of keys ``key_offset`` … ``key_offset + num_keys - 1``: from the
    first key's left edge to the last key's right edge (the 52 white keys are equally wide;
    a black key end counts 0.3 white widths past the boundary it sits on), and from
    ``AUTO_MARGIN_ABOVE`` key lengths above the keys to ``AUTO_MARGIN_BELOW`` below them,
    clipped to the frame."""
    x, y, w, h = (float(v) for v in keys)
    white = w / 52

    def edge(key: int, right: bool) -> float:
        if _IS_BLACK[key]:
            return x + white * (_WHITE_OF_KEY[key] + 1 + (0.3 if right else -0.3))
        return x + white * (_WHITE_OF_KEY[key] + (1 if right else 0))

    x0, x1 = edge(key_offset, False), edge(key_offset + num_keys - 1, True)
    y0, y1 = y - AUTO_MARGIN_ABOVE * h, y + (1 + AUTO_MARGIN_BELOW) * h
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, 1.0), min(y1, 1.0)
    return check_box((x0, y0, x1 - x0, y1 - y0))


def stack_context(crops: Tensor, index: Tensor) -> Tensor:
    """The 5-frame stacks (t−2 … t+2) centred on ``index``, edges repeated as the original.

    Shape:
        crops (T, h, w), index (N,) → (N, 5, h, w); colour crops (T, 3, h, w) →
        (N, 15, h, w), frame by frame.
    """
    offsets = torch.arange(-CONTEXT, CONTEXT + 1, device=crops.device)
    frames = (index[:, None] + offsets).clamp(0, crops.shape[0] - 1)
    return crops[frames].flatten(1, -3)


def key_mix(
    stacks: Tensor,
    target: Tensor,
    other_stacks: Tensor,
    other_target: Tensor,
    prob: float,
    key_offset: int = 0,
    num_keys: int = NUM_KEYS,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Training inputs whose keyboard is cut into bands taken from two frames (key mixing).

    A crop made by :func:`crop_box` holds the model's white keys at equal widths, so a cut at
    a white-key boundary with no black key on it (B|C, E|F) splits the keys exactly. With
    probability ``prob`` a sample takes the band between two such cuts (or a crop end) from
    ``other_stacks`` (frames of the same performance at another time), with those keys'
    labels: chords never played in training appear, and the network cannot read a key off
    the rest of a chord it memorised (held-out chorales lost whole notes, probability 0.00,
    to that).

    Args:
        stacks: (B, C, h, w) stacked crops; ``other_stacks`` the partner samples.
        target: (B, num_keys) labels; ``other_target`` the partners'.
        prob: chance that a sample is mixed.
        key_offset, num_keys: the model's keys (the crop's first and last must be white).

    Returns:
        the mixed stacks (B, C, h, w) and labels (B, num_keys).
    """
    last = key_offset + num_keys - 1
    if _IS_BLACK[key_offset] or _IS_BLACK[last]:
        raise AudiovisError("key_mix needs a crop from a white key to a white key")
    first_white = int(_WHITE_OF_KEY[key_offset])
    whites = int(_WHITE_OF_KEY[last]) - first_white + 1
    # the white keys (0 = A) left of a boundary without a black key: B|C (i % 7 == 2), E|F (5)
    cuts = [j for j in range(1, whites) if (first_white + j) % 7 in (2, 5)]
    bounds = [0, *cuts, whites]
    # the bands: any two bounds but the whole keyboard
    bands = torch.tensor([(lo, hi) for n, lo in enumerate(bounds) for hi in bounds[n + 1 :]
                          if (lo, hi) != (0, whites)])  # fmt: skip
    b, width = stacks.shape[0], stacks.shape[-1]
    mixed = torch.rand(b, generator=generator) < prob
    lo, hi = bands[torch.randint(0, len(bands), (b,), generator=generator)].unbind(1)
    key_white = torch.from_numpy(_WHITE_OF_KEY[key_offset : last + 1] - first_white)  # (K,)
    keys = mixed[:, None] & (key_white >= lo[:, None]) & (key_white < hi[:, None])  # (B, K)
    column = (torch.arange(width) + 0.5) * whites / width  # white-key units
    cols = mixed[:, None] & (column >= lo[:, None]) & (column < hi[:, None])  # (B, w)
    out = torch.where(cols[:, None, None, :], other_stacks, stacks)
    return out, torch.where(keys, other_target, target)


def clean_roll(
    probs: np.ndarray,
    threshold: float,
    offset_threshold: float | None = None,
    merge_gap: int = 0,
    min_frames: int = 1,
) -> np.ndarray:
    """A binary roll from key probabilities, read as notes are: hysteresis, gaps, blips.

    A run of frames at or above ``offset_threshold`` is a note when some frame of it reaches
    ``threshold`` (a key held with a dip in confidence stays one note); runs of a key
    separated by at most ``merge_gap`` frames become one; notes shorter than ``min_frames``
    are dropped. On the held-out studio chorales (bench/bench_audeo.py) the false onsets of
    thresholding are mostly such dips and one- or two-frame blips.

    Args:
        probs: (T, K) probabilities.
        threshold: where a note is started.
        offset_threshold: where it ends (``<= threshold``; ``None``: ``threshold``).
        merge_gap: off frames a note bridges.
        min_frames: shortest note kept.

    Returns:
        (T, K) uint8 roll.
    """
    probs = np.asarray(probs, np.float32)
    off = threshold if offset_threshold is None else min(offset_threshold, threshold)
    roll = np.zeros(probs.shape, np.uint8)
    for key in np.flatnonzero((probs >= threshold).any(axis=0)):
        column = probs[:, key]
        starts, ends = _runs(column >= off)
        notes: list[list[int]] = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if column[a:b].max() < threshold:
                continue
            if notes and a - notes[-1][1] <= merge_gap:
                notes[-1][1] = b
            else:
                notes.append([a, b])
        for a, b in notes:
            if b - a >= min_frames:
                roll[a:b, key] = 1
    return roll


# ----------------------------------------------------------------------------- the sampler


class BalancedMultilabelSampler(Sampler[int]):
    """Draw samples so that each key (and "no key") is as likely as any other.

    As the original's balanced sampler: each draw picks a class uniformly at random among the
    classes present, then a sample holding that class uniformly; rare keys are seen as often
    as common ones.

    Args:
        labels: (N, K) binary labels of the samples.
        num_samples: draws per epoch (20,000 in the original).
        seed: base seed; each epoch draws from ``seed + epoch``.
    """

    def __init__(self, labels: np.ndarray, num_samples: int, seed: int = 0) -> None:
        labels = np.asarray(labels) > 0
        columns = [np.flatnonzero(labels[:, k]) for k in range(labels.shape[1])]
        columns.append(np.flatnonzero(~labels.any(axis=1)))  # silent frames are a class too
        self.classes = [c for c in columns if len(c)]
        if not self.classes:
            raise AudiovisError("balanced sampler: no samples")
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        picks = rng.integers(0, len(self.classes), self.num_samples)
        for c in picks:
            members = self.classes[c]
            yield int(members[rng.integers(0, len(members))])


# ------------------------------------------------------------------------------- Video2Roll


class Video2Roll(AudioVisualModule):
    """Per-frame piano keys from 5 stacked greyscale keyboard frames.

    The keyboard is cropped from each frame by ``keyboard_box`` (as the original's per-video
    coordinates), turned grey, resized to ``input_size`` and stacked t−2 … t+2; the network
    predicts the keys down at frame t. Trained with binary cross-entropy on logits, Adam and
    ReduceLROnPlateau on ``val/loss`` as the original.

    Args:
        key_offset: first key predicted (index into the 88 keys; 15 as the original).
        num_keys: keys predicted (51 as the original, 88 with offset 0 for the full keyboard).
        input_size: (height, width) of the crops (100 × 900 in the original).
        keyboard_box: (x, y, w, h) of the keyboard in fractions of the frame; the studio
            piano rig's keyboard (and the fingers on it) by default; ``"auto"`` locates the
            keys in each video (:func:`locate_keyboard`; in training once per performance,
            from the first 5-frame clip of it seen, which costs about 15 % of a step against
            45 % located per sample; once per call of :meth:`crops`) and crops the model's
            keys (:func:`crop_box`), so every key sits at the same place of the crop whatever
            the camera's zoom and framing.
        width: channels of the ResNet's first stage (64 as ResNet-18).
        head_grid: (rows, columns) grid the fused features keep for the key classifier
            (``Video2RollNet``); ``None`` for the original's global average.
        detector: (channels, rows, columns) of ``Video2RollNet``'s shared fine-grid key
            detector feeding the classifier; ``None`` for none (the original).
        colour: stack RGB crops (15 channels) instead of the original's greyscale (5): the
            studio tints pressed keys blue, which greyscale all but erases on black keys.
        threshold: probability from which a key counts as down (0.4 as the original).
        fps: frame rate (for predictions).
        sample_rate: rate of the synthesised audio.
        program: General MIDI program of the synthesised audio (0: acoustic grand piano).
        soundfont: an .sf2 for synthesis (pretty_midi's General MIDI font by default).
        min_note_frames: predicted notes shorter than this many frames are dropped.
        offset_threshold: probability under which a started note ends (hysteresis, see
            :func:`clean_roll`); ``None``: ``threshold``.
        merge_gap: off frames between two runs of a key that one note bridges.
        key_mix: chance that a training sample takes a band of keys from another sample of
            its performance in the batch (:func:`key_mix`; needs ``keyboard_box="auto"``).
            On the studio's held-out chorales it lifted frame F1 from 0.89 to 0.99: without
            it the network reads keys off chords it memorised and misses unseen ones.
        balanced_sampler: train on the balanced multilabel sampler instead of shuffling.
        samples_per_epoch: draws per epoch of the balanced sampler.
        optimizer: optimizer factory (Adam 1e-3 as the original).
        plateau_patience: epochs without a ``val/loss`` improvement before the LR drops.
    """

    streams: ClassVar[tuple[str, ...]] = ("video", "roll")

    def __init__(
        self,
        key_offset: int = 15,
        num_keys: int = 51,
        input_size: tuple[int, int] = (100, 900),
        keyboard_box: tuple[float, float, float, float] | str = STUDIO_KEYBOARD_BOX,
        width: int = 64,
        threshold: float = 0.4,
        fps: float = 25.0,
        sample_rate: int = 16000,
        program: int = 0,
        soundfont: str | None = None,
        min_note_frames: int = 1,
        balanced_sampler: bool = False,
        samples_per_epoch: int = 20000,
        optimizer: OptimizerCallable = torch.optim.Adam,
        plateau_patience: int = 2,
        head_grid: tuple[int, int] | None = None,
        detector: tuple[int, int, int] | None = None,
        colour: bool = False,
        offset_threshold: float | None = None,
        merge_gap: int = 0,
        key_mix: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer"])
        if key_offset < 0 or num_keys < 1 or key_offset + num_keys > NUM_KEYS:
            raise AudiovisError(
                f"keys {key_offset}..{key_offset + num_keys - 1} are not within the 88 keys"
            )
        _check_note_reading(threshold, offset_threshold, merge_gap, min_note_frames)
        if key_mix and (keyboard_box != "auto" or _IS_BLACK[key_offset]
                        or _IS_BLACK[key_offset + num_keys - 1]):  # fmt: skip
            raise AudiovisError("key_mix cuts the crop at key boundaries: it needs keyboard_box "
                                '"auto" and keys from a white key to a white key')  # fmt: skip
        self.key_mix = key_mix
        self.keyboard_box: tuple[float, float, float, float] | str
        if isinstance(keyboard_box, str):
            if keyboard_box != "auto":
                raise AudiovisError(
                    f'keyboard_box must be (x, y, w, h) or "auto", got {keyboard_box!r}'
                )
            self.keyboard_box = "auto"
        else:
            self.keyboard_box = check_box(keyboard_box)
        self.key_offset, self.num_keys = key_offset, num_keys
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.threshold, self.fps, self.sample_rate = threshold, fps, sample_rate
        self.program, self.soundfont, self.min_note_frames = program, soundfont, min_note_frames
        self.offset_threshold, self.merge_gap = offset_threshold, merge_gap
        self.optimizer = optimizer
        # the constructor's arguments, kept apart from ``hparams`` (which LightningCLI fills
        # with the outer model's config when this one is built inside another)
        self.config: dict[str, Any] = dict(
            key_offset=key_offset, num_keys=num_keys, input_size=self.input_size,
            keyboard_box=self.keyboard_box, width=width, threshold=threshold, fps=fps,
            sample_rate=sample_rate, program=program, soundfont=soundfont,
            min_note_frames=min_note_frames, balanced_sampler=balanced_sampler,
            samples_per_epoch=samples_per_epoch, plateau_patience=plateau_patience,
            head_grid=None if head_grid is None else (int(head_grid[0]), int(head_grid[1])),
            detector=None if detector is None else tuple(int(v) for v in detector),
            colour=colour, offset_threshold=offset_threshold, merge_gap=merge_gap,
            key_mix=key_mix,
        )  # fmt: skip
        self.colour = colour
        channels = (2 * CONTEXT + 1) * (3 if colour else 1)
        self.net = Video2RollNet(num_keys=num_keys, in_frames=channels, width=width,
                                 head_grid=self.config["head_grid"],
                                 detector=self.config["detector"])  # fmt: skip
        self.val_frames = FrameMetrics(threshold, logits=True)
        # "auto": each performance's located crop box, by (trainer stage, performance index)
        self._boxes: dict[tuple[str, int], tuple[float, float, float, float]] = {}

    def forward(self, stacks: Tensor) -> Tensor:
        """Key logits (B, num_keys) of stacks (B, 5, h, w) in [0, 1] ((B, 15, h, w) in
        colour)."""
        return self.net(stacks)

    def box_for(
        self,
        video: Tensor | np.ndarray,
        value_range: str = "signed",
        name: str | os.PathLike[str] | None = None,
    ) -> tuple[float, float, float, float]:
        """The crop box (x, y, w, h) this model reads from a video's frames (..., 3, H, W):
        its fixed box, or with ``keyboard_box="auto"`` the located keyboard's (``name``: the
        video's file, named when no keyboard is found)."""
        if self.keyboard_box == "auto":
            keys = locate_keyboard(video, value_range, name)
            return crop_box(keys, self.key_offset, self.num_keys)
        assert not isinstance(self.keyboard_box, str)
        return self.keyboard_box

    def studio_box(self) -> tuple[float, float, float, float]:
        """The crop box of the studio's nominal framing: the fixed box, or with
        ``keyboard_box="auto"`` the crop of the keys where the studio's rig draws them at
        zoom 1 without shift (a fallback where no keyboard is located)."""
        if self.keyboard_box == "auto":
            return crop_box(STUDIO_KEYS, self.key_offset, self.num_keys)
        assert not isinstance(self.keyboard_box, str)
        return self.keyboard_box

    def crops(self, video: Tensor, box: Sequence[float] | None = None,
              value_range: str = "signed") -> Tensor:  # fmt: skip
        """This model's keyboard crops of frames (..., 3, H, W): (..., h, w), or
        (..., 3, h, w) in colour (``keyboard_crops`` with the model's box and size; with
        ``keyboard_box="auto"`` the box is located in these frames, see :meth:`box_for`)."""
        box = self.box_for(video, value_range) if box is None else box
        return keyboard_crops(video, box, self.input_size, value_range, self.colour)

    def keys(self, roll: Tensor) -> Tensor:
        """The predicted keys' columns of an 88-key roll (..., 88) → (..., num_keys)."""
        return roll[..., self.key_offset : self.key_offset + self.num_keys]

    def _step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        video = batch["video"]
        if video.shape[1] != 2 * CONTEXT + 1:
            raise AudiovisError(
                f"Video2Roll reads windows of {2 * CONTEXT + 1} frames; set data.clip_frames=5 "
                f"(got {video.shape[1]})"
            )
        if self.keyboard_box == "auto":
            boxes = self._batch_boxes(batch)
            parts: dict[int, Tensor] = {}
            for box in dict.fromkeys(boxes):  # the samples of one performance: one crop call
                rows = [i for i, b in enumerate(boxes) if b == box]
                parts.update(zip(rows, self.crops(video[rows], box), strict=True))
            stacks = torch.stack([parts[i] for i in range(len(video))]).flatten(1, -3)
        else:
            stacks = self.crops(video).flatten(1, -3)  # (B, 5, h, w) or (B, 15, h, w)
        target = self.keys(batch["roll"][:, CONTEXT]).float()
        if self.training and self.key_mix > 0:
            other = _partners(batch.get("performance"), len(stacks)).to(stacks.device)
            stacks, target = key_mix(stacks, target, stacks[other], target[other], self.key_mix,
                                     self.key_offset, self.num_keys)  # fmt: skip
        return self(stacks), target

    def _batch_boxes(self, batch: dict[str, Tensor]) -> list[tuple[float, float, float, float]]:
        """The "auto" crop box of each sample of a batch: located once per performance (in
        the first clip of it seen, cached per trainer stage, as `audiovis transcribe`
        locates once per video), or in each sample's own frames when the batch does not
        say which performance it comes from."""
        video, performance = batch["video"], batch.get("performance")
        if performance is None or self._trainer is None:
            return [self.box_for(clip) for clip in video]
        stage = str(self.trainer.state.stage)
        boxes = []
        for clip, index in zip(video, performance.tolist(), strict=True):
            key = (stage, int(index))
            if key not in self._boxes:
                self._boxes[key] = self.box_for(clip)
            boxes.append(self._boxes[key])
        return boxes

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits, target = self._step(batch)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, batch_size=len(target))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits, target = self._step(batch)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        self.val_frames.update(logits.float(), target)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(target))

    def on_validation_epoch_end(self) -> None:
        scores = self.val_frames.compute()
        self.log_dict({f"val/{k}": v for k, v in scores.items()}, prog_bar=False, sync_dist=True)
        self.val_frames.reset()

    def configure_optimizers(self) -> Any:
        opt = self.optimizer(self.parameters())
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", patience=self.hparams["plateau_patience"]
        )
        # strict=False: a run without validation data keeps its learning rate
        sched = {"scheduler": plateau, "monitor": "val/loss", "strict": False}
        return {"optimizer": opt, "lr_scheduler": sched}

    # ---------------------------------------------------------------- balanced sampling

    def setup(self, stage: str) -> None:
        self._boxes.clear()  # the data may have changed since the last run
        if stage != "fit" or not self.hparams["balanced_sampler"] or self._trainer is None:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        dataset = getattr(datamodule, "datasets", {}).get("train")
        if dataset is None or not hasattr(dataset, "index"):
            return
        # The DataModule has no sampler option: its train loader is swapped for one drawing
        # from the balanced sampler (labels: the middle frame of each window).
        labels = _window_labels(dataset, CONTEXT, self.key_offset, self.num_keys)
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        sampler = BalancedMultilabelSampler(labels, self.hparams["samples_per_epoch"], seed)
        assert datamodule is not None
        loader_kwargs = dict(batch_size=datamodule.batch_size, num_workers=datamodule.num_workers,
                             pin_memory=datamodule.pin_memory,
                             persistent_workers=datamodule.num_workers > 0)  # fmt: skip

        def balanced_loader() -> DataLoader[Any]:
            return DataLoader(dataset, sampler=sampler, **loader_kwargs)

        datamodule.train_dataloader = balanced_loader

    # ---------------------------------------------------------------------------- predict

    @torch.no_grad()
    def predict_probabilities(
        self,
        crops: Tensor,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
        bf16: bool = False,
    ) -> Tensor:
        """Key probabilities (T, num_keys) of every frame of a video's crops (T, h, w), or
        (T, 3, h, w) for a colour model (as :meth:`crops` makes them).

        The stacks go through the network channels-last (same numbers, about 1.5x faster on
        CPU); ``bf16`` runs it under bfloat16 autocast (faster again where the CPU has AMX /
        AVX512-BF16, probabilities within about 0.15 of float32's)."""
        want = (3, *self.input_size) if self.colour else tuple(self.input_size)
        if tuple(crops.shape[1:]) != want:
            kind = "colour" if self.colour else "greyscale"
            raise AudiovisError(
                f"this Video2Roll reads {kind} crops (T, {', '.join(map(str, want))}), got "
                f"{tuple(crops.shape)}: make them with video2roll.crops(video)"
            )
        was_training = self.training
        self.eval()
        out = []
        crops = crops.float()
        for start in range(0, len(crops), batch_size):
            index = torch.arange(start, min(start + batch_size, len(crops)), device=crops.device)
            stacks = stack_context(crops, index).contiguous(memory_format=torch.channels_last)
            with torch.autocast(crops.device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = self(stacks)
            out.append(torch.sigmoid(logits.float()))
            if progress is not None:
                progress(len(index))
        self.train(was_training)
        if not out:
            return torch.zeros(0, self.num_keys)
        return torch.cat(out)

    def full_roll(self, keys: Tensor) -> Tensor:
        """(T, num_keys) → (T, 88) with zeros outside the predicted range."""
        roll = keys.new_zeros(keys.shape[0], NUM_KEYS)
        roll[:, self.key_offset : self.key_offset + self.num_keys] = keys
        return roll

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[MediaSample]:
        return _predict_samples(self, None, batch, batch_idx)


def _partners(performance: Tensor | None, size: int) -> Tensor:
    """A partner for each sample of a batch: another sample of the same performance (itself
    when alone), or of the batch when the batch does not say."""
    if performance is None:
        return torch.randperm(size)
    performance = performance.cpu()
    partner = torch.arange(size)
    for value in performance.unique():
        rows = (performance == value).nonzero().flatten()
        partner[rows] = rows[torch.randperm(len(rows))]
    return partner


def _window_labels(dataset: Any, offset: int, key_offset: int, num_keys: int) -> np.ndarray:
    """The roll at frame ``start + offset`` of each window of a ClipDataset (N, num_keys)."""
    rolls = [np.load(files.arrays["roll"], mmap_mode="r") for files in dataset.performances]
    rows = [rolls[p][s + offset, key_offset : key_offset + num_keys] for p, s in dataset.index]
    return np.asarray(rows)


# -------------------------------------------------------------------------------- Roll2Midi


class Roll2Midi(GANModule):
    """Refines Video2Roll's key probabilities over 100-frame windows into a MIDI-ready roll.

    A U-Net generator maps the (keys × frames) probabilities to a roll; a PatchGAN judges
    rolls. Least-squares GAN: the generator minimises ``w_adv`` · adversarial +
    ``w_mse`` · MSE to the true roll (0.001 and 0.999 as the original).

    The inputs are the predictions of a trained Video2Roll (``video2roll_checkpoint``), made
    once per performance and cached on disk (``prediction_cache``, by default beside the
    data), keyed by the checkpoint's content. The Video2Roll is kept (frozen) inside this
    model, so its checkpoint alone transcribes a video end to end.

    Args:
        video2roll_checkpoint: a Video2Roll checkpoint (its key range and threshold apply).
        video2roll_config: the Video2Roll's hyperparameters, recorded in this model's
            checkpoints so that they load without the Video2Roll checkpoint.
        window: frames per window (100 = 4 s at 25 fps, as the original).
        base: generator and discriminator width (64 as the original).
        dropout: generator dropout (0.5 as the original).
        residual: the generator learns corrections to its input (``Roll2MidiGenerator``).
        w_adv: weight of the adversarial loss; ``w_mse`` that of the MSE.
        threshold: probability from which a refined key counts as down.
        min_note_frames: refined notes shorter than this many frames are dropped.
        offset_threshold, merge_gap: how the refined roll is read as notes (as Video2Roll's,
            see :func:`clean_roll`).
        program: General MIDI program of the synthesised audio; ``soundfont`` its .sf2.
        prediction_cache: folder where Video2Roll's predictions are cached (named apart from
            the DataModule's ``cache_dir``, whose hyperparameters are logged with these).
    """

    streams: ClassVar[tuple[str, ...]] = ("roll",)
    generator: Roll2MidiGenerator
    discriminator: PatchDiscriminator

    def __init__(
        self,
        video2roll_checkpoint: str | None = None,
        video2roll_config: dict[str, Any] | None = None,
        window: int = 100,
        base: int = 64,
        dropout: float = 0.5,
        w_adv: float = 0.001,
        w_mse: float = 0.999,
        threshold: float = 0.4,
        min_note_frames: int = 1,
        program: int = 0,
        soundfont: str | None = None,
        prediction_cache: str | None = None,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 1,
        gradient_clip: float | None = None,
        residual: bool = False,
        offset_threshold: float | None = None,
        merge_gap: int = 0,
    ) -> None:
        super().__init__(generator_optimizer, discriminator_optimizer, generator_scheduler,
                         discriminator_scheduler, n_critic, gradient_clip)  # fmt: skip
        factories = ["generator_optimizer", "discriminator_optimizer", "generator_scheduler",
                     "discriminator_scheduler"]  # fmt: skip
        self.save_hyperparameters(ignore=factories)
        if window < 8:
            raise AudiovisError(f"window must be >= 8 frames, got {window}")
        _check_note_reading(threshold, offset_threshold, merge_gap, min_note_frames)
        self.offset_threshold, self.merge_gap = offset_threshold, merge_gap
        if video2roll_checkpoint is not None:
            self.video2roll = load_video2roll(video2roll_checkpoint)
            self.checkpoint_digest = _file_digest(Path(video2roll_checkpoint))
        elif video2roll_config is not None:
            # rebuilt from a Roll2Midi checkpoint: its state dict brings the weights
            self.video2roll = Video2Roll(**video2roll_config)
            self.checkpoint_digest = ""
        else:
            raise AudiovisError(
                "Roll2Midi learns from a trained Video2Roll's predictions: set "
                "model.init_args.video2roll_checkpoint to a Video2Roll checkpoint"
            )
        self.video2roll.requires_grad_(False)
        self.hparams["video2roll_config"] = dict(self.video2roll.config)
        self.program, self.soundfont, self.min_note_frames = program, soundfont, min_note_frames
        self.window, self.threshold = window, threshold
        self.w_adv, self.w_mse = w_adv, w_mse
        self.generator = Roll2MidiGenerator(base=base, dropout=dropout, residual=residual)
        self.discriminator = PatchDiscriminator(base=base)
        self.val_refined = FrameMetrics(threshold)
        self.val_input = FrameMetrics(self.video2roll.threshold)
        self._probs: dict[str, list[Tensor]] = {}

    @property
    def key_offset(self) -> int:
        return self.video2roll.key_offset

    @property
    def num_keys(self) -> int:
        return self.video2roll.num_keys

    def forward(self, probs: Tensor) -> Tensor:
        """Refined roll (B, 1, K, T) of Video2Roll probabilities (B, 1, K, T)."""
        return self.generator(probs)

    # -------------------------------------------------------------- Video2Roll's outputs

    def setup(self, stage: str) -> None:
        if stage == "predict":  # predictions run Video2Roll on the given videos themselves
            return
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        datasets = getattr(datamodule, "datasets", {})
        if not datasets or datamodule is None:
            return
        if not self.checkpoint_digest:
            raise AudiovisError("Roll2Midi trains on a Video2Roll's predictions: set "
                                "model.init_args.video2roll_checkpoint")  # fmt: skip
        root = datamodule.dataset_root()
        folder = self.hparams["prediction_cache"]
        cache = Path(folder) if folder else _default_cache(root)
        cache = cache / "audeo_video2roll" / self.checkpoint_digest
        for split, dataset in datasets.items():
            if split == "predict" or not hasattr(dataset, "performances"):
                continue
            self._probs[split] = [
                self._cached_probs(root, files.meta.name, cache) for files in dataset.performances
            ]

    def _cached_probs(self, root: Path, name: str, cache: Path) -> Tensor:
        from audiovis.data.schema import array_path

        target = cache / f"{name}.npy"
        if not target.is_file():
            source = array_path(root / name, "video")
            if not source.is_file():
                raise FileProblem(source, "Roll2Midi needs the performance's video to run "
                                  "Video2Roll on it, and there is none")  # fmt: skip
            frames = np.load(source, mmap_mode="r")
            v2r = self.video2roll
            # one box per performance ("auto": located in frames spread over all of it)
            sample = np.array(frames[np.linspace(0, len(frames) - 1, LOCATE_FRAMES).astype(int)])
            box = v2r.box_for(torch.from_numpy(sample).permute(0, 3, 1, 2), "byte", source)
            crops = torch.cat([
                v2r.crops(torch.from_numpy(np.array(frames[i : i + 256])).permute(0, 3, 1, 2),
                          box, value_range="byte")
                for i in range(0, len(frames), 256)
            ])  # fmt: skip
            probs = v2r.predict_probabilities(crops.to(self.device)).cpu().numpy()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, probs.astype(np.float32))
            os.replace(tmp, target)
        return torch.from_numpy(np.load(target))

    def _inputs(self, batch: dict[str, Tensor], split: str) -> tuple[Tensor, Tensor]:
        """(B, 1, K, T) Video2Roll probabilities and the true roll of a batch's windows."""
        if split not in self._probs:
            raise AudiovisError("Roll2Midi: Video2Roll's predictions were not prepared (setup)")
        roll = batch["roll"]  # (B, T, 88)
        t = roll.shape[1]
        probs = torch.stack([
            self._probs[split][int(p)][int(s) : int(s) + t]
            for p, s in zip(batch["performance"], batch["start"], strict=True)
        ]).to(roll.device)  # fmt: skip
        target = self.video2roll.keys(roll).float()
        return probs.transpose(1, 2)[:, None], target.transpose(1, 2)[:, None]

    def _split(self) -> str:
        if self.trainer.training:
            return "train"
        if self.trainer.sanity_checking or self.trainer.validating:
            return "val"
        return "test" if self.trainer.testing else "val"

    # ------------------------------------------------------------------------------ losses

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        probs, real = self._inputs(batch, "train")
        with torch.no_grad():
            fake = self.generator(probs)
        loss = lsgan_discriminator_loss(self.discriminator(real), self.discriminator(fake))
        return loss, {}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        probs, real = self._inputs(batch, "train")
        fake = self.generator(probs)
        adv = lsgan_generator_loss(self.discriminator(fake))
        mse = F.mse_loss(fake, real)
        logs = {"train/adv": adv.detach(), "train/mse": mse.detach()}
        return self.w_adv * adv + self.w_mse * mse, logs

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        probs, real = self._inputs(batch, self._split())
        fake = self.generator(probs)
        self.val_refined.update(fake.float(), real)
        self.val_input.update(probs.float(), real)
        self.log("val/loss", F.mse_loss(fake.float(), real), prog_bar=True, sync_dist=True,
                 batch_size=len(real))  # fmt: skip

    def on_validation_epoch_end(self) -> None:
        refined, raw = self.val_refined.compute(), self.val_input.compute()
        logs = {f"val/{k}": v for k, v in refined.items()}
        logs.update({f"val/video2roll_{k}": v for k, v in raw.items()})
        self.log_dict(logs, prog_bar=False, sync_dist=True)
        self.val_refined.reset()
        self.val_input.reset()

    # ---------------------------------------------------------------------------- predict

    @torch.no_grad()
    def refine(self, probs: Tensor) -> Tensor:
        """Refined probabilities (T, K) of Video2Roll probabilities (T, K), window by window
        (the last window zero-padded, as the original pads short segments)."""
        was_training = self.generator.training
        self.generator.eval()
        t = probs.shape[0]
        pad = (-t) % self.window
        x = F.pad(probs.T, (0, pad))  # (K, T + pad)
        windows = x.reshape(x.shape[0], -1, self.window).permute(1, 0, 2)[:, None]  # (N,1,K,W)
        out = torch.cat([self.generator(w) for w in windows.split(16)])  # (N, 1, K, W)
        self.generator.train(was_training)
        return out[:, 0].permute(1, 0, 2).reshape(x.shape[0], -1)[:, :t].T.float()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[MediaSample]:
        return _predict_samples(self.video2roll, self, batch, batch_idx)


# ------------------------------------------------------------------------------ the pipeline


def load_video2roll(path: str | os.PathLike[str]) -> Video2Roll:
    """A trained Video2Roll from its checkpoint, or one clear error."""
    path = Path(path)
    ckpt = read_checkpoint(path, "no such Video2Roll checkpoint")
    hparams = ckpt.get("hyper_parameters", {})
    state = ckpt.get("state_dict", {})
    if not any(k.startswith("net.") for k in state) or "num_keys" not in hparams:
        raise FileProblem(path, "is not a Video2Roll checkpoint")
    names = set(inspect.signature(Video2Roll.__init__).parameters) - {"self", "optimizer"}
    config = {k: v for k, v in hparams.items() if k in names}
    try:
        model = Video2Roll(**config)
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        first = str(err).splitlines()[0]
        raise FileProblem(path, f"does not fit Video2Roll ({first})") from None
    return model.eval()


def load_roll2midi(path: str | os.PathLike[str], video2roll: Video2Roll | None = None) -> Roll2Midi:
    """A trained Roll2Midi (with the Video2Roll inside it), or one clear error; with
    ``video2roll``, its key range must be the one the Roll2Midi was trained on."""
    path = Path(path)
    ckpt = read_checkpoint(path, "no such Roll2Midi checkpoint")
    hparams = ckpt.get("hyper_parameters", {})
    state = ckpt.get("state_dict", {})
    config = hparams.get("video2roll_config")
    if not any(k.startswith("generator.") for k in state) or not isinstance(config, dict):
        raise FileProblem(path, "is not a Roll2Midi checkpoint")
    if video2roll is not None:
        theirs = (int(config["key_offset"]), int(config["num_keys"]))
        ours = (video2roll.key_offset, video2roll.num_keys)
        if theirs != ours:
            raise FileProblem(path, f"refines keys {theirs[0]}..{sum(theirs) - 1} but the "
                              f"Video2Roll predicts keys {ours[0]}..{sum(ours) - 1}")  # fmt: skip
    names = set(inspect.signature(Roll2Midi.__init__).parameters) - {"self"}
    config = {k: v for k, v in hparams.items() if k in names and not k.endswith(_FACTORIES)}
    config["video2roll_checkpoint"] = None  # rebuilt from video2roll_config, weights below
    try:
        model = Roll2Midi(**config)
        model.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, AudiovisError) as err:
        first = str(err).splitlines()[0]
        raise FileProblem(path, f"does not fit Roll2Midi ({first})") from None
    if video2roll is not None:
        model.video2roll = video2roll
    return model.eval()


def transcribe(
    crops: Tensor,
    video2roll: Video2Roll,
    roll2midi: Roll2Midi | None = None,
    progress: Callable[[int], None] | None = None,
    bf16: bool = False,
) -> dict[str, np.ndarray]:
    """Rolls of a whole video from its keyboard crops (T, h, w) (``bf16``: Video2Roll under
    bfloat16 autocast, see :meth:`Video2Roll.predict_probabilities`).

    Returns:
        ``probabilities`` (T, 88) of Video2Roll, ``refined`` (T, 88) of Roll2Midi (when
        given), and ``roll`` (T, 88) {0, 1}: the last stage thresholded.
    """
    probs = video2roll.predict_probabilities(crops, progress=progress, bf16=bf16)  # (T, K)
    out = {"probabilities": video2roll.full_roll(probs).cpu().numpy()}
    last: Video2Roll | Roll2Midi = video2roll
    if roll2midi is not None:
        refined = roll2midi.refine(probs)
        out["refined"] = video2roll.full_roll(refined).cpu().numpy()
        last = roll2midi
    out["roll"] = read_roll(out["refined" if roll2midi is not None else "probabilities"], last)
    return out


def read_roll(probs: np.ndarray, model: Video2Roll | Roll2Midi) -> np.ndarray:
    """The binary roll (T, K) a model's probabilities (T, K) give, read with its threshold,
    offset threshold, merge gap and shortest note (:func:`clean_roll`)."""
    return clean_roll(probs, model.threshold, model.offset_threshold, model.merge_gap,
                      model.min_note_frames)  # fmt: skip


def _check_note_reading(
    threshold: float, offset_threshold: float | None, merge_gap: int, min_note_frames: int
) -> None:
    if not 0 < threshold < 1:
        raise AudiovisError(f"threshold must be in (0, 1), got {threshold}")
    if offset_threshold is not None and not 0 < offset_threshold <= threshold:
        raise AudiovisError(
            f"offset_threshold must be in (0, threshold={threshold}], got {offset_threshold}"
        )
    if merge_gap < 0 or min_note_frames < 1:
        raise AudiovisError(
            f"merge_gap must be >= 0 and min_note_frames >= 1, got {merge_gap}, {min_note_frames}"
        )


def render(
    roll: np.ndarray,
    fps: float,
    sample_rate: int,
    program: int = 0,
    soundfont: str | None = None,
    min_note_frames: int = 1,
) -> tuple[Any, np.ndarray]:
    """MIDI and audio (as long as the roll) of a binary roll (T, 88)."""
    midi = roll_to_midi(roll, fps, program=program, min_frames=min_note_frames)
    audio = synthesize(midi, sample_rate, soundfont)
    return midi, fit_length(audio, int(round(len(roll) / fps * sample_rate)))


def roll_image(*rolls: np.ndarray) -> np.ndarray:
    """Rolls (T, 88) drawn one above the other (e.g. probabilities over the binary roll)."""
    return np.concatenate([draw_roll(r) for r in rolls], axis=0)


def _predict_samples(
    video2roll: Video2Roll, roll2midi: Roll2Midi | None, batch: dict[str, Any], batch_idx: int
) -> list[MediaSample]:
    if "video" not in batch:
        raise AudiovisError("Audeo predicts from video files: pass --data.predict_video FILE")
    videos = batch["video"]  # (B, T, 3, H, W) in [-1, 1]
    names = batch.get("name") or [f"clip{batch_idx:04d}_{i}" for i in range(len(videos))]
    synth = roll2midi if roll2midi is not None else video2roll
    samples = []
    for name, video in zip(names, videos, strict=True):
        crops = video2roll.crops(video)
        rolls = transcribe(crops, video2roll, roll2midi)
        midi, audio = render(rolls["roll"], video2roll.fps, video2roll.sample_rate,
                             synth.program, synth.soundfont, synth.min_note_frames)  # fmt: skip
        stages = [rolls["probabilities"], *([rolls["refined"]] if "refined" in rolls else []),
                  rolls["roll"]]  # fmt: skip
        samples.append(MediaSample(
            name=str(name), fps=video2roll.fps, video=to_uint8(video), audio=audio,
            sample_rate=video2roll.sample_rate, midi=midi,
            arrays={k: v.astype(np.float32) for k, v in rolls.items()},
            images={"roll": roll_image(*stages)},
        ))  # fmt: skip
    return samples


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _default_cache(root: Path) -> Path:
    if os.access(root, os.W_OK):
        return root / ".cache"
    from audiovis.data.cache import user_cache_dir

    return user_cache_dir() / "audeo"
