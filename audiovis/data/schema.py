"""The on-disk performance format: streams, shapes, dtypes, ``meta.json`` and ``manifest.json``.

A dataset root holds ``manifest.json`` and one folder per performance::

    ROOT/manifest.json
    ROOT/<performance>/meta.json
    ROOT/<performance>/audio.flac      mono waveform at meta.sample_rate
    ROOT/<performance>/frames.npy      (T, H, W, 3) uint8 RGB
    ROOT/<performance>/mask.npy        (T, H, W) uint8 in {0, 1}
    ROOT/<performance>/keypoints.npy   (T, 67, 3) float32: x, y in [0, 1], confidence
    ROOT/<performance>/pose3d.npy      (T, J, 3) float32, metres, root-centred
    ROOT/<performance>/roll.npy        (T, 88) uint8 in {0, 1}, A0 ... C8
    ROOT/<performance>/notes.mid       the score as MIDI (optional)

Every writer goes through :func:`write_performance` and :func:`write_manifest`, which write to
a temporary name and rename, so an interrupted build never leaves a half-written performance.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiovis.errors import FileProblem
from audiovis.skeleton import NUM_KEYPOINTS

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
META = "meta.json"
SPLITS = ("train", "val", "test")
LABELS = ("instrument", "style", "performer")
NUM_KEYS = 88


class DataError(FileProblem):
    """A dataset file is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class ArrayStream:
    """A per-frame array stream stored as ``.npy``.

    Attributes:
        filename: file inside the performance folder.
        dtypes: accepted numpy dtypes.
        trailing: shape after the frame axis; ``None`` entries are free, ``"H"``/``"W"`` must
            match ``meta.size``.
        binary: values must be 0 or 1.
    """

    filename: str
    dtypes: tuple[str, ...]
    trailing: tuple[int | str | None, ...]
    binary: bool = False


ARRAY_STREAMS: dict[str, ArrayStream] = {
    "video": ArrayStream("frames.npy", ("uint8",), ("H", "W", 3)),
    "mask": ArrayStream("mask.npy", ("uint8", "bool"), ("H", "W"), binary=True),
    "keypoints": ArrayStream("keypoints.npy", ("float32",), (NUM_KEYPOINTS, 3)),
    "pose3d": ArrayStream("pose3d.npy", ("float32",), (None, 3)),
    "roll": ArrayStream("roll.npy", ("uint8", "bool"), (NUM_KEYS,), binary=True),
}
AUDIO_FILE = "audio.flac"
MIDI_FILE = "notes.mid"
#: every stream a model may ask for; labels come from meta.json
STREAMS: tuple[str, ...] = ("audio", *ARRAY_STREAMS, "notes", *LABELS)


@dataclass
class PerformanceMeta:
    """Contents of a performance's ``meta.json``."""

    name: str
    fps: float
    sample_rate: int
    num_frames: int
    size: tuple[int, int]
    streams: list[str]
    instrument: str = "unknown"
    style: str = "none"
    performer: str = "unknown"
    piece: str = ""
    source: str = ""
    licence: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["size"] = list(self.size)
        out["duration"] = round(self.duration, 6)
        out["format_version"] = FORMAT_VERSION
        return out


@dataclass
class Manifest:
    """Contents of ``manifest.json``: the performances with their splits, and class names."""

    performances: list[dict[str, Any]]
    classes: dict[str, list[str]]
    name: str = ""

    def names(self, split: str | None = None) -> list[str]:
        return [p["name"] for p in self.performances if split is None or p["split"] == split]


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(path, "missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(path, "must hold a JSON object")
    return data


def read_meta(folder: str | os.PathLike[str]) -> PerformanceMeta:
    """Read and check a performance's ``meta.json``.

    Raises:
        DataError: the file is missing, not JSON, or lacks a field or has one of a wrong type.
    """
    path = Path(folder) / META
    data = _load_json(path)
    required: dict[str, type | tuple[type, ...]] = {
        "fps": (int, float),
        "sample_rate": int,
        "num_frames": int,
        "size": list,
        "streams": list,
    }
    for key, kind in required.items():
        if key not in data:
            raise DataError(path, f"missing field '{key}'")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise DataError(path, f"field '{key}' has the wrong type ({data[key]!r})")
    if data["fps"] <= 0 or data["sample_rate"] <= 0 or data["num_frames"] <= 0:
        raise DataError(path, "fps, sample_rate and num_frames must be positive")
    if len(data["size"]) != 2 or not all(isinstance(s, int) and s > 0 for s in data["size"]):
        raise DataError(path, f"field 'size' must be [height, width], got {data['size']!r}")
    unknown = sorted(set(data["streams"]) - set(STREAMS))
    if unknown:
        raise DataError(path, f"unknown streams {unknown}; known: {list(STREAMS)}")
    known = {f for f in PerformanceMeta.__dataclass_fields__ if f not in ("extra", "name")}
    nested = data.get("extra", {})
    if not isinstance(nested, dict):
        raise DataError(path, f"field 'extra' must be a JSON object, got {nested!r}")
    ignored = ("name", "duration", "format_version", "extra")
    extra = {**nested, **{k: v for k, v in data.items() if k not in known and k not in ignored}}
    return PerformanceMeta(
        name=str(data.get("name", Path(folder).name)),
        fps=float(data["fps"]),
        sample_rate=int(data["sample_rate"]),
        num_frames=int(data["num_frames"]),
        size=(int(data["size"][0]), int(data["size"][1])),
        streams=list(data["streams"]),
        **{
            k: str(data[k])
            for k in ("instrument", "style", "performer", "piece", "source", "licence")
            if k in data
        },
        extra=extra,
    )


def read_manifest(root: str | os.PathLike[str]) -> Manifest:
    """Read and check ``manifest.json`` at a dataset root.

    Raises:
        DataError: the file is missing or malformed, or names a split other than train/val/test.
    """
    path = Path(root) / MANIFEST
    data = _load_json(path)
    perfs = data.get("performances")
    if not isinstance(perfs, list) or not perfs:
        raise DataError(path, "field 'performances' must be a non-empty list")
    for i, entry in enumerate(perfs):
        if not isinstance(entry, dict) or "name" not in entry or "split" not in entry:
            raise DataError(path, f"performance #{i} needs a 'name' and a 'split'")
        if entry["split"] not in SPLITS:
            raise DataError(
                path,
                f"performance {entry['name']!r} has split {entry['split']!r};"
                f" expected one of {list(SPLITS)}",
            )
    classes = data.get("classes", {})
    if not isinstance(classes, dict):
        raise DataError(path, "field 'classes' must map a label to its class names")
    return Manifest(
        performances=perfs,
        classes={k: list(v) for k, v in classes.items()},
        name=str(data.get("name", "")),
    )


def array_path(folder: str | os.PathLike[str], stream: str) -> Path:
    return Path(folder) / ARRAY_STREAMS[stream].filename


def check_array(path: Path, spec: ArrayStream, meta: PerformanceMeta, deep: bool) -> list[str]:
    """Problems with one array file, each naming the file (empty when it is sound)."""
    if not path.is_file():
        return [f"{path}: missing"]
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        return [f"{path}: not a readable .npy array ({err})"]
    problems = []
    if str(arr.dtype) not in spec.dtypes:
        problems.append(f"{path}: dtype {arr.dtype}, expected {' or '.join(spec.dtypes)}")
    sizes = {"H": meta.size[0], "W": meta.size[1]}
    expected = (
        meta.num_frames,
        *(sizes.get(d, d) if isinstance(d, str) else d for d in spec.trailing),
    )
    ok = arr.ndim == len(expected) and all(
        e is None or a == e for a, e in zip(arr.shape, expected, strict=True)
    )
    if not ok:
        shape = tuple("*" if e is None else e for e in expected)
        problems.append(f"{path}: shape {tuple(arr.shape)}, expected {shape}")
    elif deep and arr.size:
        if spec.binary and int(np.asarray(arr).max()) > 1:
            problems.append(f"{path}: values must be 0 or 1")
        if arr.dtype.kind == "f" and not np.isfinite(np.asarray(arr)).all():
            problems.append(f"{path}: holds NaN or inf")
    return problems


def check_audio(path: Path, meta: PerformanceMeta, deep: bool) -> list[str]:
    """Problems with a performance's audio file: readable, mono, its rate, its length, silence."""
    import soundfile as sf

    if not path.is_file():
        return [f"{path}: missing"]
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        return [f"{path}: not a readable audio file ({err})"]
    problems = []
    if info.channels != 1:
        problems.append(f"{path}: {info.channels} channels, expected mono")
    if info.samplerate != meta.sample_rate:
        problems.append(
            f"{path}: sample rate {info.samplerate} Hz, meta.json says " f"{meta.sample_rate} Hz"
        )
    expected = meta.duration * info.samplerate
    if abs(info.frames - expected) > info.samplerate / meta.fps + 1:
        problems.append(
            f"{path}: {info.frames / info.samplerate:.3f} s of audio, but "
            f"{meta.num_frames} frames at {meta.fps:g} fps last "
            f"{meta.duration:.3f} s"
        )
    if deep and not problems:
        audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
        if not np.isfinite(audio).all():
            problems.append(f"{path}: holds NaN or inf samples")
        elif float(np.abs(audio).max(initial=0.0)) < 1e-4:
            problems.append(f"{path}: silent")
    return problems


def check_performance(folder: str | os.PathLike[str], deep: bool = True) -> list[str]:
    """Every problem in one performance folder (empty when it is sound).

    Args:
        folder: the performance folder.
        deep: also read values (binary masks, finite floats, silent audio), not only headers.
    """
    folder = Path(folder)
    try:
        meta = read_meta(folder)
    except DataError as err:
        return [str(err)]
    problems = []
    for stream in meta.streams:
        if stream in ARRAY_STREAMS:
            problems += check_array(array_path(folder, stream), ARRAY_STREAMS[stream], meta, deep)
        elif stream == "audio":
            problems += check_audio(folder / AUDIO_FILE, meta, deep)
        elif stream == "notes" and not (folder / MIDI_FILE).is_file():
            problems.append(f"{folder / MIDI_FILE}: missing")
    return problems


def check_dataset(root: str | os.PathLike[str], deep: bool = True) -> list[str]:
    """Every problem in a dataset root at once: manifest, each performance, its streams."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    try:
        manifest = read_manifest(root)
    except DataError as err:
        return [str(err)]
    problems = []
    seen: set[str] = set()
    for entry in manifest.performances:
        name = entry["name"]
        if name in seen:
            problems.append(f"{root / MANIFEST}: performance {name!r} listed twice")
        seen.add(name)
        folder = root / name
        if not folder.is_dir():
            problems.append(f"{folder}: listed in {MANIFEST} but missing")
            continue
        problems += check_performance(folder, deep=deep)
        for label in LABELS:
            value = entry.get(label)
            if (
                value is not None
                and label in manifest.classes
                and value not in manifest.classes[label]
            ):
                problems.append(
                    f"{root / MANIFEST}: {name!r} has {label} {value!r}, not in " f"classes.{label}"
                )
    return problems


# ---------------------------------------------------------------------------- atomic writing


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes files private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def write_performance(
    root: str | os.PathLike[str],
    meta: PerformanceMeta,
    arrays: Mapping[str, np.ndarray],
    audio: np.ndarray | None = None,
    midi: bytes | None = None,
) -> Path:
    """Write one performance atomically: all files into a hidden folder, checked, then renamed.

    Args:
        root: dataset root.
        meta: its metadata; ``meta.streams`` is set from what is written.
        arrays: stream name → array, as in :data:`ARRAY_STREAMS`.
        audio: mono float waveform at ``meta.sample_rate``.
        midi: bytes of a MIDI file of the score.

    Returns:
        the performance folder.

    Raises:
        DataError: an array does not match the format (nothing is left on disk).
    """
    import soundfile as sf

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / meta.name
    tmp = Path(tempfile.mkdtemp(prefix=f".{meta.name}.", suffix=".tmp", dir=root))
    tmp.chmod(0o755)  # mkdtemp makes folders private
    try:
        streams = []
        for stream, arr in arrays.items():
            if stream not in ARRAY_STREAMS:
                raise DataError(final, f"unknown array stream {stream!r}")
            np.save(tmp / ARRAY_STREAMS[stream].filename, np.ascontiguousarray(arr))
            streams.append(stream)
        if audio is not None:
            sf.write(
                tmp / AUDIO_FILE,
                np.asarray(audio, dtype=np.float32),
                meta.sample_rate,
                format="FLAC",
                subtype="PCM_24",
            )
            streams.append("audio")
        if midi is not None:
            (tmp / MIDI_FILE).write_bytes(midi)
            streams.append("notes")
        meta.streams = [*streams, *(s for s in meta.streams if s in LABELS)]
        (tmp / META).write_text(json.dumps(meta.to_json(), indent=2) + "\n")
        problems = check_performance(tmp, deep=True)
        if problems:
            raise DataError(final, "; ".join(p.replace(str(tmp), str(final)) for p in problems))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_manifest(
    root: str | os.PathLike[str],
    entries: Iterable[tuple[PerformanceMeta, str]],
    name: str = "",
) -> Manifest:
    """Write ``manifest.json`` for performances and their splits, with sorted class names."""
    perfs = []
    for meta, split in entries:
        if split not in SPLITS:
            raise DataError(Path(root) / MANIFEST, f"unknown split {split!r}")
        perfs.append(
            {
                "name": meta.name,
                "split": split,
                "duration": round(meta.duration, 6),
                "fps": meta.fps,
                "sample_rate": meta.sample_rate,
                "instrument": meta.instrument,
                "style": meta.style,
                "performer": meta.performer,
                "piece": meta.piece,
                "source": meta.source,
                "licence": meta.licence,
            }
        )
    classes = {label: sorted({str(p[label]) for p in perfs}) for label in LABELS}
    manifest = Manifest(performances=perfs, classes=classes, name=name)
    atomic_write_json(
        Path(root) / MANIFEST,
        {"format_version": FORMAT_VERSION, "name": name, "performances": perfs, "classes": classes},
    )
    return manifest
