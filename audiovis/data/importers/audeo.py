"""Import the Audeo data layout (Su et al., NeurIPS 2020) into the on-disk performance format.

The original release holds, per video and split (``training`` / ``testing``):

* ``labels/<split>/<video>.pkl``: a pickled dict, frame number → 88-value key vector (> 0
  means down), the Video2Roll targets;
* ``midi/<split>/<video>/<start>-<end>.npz``: the pseudo ground-truth MIDI as a roll, in 2 s
  segments (frames ``start`` … ``end − 1``, key ``midi``; ``estimate_Roll`` and
  ``Roll2Midi_results`` segments hold ``roll`` and ``logit`` instead);
* ``input_images/<split>/<video>/frame<N>.jpg``: the cropped keyboard frames.

Each video becomes a performance: ``roll`` from the label pickle (or, without one, from the
``midi`` segments), ``notes.mid`` from the ``midi`` segments when present, and ``video`` from
the keyboard images when present (already cropped: use ``keyboard_box: [0, 0, 1, 1]``).

Pickles can run arbitrary code when loaded. The label pickles are therefore read with a
RESTRICTED unpickler that accepts only dicts, ints, floats, lists/tuples of those, and numpy
arrays and scalars (with the few numpy functions that rebuild them); any other object in the
file (a function, a class, ``os.system``…) stops the import with a :class:`FileProblem`
naming the file, before anything is written. The ``.npz`` segments are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from audiovis.data.schema import NUM_KEYS, PerformanceMeta, write_manifest, write_performance
from audiovis.errors import FileProblem

SPLITS = {"training": "train", "testing": "test"}
SEGMENT = re.compile(r"^(\d+)-(\d+)\.npz$")
FRAME = re.compile(r"^frame(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)

# (module, name) pairs numpy's pickles need to rebuild arrays, dtypes and scalars
_NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build only plain data: dicts, lists, tuples, ints, floats, strings
    (pickle's own opcodes) and numpy arrays/scalars; every other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def load_label_pickle(path: str | os.PathLike[str]) -> dict[int, np.ndarray]:
    """A label pickle (frame → 88 values) read with :class:`RestrictedUnpickler`.

    Raises:
        FileProblem: unreadable, refused (an object other than plain data), or not a dict of
            frame numbers to 88 numbers.
    """
    path = Path(path)
    try:
        data = RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    except pickle.UnpicklingError as err:
        raise FileProblem(
            path,
            f"unsafe or corrupt pickle ({err}); label pickles may hold only dicts, ints, "
            "floats and numpy arrays",
        ) from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise FileProblem(path, f"not a readable pickle ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or not data:
        raise FileProblem(path, f"expected a dict frame → 88 values, got {type(data).__name__}")
    labels: dict[int, np.ndarray] = {}
    for key, value in data.items():
        if not isinstance(key, int | np.integer) or isinstance(key, bool) or int(key) < 0:
            raise FileProblem(path, f"frame numbers must be non-negative ints, got {key!r}")
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.shape != (NUM_KEYS,):
            raise FileProblem(
                path, f"frame {key}: expected {NUM_KEYS} numbers, got {arr.dtype} {arr.shape}"
            )
        labels[int(key)] = arr
    return labels


def labels_to_roll(labels: dict[int, np.ndarray]) -> tuple[np.ndarray, int]:
    """The (T, 88) binary roll of frames ``first … last`` (missing frames silent), and
    ``first``."""
    first, last = min(labels), max(labels)
    roll = np.zeros((last - first + 1, NUM_KEYS), np.uint8)
    for frame, values in labels.items():
        roll[frame - first] = values > 0
    return roll, first


def read_segments(folder: str | os.PathLike[str], key: str = "midi") -> np.ndarray:
    """The roll (T, 88) assembled from a folder of ``<start>-<end>.npz`` segments (values > 0
    are down; a segment shorter than ``end − start`` is zero-padded, as the original does)."""
    folder = Path(folder)
    segments = []
    for path in folder.iterdir():
        match = SEGMENT.match(path.name)
        if match:
            segments.append((int(match.group(1)), int(match.group(2)), path))
    if not segments:
        raise FileProblem(folder, "holds no <start>-<end>.npz segments")
    end = max(e for _, e, _ in segments)
    roll = np.zeros((end, NUM_KEYS), np.uint8)
    for start, stop, path in sorted(segments):
        try:
            with np.load(path, allow_pickle=False) as data:
                if key not in data:
                    raise FileProblem(path, f"has no array {key!r} (has {sorted(data.files)})")
                seg = np.asarray(data[key])
        except (OSError, ValueError, EOFError) as err:
            raise FileProblem(path, f"not a readable .npz ({err})") from None
        if seg.ndim != 2 or seg.shape[1] != NUM_KEYS or stop <= start:
            raise FileProblem(path, f"expected ({stop - start}, {NUM_KEYS}), got {seg.shape}")
        n = min(len(seg), stop - start)
        roll[start : start + n] = seg[:n] > 0
    return roll


def read_keyboard_images(folder: Path, first: int, count: int) -> np.ndarray:
    """Frames ``first … first + count − 1`` of ``frame<N>.jpg`` images as (T, H, W, 3) uint8
    (greyscale repeated; a missing frame repeats the previous one)."""
    from PIL import Image

    files = {int(m.group(1)): p for p in folder.iterdir() if (m := FRAME.match(p.name))}
    if not files:
        raise FileProblem(folder, "holds no frame<N>.jpg images")
    frames: list[np.ndarray] = []
    last: np.ndarray | None = None
    for n in range(first, first + count):
        path = files.get(n)
        if path is not None:
            try:
                with Image.open(path) as img:
                    last = np.asarray(img.convert("L"))
            except OSError as err:
                raise FileProblem(path, f"not a readable image ({err})") from None
        if last is None:
            last = np.asarray(Image.open(files[min(files)]).convert("L"))
        if frames and last.shape != frames[0].shape[:2]:
            raise FileProblem(path or folder, "keyboard images differ in size")
        frames.append(np.repeat(last[..., None], 3, axis=-1))
    return np.stack(frames)


def _videos(source: Path) -> Iterable[tuple[str, str]]:
    """(split folder, video name) of every video in the layout."""
    seen = set()
    for folder in SPLITS:
        for kind in ("labels", "midi"):
            base = source / kind / folder
            if not base.is_dir():
                continue
            for path in sorted(base.iterdir()):
                name = path.stem if path.suffix == ".pkl" else path.name
                if (path.suffix == ".pkl" or path.is_dir()) and (folder, name) not in seen:
                    seen.add((folder, name))
                    yield folder, name


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "video"


def import_audeo(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fps: float = 25.0,
    sample_rate: int = 16000,
    val_videos: int = 0,
) -> Path:
    """Import an Audeo data folder (``labels/``, ``midi/``, ``input_images/``) to ``out``.

    Args:
        source: the folder holding the release's ``labels``, ``midi`` and ``input_images``.
        out: dataset root to write (one performance per video, ``manifest.json``).
        fps: frame rate of the data (25 in the release).
        sample_rate: recorded in the metadata (no audio is imported).
        val_videos: the last this many training videos (in name order) become the
            validation split.

    Returns:
        ``out``.

    Raises:
        FileProblem: a file is unreadable, refused (unsafe pickle) or malformed. Labels and
            segments are all read before anything is written; each performance is written
            atomically.
    """
    from audiovis.music import roll_to_midi

    source, out = Path(source), Path(out)
    videos = list(_videos(source))
    if not videos:
        raise FileProblem(source, "no labels/{training,testing}/*.pkl or midi/ segments found")
    train = [v for v in videos if v[0] == "training"]
    held = set(train[len(train) - val_videos :]) if val_videos > 0 else set()
    # read every roll first: a refused pickle or a bad segment stops before anything is written
    rolls = []
    for folder, video in videos:
        label_file = source / "labels" / folder / f"{video}.pkl"
        midi_dir = source / "midi" / folder / video
        first = 0
        if label_file.is_file():
            roll, first = labels_to_roll(load_label_pickle(label_file))
        else:
            roll = read_segments(midi_dir)
        segments = read_segments(midi_dir) if midi_dir.is_dir() else None
        rolls.append((folder, video, roll, first, segments))
    entries = []
    for folder, video, roll, first, segments in rolls:
        arrays: dict[str, np.ndarray] = {"roll": roll}
        midi_bytes = None
        if segments is not None:
            buffer = io.BytesIO()
            roll_to_midi(segments, fps).write(buffer)
            midi_bytes = buffer.getvalue()
        images = source / "input_images" / folder / video
        size = (100, 900)  # the original's network input, when there are no frames
        if images.is_dir():
            arrays["video"] = read_keyboard_images(images, first, len(roll))
            size = (int(arrays["video"].shape[1]), int(arrays["video"].shape[2]))
        name = _safe_name(video)
        split = "val" if (folder, video) in held else SPLITS[folder]
        meta = PerformanceMeta(
            name=name, fps=fps, sample_rate=sample_rate, num_frames=len(roll), size=size,
            streams=["instrument"], instrument="piano", piece=video,
            source=f"Audeo ({folder}/{video})", licence="see the Audeo release",
            extra={"first_frame": first, "keyboard_box": [0.0, 0.0, 1.0, 1.0]},
        )  # fmt: skip
        write_performance(out, meta, arrays, midi=midi_bytes)
        entries.append((meta, split))
    write_manifest(out, entries, name=f"audeo import of {source.name}")
    return out
