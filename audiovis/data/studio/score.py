"""Scores for the studio: notes with beats, metre, tempo and key, from the music21 corpus, a
user's MIDI file, or a seeded procedural generator when music21 is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from audiovis.errors import AudiovisError, MissingDependency
from audiovis.media import MediaError

NUM_KEYS = 88
LOWEST_KEY = 21  # MIDI number of A0

# General MIDI programs (0-based) and playable ranges (MIDI numbers) of the studio's instruments
GM_PROGRAM = {"piano": 0, "guitar": 24, "violin": 40, "cello": 42, "trombone": 57}
RANGE = {"piano": (21, 108), "guitar": (40, 84), "violin": (55, 100), "cello": (36, 76),
         "trombone": (40, 77)}  # fmt: skip


@dataclass(frozen=True)
class Note:
    """One note: MIDI pitch, onset and offset in seconds, MIDI velocity."""

    pitch: int
    start: float
    end: float
    velocity: int = 80


@dataclass
class Score:
    """A piece as the studio needs it.

    Attributes:
        name: a file-safe identifier, unique per piece (splits are made by piece).
        notes: the notes the performer plays, sorted by onset.
        beats: beat times in seconds, from the score's tempo map.
        meter: beats per bar (3 for 3/4).
        tempo: beats per minute at the start.
        key: key signature name, e.g. ``"G major"``.
        source: where the piece came from (``music21:bach/bwv846``, a file path, ``procedural``).
        licence: the licence of the source.
        accompaniment: notes of other parts, not played by the performer.
        drums: General MIDI percussion (pitch = drum sound), e.g. a dance style's rhythm.
    """

    name: str
    notes: list[Note]
    beats: np.ndarray
    meter: int = 4
    tempo: float = 100.0
    key: str = "C major"
    source: str = ""
    licence: str = ""
    accompaniment: list[Note] = field(default_factory=list)
    drums: list[Note] = field(default_factory=list)

    @property
    def duration(self) -> float:
        ends = [n.end for n in self.notes + self.accompaniment]
        return max(ends, default=0.0)

    def downbeats(self) -> np.ndarray:
        return self.beats[:: self.meter]

    def segment(self, start: float, stop: float, name: str) -> Score:
        """The notes and beats in ``[start, stop)``, shifted to start at 0 (notes clipped)."""

        def clip(notes: list[Note]) -> list[Note]:
            out = []
            for n in notes:
                if n.end > start and n.start < stop:
                    s, e = max(n.start, start) - start, min(n.end, stop) - start
                    if e - s > 1e-3:
                        out.append(Note(n.pitch, s, e, n.velocity))
            return out

        beats = self.beats[(self.beats >= start) & (self.beats < stop)] - start
        return replace(
            self,
            name=name,
            notes=clip(self.notes),
            beats=beats,
            accompaniment=clip(self.accompaniment),
            drums=clip(self.drums),
        )

    def roll(self, fps: float, num_frames: int, notes: Sequence[Note] | None = None) -> np.ndarray:
        """The 88-key roll per video frame: key k is down at frame t when its note sounds at
        the frame's centre ``(t + 0.5) / fps``; a note shorter than a frame marks the frame of
        its onset, so no note is lost.

        A key struck again while it is down, or on the frame after its note ends, is up on
        the frame before the new stroke: a piano key rises before it can sound again, and a
        roll without the gap would show two notes as one. The earlier note keeps at least
        one frame (notes starting on the same or the next frame are one stroke).

        Returns:
            (num_frames, 88) uint8.
        """
        strokes: dict[int, list[tuple[int, int]]] = {}
        for n in self.notes if notes is None else notes:
            k = n.pitch - LOWEST_KEY
            if not 0 <= k < NUM_KEYS:
                continue
            first = int(np.ceil(n.start * fps - 0.5))
            last = int(np.ceil(n.end * fps - 0.5))  # exclusive
            if last <= first:  # shorter than a frame
                first, last = int(n.start * fps), int(n.start * fps) + 1
            strokes.setdefault(k, []).append((first, last))
        roll = np.zeros((num_frames, NUM_KEYS), np.uint8)
        for k, spans in strokes.items():
            down: list[list[int]] = []  # the key's [first, last) runs
            for first, last in sorted(spans):
                if down and first <= down[-1][1]:  # struck while down or right after
                    if first - down[-1][0] >= 2:
                        held = down[-1][1]
                        down[-1][1] = first - 1  # up on the frame before the stroke
                        down.append([first, max(last, held)])
                    else:
                        down[-1][1] = max(down[-1][1], last)
                else:
                    down.append([first, last])
            for first, last in down:
                roll[max(first, 0) : min(last, num_frames), k] = 1
        return roll

    def to_midi(self, program: int, accompaniment_program: int | None = None) -> object:
        """A ``pretty_midi.PrettyMIDI`` of the notes (and the accompaniment on a second track)."""
        import pretty_midi

        midi = pretty_midi.PrettyMIDI(initial_tempo=self.tempo)
        parts = [(self.notes, program)]
        if self.accompaniment:
            parts.append((self.accompaniment, program if accompaniment_program is None
                          else accompaniment_program))  # fmt: skip
        if self.drums:
            parts.append((self.drums, -1))
        for notes, prog in parts:
            inst = pretty_midi.Instrument(program=max(prog, 0), is_drum=prog < 0)
            inst.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in notes]
            midi.instruments.append(inst)
        midi.time_signature_changes.append(pretty_midi.TimeSignature(self.meter, 4, 0.0))
        return midi


# ------------------------------------------------------------------------------ from MIDI


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
    return "_".join(part for part in keep.split("_") if part)[:60] or "piece"


def score_from_midi(
    path: str | os.PathLike[str],
    part: int | str | None = None,
    name: str | None = None,
    source: str | None = None,
    licence: str = "",
) -> Score:
    """Read a MIDI file: the chosen part is played, the others accompany.

    Args:
        path: the .mid file.
        part: an instrument index or a substring of its name; ``None`` plays every part.
        name: the piece's name (the file stem by default).
        source: where it came from (the path by default).
        licence: its licence.

    Raises:
        MediaError: an unreadable or corrupt file, or one without notes.
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "no such file")
    pretty_midi.pretty_midi.MAX_TICK = max(pretty_midi.pretty_midi.MAX_TICK, 10**10)
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # mido/pretty_midi raise many types on corrupt files
        raise MediaError(path, f"not a readable MIDI file ({err})") from None
    parts = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    if not parts:
        raise MediaError(path, "holds no pitched notes")
    if part is None:
        chosen = list(range(len(parts)))
    elif isinstance(part, int):
        if not 0 <= part < len(parts):
            raise MediaError(path, f"has {len(parts)} parts; part {part} does not exist")
        chosen = [part]
    else:
        chosen = [i for i, inst in enumerate(parts) if part.lower() in inst.name.lower()]
        if not chosen:
            names = [inst.name for inst in parts]
            raise MediaError(path, f"no part named like {part!r}; parts: {names}")

    def notes_of(indices: Sequence[int]) -> list[Note]:
        notes = [Note(int(n.pitch), float(n.start), float(n.end), int(n.velocity))
                 for i in indices for n in parts[i].notes]  # fmt: skip
        return sorted(notes, key=lambda n: (n.start, n.pitch))

    tempi = midi.get_tempo_changes()[1]
    meter = midi.time_signature_changes[0].numerator if midi.time_signature_changes else 4
    key = "C major"
    if midi.key_signature_changes:
        key = pretty_midi.key_number_to_key_name(midi.key_signature_changes[0].key_number)
        key = key.replace(" Major", " major")  # pretty_midi: "C Major", "c minor"
    return Score(
        name=name or _safe_name(path.stem),
        notes=notes_of(chosen),
        beats=np.asarray(midi.get_beats(), np.float64),
        meter=int(meter),
        tempo=float(tempi[0]) if len(tempi) else 120.0,
        key=key,
        source=source or str(path),
        licence=licence,
        accompaniment=notes_of([i for i in range(len(parts)) if i not in chosen]),
    )


# ------------------------------------------------------------------------- music21 corpus

# Pieces per instrument: (corpus path, part to play: index or name substring, None = all).
# Bach chorales for piano, plus keyboard works; quartet parts for strings (then chorale bass
# lines for the cello, soprano lines for the violin); chorale bass lines for trombone and
# soprano lines (melodies) for guitar.
CORPUS: dict[str, list[tuple[str, int | str | None]]] = {
    "piano": [
        ("bach/bwv846", None),
        ("mozart/k545/movement1_exposition", None),
        ("joplin/maple_leaf_rag", None),
        ("schumann_clara/polonaise_op1n1", None),
    ],
    "cello": [
        ("haydn/opus74no1/movement1", -1),
        ("beethoven/opus18no1/movement1", -1),
        ("mozart/k155/movement1", -1),
        ("haydn/opus74no1/movement2", -1),
    ],
    "violin": [
        ("haydn/opus74no1/movement1", 0),
        ("beethoven/opus18no1/movement1", 0),
        ("mozart/k155/movement1", 0),
        ("haydn/opus74no1/movement2", 0),
    ],
    "trombone": [],  # chorale bass lines, added from the chorale iterator
    "guitar": [],  # chorale soprano lines, added from the chorale iterator
}
CHORALE_PART = {
    "piano": None,
    "cello": "bass",
    "violin": "soprano",
    "trombone": "bass",
    "guitar": "soprano",
    "dance": None,
}
CORPUS_LICENCE = "music21 corpus (BSD-3-Clause; public-domain scores)"


def music21_available() -> bool:
    try:
        import music21  # noqa: F401
    except ImportError:
        return False
    return True


def _cache_dir() -> Path:
    from audiovis.data.cache import user_cache_dir

    return user_cache_dir() / "studio" / "midi"


def corpus_midi(work: str) -> Path:
    """The MIDI of a music21 corpus work (``bach/bwv846``, or ``chorale:N`` for
    Riemenschneider chorale N), converted once and cached."""
    cache = _cache_dir() / f"{_safe_name(work)}.mid"
    if cache.is_file():
        return cache
    if not music21_available():
        raise MissingDependency("the studio's corpus scores need music21: pip install music21")
    from music21 import corpus, repeat

    if work.startswith("chorale:"):
        number = int(work.split(":", 1)[1])
        stream = corpus.chorales.Iterator(numberingSystem="riemenschneider",
                                          currentNumber=number, highestNumber=number,
                                          returnType="stream").__next__()  # fmt: skip
    else:
        stream = corpus.parse(work)
    try:
        stream = stream.expandRepeats()
    except (repeat.ExpanderException, Exception):  # malformed repeats: play it as written
        for bar in stream.recurse().getElementsByClass("Barline"):
            bar.activeSite.remove(bar)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.tmp.mid")
    try:
        stream.write("midi", fp=str(tmp))
        os.replace(tmp, cache)
    finally:
        tmp.unlink(missing_ok=True)
    return cache


def corpus_score(work: str, part: int | str | None, instrument: str) -> Score:
    """A corpus work as a Score for ``instrument`` (its part; the rest accompanies)."""
    path = corpus_midi(work)
    if isinstance(part, int) and part < 0:
        import pretty_midi

        pretty_midi.pretty_midi.MAX_TICK = max(pretty_midi.pretty_midi.MAX_TICK, 10**10)
        count = sum(1 for i in pretty_midi.PrettyMIDI(str(path)).instruments if i.notes)
        part = count + part
    name = _safe_name(work.replace("chorale:", "chorale_"))
    score = score_from_midi(path, part, name=name, source=f"music21:{work}", licence=CORPUS_LICENCE)
    return fit_to_range(score, instrument)


def fit_to_range(score: Score, instrument: str) -> Score:
    """Transpose by octaves so the played notes sit in the instrument's range, dropping the
    few that still fall outside."""
    lo, hi = RANGE.get(instrument, (21, 108))
    if not score.notes:
        return score
    median = float(np.median([n.pitch for n in score.notes]))
    shift = 12 * round(((lo + hi) / 2 - median) / 12)
    notes = [replace(n, pitch=n.pitch + shift) for n in score.notes]
    notes = [n for n in notes if lo <= n.pitch <= hi]
    return replace(score, notes=notes)


# Riemenschneider numbers of the chorales in 3/4 (the waltz's music), read from the corpus once
THREE_FOUR_CHORALES = (1, 7, 12, 17, 53, 79, 90, 93, 102, 109, 116, 143, 155, 161, 164, 173, 176,
                       178, 188, 192, 194, 199, 203, 207, 208, 209, 217, 220, 222, 234, 243, 257,
                       296, 298, 302, 316, 334, 343, 368)  # fmt: skip
CATEGORIES = ("piano", "cello", "violin", "trombone", "guitar", "dance-waltz", "dance-chacha",
              "dance-tango", "dance-rumba")  # fmt: skip


def chorale_numbers(category: str, seed: int) -> list[int]:
    """Chorales for a category, in a seeded order; categories draw from disjoint sets, so no
    chorale is played by two of them (the split by piece stays clean)."""
    rng = np.random.default_rng(seed)
    if category == "dance-waltz":
        return [int(n) for n in rng.permutation(THREE_FOUR_CHORALES)]
    pool = [n for n in range(1, 372) if n not in THREE_FOUR_CHORALES and n != 15]  # 15: bad repeats
    order = rng.permutation(pool)
    others = [c for c in CATEGORIES if c != "dance-waltz"]
    i = others.index(category) if category in others else len(others) - 1
    share = len(order) // len(others)
    return [int(n) for n in order[i * share : (i + 1) * share]]


def corpus_works(instrument: str, count: int, seed: int) -> Iterator[tuple[str, int | str | None]]:
    """``count`` works for an instrument (or ``dance-<style>``): its listed works first, then
    chorales."""
    listed = CORPUS.get(instrument, [])
    yield from listed[:count]
    part = CHORALE_PART.get(instrument.split("-")[0])
    for number in chorale_numbers(instrument, seed)[: max(0, count - len(listed))]:
        yield f"chorale:{number}", part


# ------------------------------------------------------------------------------ procedural

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def procedural_score(
    seed: int,
    instrument: str,
    seconds: float = 30.0,
    meter: int = 4,
    tempo: float | None = None,
) -> Score:
    """A seeded melody over a I–IV–V–I progression in a random key, in the instrument's range.

    Phrases of stepwise motion with occasional leaps; note lengths from half a beat to two
    beats; a chord accompaniment on the downbeats. Used when music21 is not installed.
    """
    rng = np.random.default_rng(seed)
    tempo = float(tempo or rng.choice([72, 84, 96, 108, 120]))
    beat = 60.0 / tempo
    mode = str(rng.choice(["major", "minor"]))
    tonic = int(rng.integers(0, 12))
    lo, hi = RANGE.get(instrument, (48, 84))
    scale = [p for p in range(lo, hi + 1) if (p - tonic) % 12 in SCALES[mode]]
    middle = len(scale) // 2
    idx, t, notes = middle, 0.0, []
    while t < seconds:
        length = beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
        step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 4, -4]))
        idx = int(np.clip(idx + step, 0, len(scale) - 1))
        idx += int(np.sign(middle - idx)) if abs(idx - middle) > len(scale) // 3 else 0
        notes.append(Note(scale[idx], t, min(t + 0.95 * length, seconds),
                          int(rng.integers(60, 110))))  # fmt: skip
        t += length
    beats = np.arange(0.0, seconds, beat)
    chords, acc = (0, 5, 7, 0), []
    bar = beat * meter
    for i, start in enumerate(np.arange(0.0, seconds, bar)):
        root = 48 + (tonic + chords[i % 4]) % 12
        third = 4 if mode == "major" else 3
        for offset in (0, third, 7):
            acc.append(Note(root + offset - 12, float(start), float(min(start + bar, seconds)), 55))
    key = f"{KEY_NAMES[tonic]} {mode}"
    return Score(
        name=f"procedural_{instrument}_{seed}",
        notes=notes,
        beats=beats,
        meter=meter,
        tempo=tempo,
        key=key,
        source="procedural",
        licence="CC0",
        accompaniment=acc,
    )


def scores_for(instrument: str, count: int, seed: int, use_corpus: bool = True) -> list[Score]:
    """``count`` scores for an instrument: from the corpus when music21 is there, else
    procedural ones; works that fail to load are skipped with a warning."""
    import warnings

    if not (use_corpus and music21_available()):
        return [procedural_score(seed * 1000 + i, instrument) for i in range(count)]
    scores = []
    for work, part in corpus_works(instrument, count + 4, seed):
        try:
            score = corpus_score(work, part, instrument)
        except (AudiovisError, ValueError, IndexError, KeyError) as err:
            warnings.warn(f"studio: skipping {work} ({err})", stacklevel=2)
            continue
        if len(score.notes) >= 8:
            scores.append(score)
        if len(scores) == count:
            break
    return scores


# ------------------------------------------------------------------------------------ dance

# Style: (beats per minute, beats per bar). Ballroom tempi: slow waltz 28-30 bars/min,
# cha-cha ~30 bars/min, tango ~32 bars/min, rumba ~25 bars/min.
DANCE_STYLES: dict[str, tuple[float, int]] = {
    "waltz": (87.0, 3),
    "chacha": (120.0, 4),
    "tango": (128.0, 4),
    "rumba": (100.0, 4),
}
# GM percussion per style: (beat offset within the bar, drum pitch, velocity)
_PATTERNS: dict[str, list[tuple[float, int, int]]] = {
    # oom-pah-pah: bass drum on 1, hi-hats on 2 and 3
    "waltz": [(0, 36, 100), (1, 42, 70), (2, 42, 70)],
    # 2, 3, 4-and-1: cowbell on every beat, guiro on the cha-cha-cha
    "chacha": [(0, 36, 95), (1, 56, 75), (2, 56, 75), (3, 73, 80), (3.5, 73, 80)],
    # tango: four marked beats, accent on 1, a quick pickup before 1
    "tango": [(0, 36, 110), (1, 38, 70), (2, 36, 90), (3, 38, 70), (3.5, 38, 60)],
    # rumba clave (3-2 son clave over two bars is folded into one bar of 4) + bass on 1
    "rumba": [(0, 36, 90), (0, 75, 85), (1.5, 75, 85), (3, 75, 85)],
}


def retime(score: Score, tempo: float, meter: int) -> Score:
    """Stretch a score to ``tempo`` (beats per minute) and give it ``meter`` beats per bar."""
    old = float(np.median(np.diff(score.beats))) if len(score.beats) > 1 else 60.0 / score.tempo
    k = (60.0 / tempo) / old

    def scaled(notes: list[Note]) -> list[Note]:
        return [replace(n, start=n.start * k, end=n.end * k) for n in notes]

    return replace(
        score,
        notes=scaled(score.notes),
        accompaniment=scaled(score.accompaniment),
        drums=scaled(score.drums),
        beats=score.beats * k,
        tempo=tempo,
        meter=meter,
    )


def add_rhythm(score: Score, style: str) -> Score:
    """Lay the style's percussion pattern over every bar of the score's beats."""
    beat = 60.0 / score.tempo
    drums = []
    for bar_start in score.downbeats():
        for offset, pitch, velocity in _PATTERNS[style]:
            t = float(bar_start + offset * beat)
            drums.append(Note(pitch, t, t + 0.1, velocity))
    return replace(score, drums=sorted(drums, key=lambda n: n.start))


def dance_scores(style: str, count: int, seed: int, use_corpus: bool = True) -> list[Score]:
    """Music for a dance style: chorales (all voices) at the style's tempo and metre (3/4
    chorales for the waltz) with its rhythm section; procedural music without music21."""
    import warnings

    if style not in DANCE_STYLES:
        raise AudiovisError(f"unknown dance style {style!r}; known: {sorted(DANCE_STYLES)}")
    tempo, meter = DANCE_STYLES[style]
    scores: list[Score] = []
    if use_corpus and music21_available():
        for work, _ in corpus_works(f"dance-{style}", count + 6, seed):
            try:
                score = score_from_midi(
                    corpus_midi(work),
                    None,
                    name=_safe_name(work.replace("chorale:", "chorale_")),
                    source=f"music21:{work}",
                    licence=CORPUS_LICENCE,
                )
            except (AudiovisError, ValueError, IndexError, KeyError) as err:
                warnings.warn(f"studio: skipping {work} ({err})", stacklevel=2)
                continue
            if (score.meter == 3) != (meter == 3) or len(score.notes) < 16:
                continue
            scores.append(score)
            if len(scores) == count:
                break
    while len(scores) < count:
        scores.append(procedural_score(seed * 1000 + 500 + len(scores), "piano", meter=meter))
    out = []
    for score in scores:
        score = add_rhythm(retime(score, tempo, meter), style)
        out.append(replace(score, name=f"{style}_{score.name}"))
    return out
