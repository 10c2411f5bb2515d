"""Build a studio dataset: scores → audio through FluidSynth → rendered performers, written in
the on-disk format, split by piece, resumable and deterministic for a seed."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from audiovis.data.cache import user_cache_dir
from audiovis.data.schema import (
    MANIFEST,
    PerformanceMeta,
    atomic_write_json,
    check_performance,
    read_meta,
    write_manifest,
    write_performance,
)
from audiovis.data.studio.rigs.base import NUM_PERFORMERS, Look, Rig
from audiovis.data.studio.score import (
    DANCE_STYLES,
    GM_PROGRAM,
    Score,
    corpus_score,
    corpus_works,
    dance_scores,
    music21_available,
    procedural_score,
    score_from_midi,
)
from audiovis.data.studio.synth import frame_loudness, render_audio
from audiovis.errors import AudiovisError

STUDIO_VERSION = 2  # bump when rendering changes, so cached default datasets are rebuilt
# (2: a key struck again rises on the frame before the stroke)
INSTRUMENTS = ("piano", "cello", "violin", "trombone", "guitar")
STYLES = tuple(DANCE_STYLES)


def make_rig(category: str) -> Rig:
    """The rig that performs an instrument, or ``dance``."""
    if category == "piano":
        from audiovis.data.studio.rigs.piano import PianoRig

        return PianoRig()
    if category in ("cello", "violin"):
        from audiovis.data.studio.rigs.strings import CelloRig, ViolinRig

        return CelloRig() if category == "cello" else ViolinRig()
    if category == "trombone":
        from audiovis.data.studio.rigs.trombone import TromboneRig

        return TromboneRig()
    if category == "guitar":
        from audiovis.data.studio.rigs.guitar import GuitarRig

        return GuitarRig()
    if category == "dance":
        from audiovis.data.studio.rigs.dance import DanceRig

        return DanceRig()
    raise AudiovisError(f"unknown instrument {category!r}; known: {[*INSTRUMENTS, 'dance']}")


@dataclass(frozen=True)
class StudioConfig:
    """What a studio dataset holds; its hash names the cached default dataset.

    Attributes:
        instruments: instrumentalists to record (of ``piano, cello, violin, trombone, guitar``).
        styles: dance styles to record (of ``waltz, chacha, tango, rumba``).
        minutes: music in total, at least; spread evenly over instruments and styles.
        segment_seconds: length of each performance (a piece's opening).
        size: frame side in pixels.
        fps: frame rate.
        sample_rate: audio rate.
        seed: chooses pieces, performers, reverb and noise.
        soundfont: an .sf2 path; pretty_midi's General MIDI soundfont by default.
        reverb: wet mix of a room reverb on every performance (0 = dry).
        noise_db: white noise level in dBFS added to every performance (None = clean).
        use_corpus: take scores from the music21 corpus (procedural ones otherwise).
        midi: a user's MIDI files, each performed by every instrument in ``instruments``
            (then no corpus pieces are used).
    """

    instruments: tuple[str, ...] = INSTRUMENTS
    styles: tuple[str, ...] = STYLES
    minutes: float = 10.0
    segment_seconds: float = 20.0
    size: int = 128
    fps: float = 25.0
    sample_rate: int = 16000
    seed: int = 0
    soundfont: str | None = None
    reverb: float = 0.0
    noise_db: float | None = None
    use_corpus: bool = True
    midi: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.instruments) - set(INSTRUMENTS))
        if unknown:
            raise AudiovisError(f"unknown instruments {unknown}; known: {list(INSTRUMENTS)}")
        unknown = sorted(set(self.styles) - set(STYLES))
        if unknown:
            raise AudiovisError(f"unknown dance styles {unknown}; known: {list(STYLES)}")
        if not self.instruments and not self.styles:
            raise AudiovisError("studio: choose at least one instrument or dance style")
        if not 32 <= self.size <= 512:
            raise AudiovisError(f"studio: size must be in 32..512, got {self.size}")
        if self.fps <= 0 or self.sample_rate < 8000 or self.minutes <= 0:
            raise AudiovisError("studio: fps and minutes must be > 0, sample_rate >= 8000")
        if self.soundfont is not None and not Path(self.soundfont).is_file():
            raise AudiovisError(f"{self.soundfont}: soundfont not found")
        for path in self.midi:
            if not Path(path).is_file():
                raise AudiovisError(f"{path}: MIDI file not found")

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "version": STUDIO_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Job:
    """One performance to render: a category's piece, its split and performer."""

    category: str  # instrument, or "dance"
    style: str  # dance style, or "none"
    piece: str  # name of the piece (splits are by piece)
    loader: str  # "corpus", "procedural", "midi", "dance"
    work: str  # corpus path, MIDI path, or seed as text
    part: int | str | None
    split: str
    performer: int

    @property
    def name(self) -> str:
        prefix = "dance" if self.category == "dance" else self.category
        return f"{prefix}_{self.piece}"[:80]


def _split_of(index: int, count: int) -> str:
    # the last piece of each category is test, the one before it val, the rest train
    if count >= 3 and index == count - 1:
        return "test"
    if count >= 3 and index == count - 2:
        return "val"
    return "train"


def plan(config: StudioConfig) -> list[Job]:
    """The performances a config asks for, with splits by piece (no piece in two splits)."""
    categories = [*config.instruments, *(f"dance:{s}" for s in config.styles)]
    per_category = config.minutes * 60 / len(categories)
    count = max(3, math.ceil(per_category / config.segment_seconds))
    corpus = config.use_corpus and music21_available() and not config.midi
    if config.use_corpus and not music21_available() and not config.midi:
        warnings.warn("music21 is not installed: the studio uses procedural scores",
                      stacklevel=2)  # fmt: skip
    splits: dict[str, str] = {}  # piece → split, shared by every category playing it
    jobs = []
    for c, category in enumerate(categories):
        specs: list[tuple[str, str, str, int | str | None]]
        if category.startswith("dance:"):
            style = category.split(":", 1)[1]
            specs = [("dance", f"{style}_music{i}", f"{i}", None) for i in range(count)]
        elif config.midi:
            specs = [("midi", Path(p).stem, p, None) for p in config.midi]
        elif corpus:
            specs = [("corpus", w.replace("chorale:", "chorale_"), w, part)
                     for w, part in corpus_works(category, count, config.seed)]  # fmt: skip
        else:
            specs = [("procedural", f"procedural_{c}_{i}", str(config.seed * 1000 + 17 * c + i),
                      None) for i in range(count)]  # fmt: skip
        for i, (loader, piece, work, part) in enumerate(specs):
            piece = "".join(ch if ch.isalnum() else "_" for ch in piece.lower())
            split = splits.setdefault(piece, _split_of(i, len(specs)))
            performer = int(hashlib.sha1(f"{piece}{c}{config.seed}".encode()).hexdigest(), 16)
            cat, style = ("dance", category[6:]) if category.startswith("dance:") else \
                (category, "none")  # fmt: skip
            jobs.append(Job(cat, style, piece, loader, work, part, split,
                            performer % NUM_PERFORMERS))  # fmt: skip
    return jobs


def load_score(job: Job, config: StudioConfig) -> Score:
    """The job's score, cut to the opening ``segment_seconds`` from its first note."""
    if job.loader == "corpus":
        score = corpus_score(job.work, job.part, job.category)
    elif job.loader == "midi":
        score = score_from_midi(job.work, None)
    elif job.loader == "dance":
        index = int(job.work)
        score = dance_scores(job.style, index + 1, config.seed, config.use_corpus)[index]
    else:
        score = procedural_score(int(job.work), job.category,
                                 seconds=config.segment_seconds + 2)  # fmt: skip
    if not score.notes:
        raise AudiovisError(f"{job.work}: no notes in {job.category}'s range")
    first = min(n.start for n in score.notes)
    beats_before = score.beats[score.beats <= first + 1e-6]
    start = float(beats_before[-1]) if len(beats_before) else first
    stop = min(start + config.segment_seconds, score.duration)
    # a dance's music is chosen when rendered: keep the real piece's name
    return score.segment(start, stop, score.name if job.loader == "dance" else job.piece)


def render_job(job: Job, config: StudioConfig, root: Path) -> PerformanceMeta:
    """Render one performance and write it atomically under ``root``."""
    score = load_score(job, config)
    fps, sr = config.fps, config.sample_rate
    seed = int(hashlib.sha1(f"{job.name}{config.seed}".encode()).hexdigest()[:8], 16)
    audio = render_audio(score, "piano" if job.category == "dance" else job.category, sr,
                         config.soundfont, config.reverb, config.noise_db, seed,
                         accompaniment=job.category == "dance")  # fmt: skip
    num_frames = int(len(audio) * fps / sr)
    if num_frames < 1:
        raise AudiovisError(f"{job.work}: the segment is shorter than one frame")
    audio = audio[: int(round(num_frames * sr / fps))]
    loudness = frame_loudness(audio, sr, fps, num_frames)
    look = Look.performer_look(job.performer)
    take = make_rig(job.category).render(score, loudness, look, config.size, fps, num_frames,
                                         job.style)  # fmt: skip
    arrays: dict[str, np.ndarray] = {"video": take.frames, "mask": take.mask}
    if take.keypoints is not None:
        arrays["keypoints"] = take.keypoints
    if take.pose3d is not None:
        arrays["pose3d"] = take.pose3d
    if job.category != "dance":
        arrays["roll"] = score.roll(fps, num_frames)
    midi = score.to_midi(GM_PROGRAM.get(job.category, 0))
    buffer = io.BytesIO()
    midi.write(buffer)  # type: ignore[attr-defined]
    meta = PerformanceMeta(
        name=job.name, fps=fps, sample_rate=sr, num_frames=num_frames,
        size=(config.size, config.size), streams=["instrument", "performer", "style"],
        instrument=job.category, style=job.style, performer=look.performer, piece=score.name,
        source=score.source, licence=score.licence,
        extra={"tempo": score.tempo, "meter": score.meter, "key": score.key,
               "beats": [round(float(b), 4) for b in score.beats]},
    )  # fmt: skip
    write_performance(root, meta, arrays, audio, midi=buffer.getvalue())
    return meta


def _done(root: Path, job: Job) -> bool:
    folder = root / job.name
    return (folder / "meta.json").is_file() and not check_performance(folder, deep=False)


def _worker(args: tuple[Job, StudioConfig, Path]) -> str:
    job, config, root = args
    render_job(job, config, root)
    return job.name


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock file, so two processes never build the same dataset at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(
    root: str | os.PathLike[str],
    config: StudioConfig = StudioConfig(),
    workers: int | None = None,
    progress: bool = True,
    on_done: Callable[[str], None] | None = None,
) -> Path:
    """Build (or finish building) a studio dataset at ``root``.

    Performances already written are kept, so an interrupted build resumes; each one is
    written atomically; ``manifest.json`` is written last.

    Args:
        root: the dataset root.
        config: what to build.
        workers: processes rendering in parallel (the number of cores by default).
        progress: show a progress bar.
        on_done: called with each finished performance's name.

    Returns:
        the root.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise AudiovisError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not (root / "studio.json").is_file() \
            and not (root / ".build.lock").is_file():  # fmt: skip
        raise AudiovisError(f"{root}: not empty and not a studio dataset; choose another --out")
    root.mkdir(parents=True, exist_ok=True)
    jobs = plan(config)
    with _locked(root / ".build.lock"):
        todo = [job for job in jobs if not _done(root, job)]
        workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="studio",
                   unit="performance", disable=not progress)  # fmt: skip
        tasks = [(job, config, root) for job in todo]
        if workers == 1:
            results: Iterator[str] = map(_worker, tasks)
            _consume(results, bar, on_done)
        else:
            import multiprocessing as mp

            # spawn, not fork: forking a process that runs torch or Lightning threads can
            # deadlock the children
            with mp.get_context("spawn").Pool(workers) as pool:
                _consume(pool.imap_unordered(_worker, tasks), bar, on_done)
        bar.close()
        metas = [(read_meta(root / job.name), job.split) for job in jobs]
        atomic_write_json(root / "studio.json", {**asdict(config), "version": STUDIO_VERSION})
        write_manifest(root, metas, name=f"audiovis studio {config.key()}")
    return root


def _consume(results: Iterator[str], bar: Any, on_done: Callable[[str], None] | None) -> None:
    for name in results:
        bar.update(1)
        if on_done is not None:
            on_done(name)


def studio_dataset(
    fps: float = 25.0, sample_rate: int = 16000, size: int = 128, **overrides: Any
) -> Path:
    """A studio dataset built on first use into the user cache and reused after, keyed by its
    settings: the embedded default with no ``overrides``, else the default's settings with
    ``overrides`` (fields of ``StudioConfig``, e.g. ``instruments=("cello",), minutes=8``)."""
    unknown = sorted(set(overrides) - {f.name for f in fields(StudioConfig)})
    if unknown:
        known = [f.name for f in fields(StudioConfig)]
        raise AudiovisError(f"studio: unknown settings {unknown}; known: {known}")
    tuples: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()
    }
    config = StudioConfig(**{"fps": fps, "sample_rate": sample_rate, "size": size, **tuples})
    default = StudioConfig(fps=fps, sample_rate=sample_rate, size=size)
    kind = "default" if config == default else "custom"
    root = user_cache_dir() / "studio" / f"{kind}-{config.key()}"
    if (root / MANIFEST).is_file():
        return root
    print(f"audiovis: building the studio dataset into {root} (once)", flush=True)
    return build(root, config)


def default_dataset(fps: float = 25.0, sample_rate: int = 16000, size: int = 128) -> Path:
    """The embedded default dataset (every instrument and dance style, ≥ 10 minutes), built on
    first use into the user cache and reused after; keyed by its settings."""
    return studio_dataset(fps, sample_rate, size)
