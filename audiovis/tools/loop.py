"""``audiovis loop``: the closed loop of issue 10, music → APVG's generated piano video →
Audeo (Video2Roll, Roll2Midi) → music, scored against the input notes.

    audiovis loop --midi piece.mid --apvg apvg.ckpt --video2roll v2r.ckpt \\
        --roll2midi r2m.ckpt --out loop/
    audiovis loop --audio piece.wav [--midi piece.mid] --apvg ... --out loop/
    audiovis loop --midi piece.mid --first-frame studio --performer 2 --apvg ... --out loop/

A MIDI input is rendered to audio as the studio renders its pieces (FluidSynth, loudness
normalised), and is the reference the scores compare with. An audio input is used as it is;
with ``--midi`` as well, that MIDI is the reference, and without it no scores are computed.

With a reference, the studio also renders its own top-down video of the same notes (the
ground truth APVG learns to imitate) and the same Audeo transcribes it: that is the ceiling
the loop can reach. APVG plays in its reference frame (a frame of its training videos), or
in the scene ``--first-frame`` gives: an image of a keyboard from above at the model's size,
or ``studio``, the empty keyboard of the studio performer ``--performer``, which is the
ceiling's own scene. The ceiling and the pixel probe take the studio look nearest the scene.
``report.json`` holds, for the loop and for the ceiling, note-onset precision / recall / F1
(mir_eval, onsets within 50 ms, offsets ignored) and frame-level scores of the roll at each
stage: Video2Roll thresholded, then Roll2Midi. It also holds the keys read straight off the
generated frames' pixels by the studio's probe (what APVG drew, without Audeo) and the notes
of the reference roll itself (what a 25 fps roll can hold), so the stage that loses the
notes shows.

Written to ``--out`` (each file under a temporary name first, renamed at the end):
``input.wav`` (the audio APVG hears), ``input.mid``, ``generated.mp4`` (APVG's video with the
input audio), ``recovered.mid`` / ``.wav`` / ``.mp4`` (the transcription, and the generated
video with it as its sound), ``loop_roll.png`` (reference, Video2Roll probabilities, Roll2Midi
output, recovered roll, top to bottom), ``ceiling.mp4`` / ``.mid`` / ``ceiling_roll.png``,
``rolls.npz`` and ``report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from audiovis.errors import AudiovisError, FileProblem

if TYPE_CHECKING:
    from torch import Tensor

    from audiovis.data.studio.rigs.base import Take
    from audiovis.data.studio.score import Score
    from audiovis.models.apvg import APVG
    from audiovis.models.audeo import Roll2Midi, Video2Roll
    from audiovis.music import NoteEvent

PIANO_RANGE = (21, 108)  # MIDI pitches of the 88 keys, A0 .. C8
ONSET_TOLERANCE = 0.05  # seconds, mir_eval's default


# ------------------------------------------------------------------------------ checkpoints


def load_apvg(path: str | os.PathLike[str]) -> APVG:
    """An APVG from its checkpoint (any stage, front-end included), or one clear error naming
    the file; a checkpoint of another zoo model says which it is."""
    import torch

    from audiovis.models.apvg import load_apvg as load

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}
    except Exception:  # unreadable: load() names the problem
        ckpt = {}
    hparams = (ckpt.get("hyper_parameters") or {}) if isinstance(ckpt, dict) else {}
    saved = str(hparams.get("_class_path", "")).rsplit(".", 1)[-1]
    if saved and saved != "APVG":
        raise FileProblem(path, f"is not an APVG checkpoint (a {saved} checkpoint)")
    return load(path)


# ---------------------------------------------------------------------------------- input


def piano_score(path: Path) -> Score:
    """The notes of a MIDI file within the piano's 88 keys (every non-drum part), or an error."""
    from dataclasses import replace

    from audiovis.data.studio.score import score_from_midi

    score = score_from_midi(path)  # MediaError: missing, unreadable, no pitched notes
    lo, hi = PIANO_RANGE
    notes = [n for n in score.notes + score.accompaniment if lo <= n.pitch <= hi]
    if not notes:
        raise FileProblem(path, "holds no notes in the piano's range (MIDI 21..108, A0..C8)")
    notes.sort(key=lambda n: (n.start, n.pitch))
    return replace(score, notes=notes, accompaniment=[], drums=[])


def window_error(seconds: float, frames: int, fps: float) -> str | None:
    """Why ``seconds`` of music cannot make one generation window of ``frames``, or None."""
    if int(seconds * fps) >= frames:
        return None
    return (f"{seconds:.2f} s of music is shorter than one generation window of {frames} "
            f"frames ({frames / fps:.2f} s at {fps:g} fps)")  # fmt: skip


# -------------------------------------------------------------------------------- scoring


def stage_scores(
    reference: Sequence[NoteEvent],
    reference_roll: np.ndarray,
    roll: np.ndarray,
    fps: float,
    keys: tuple[int, int] = (0, 88),
) -> dict[str, Any]:
    """Note-onset and frame scores of a binary roll (T, 88) against the reference.

    Notes are read off the roll as Audeo's synthesis reads them (runs of active frames); an
    estimated note matches a reference note of the same pitch with an onset within 50 ms,
    one to one (mir_eval). Frame scores count every (frame, key) cell of the key range
    ``keys`` (offset, end), micro-averaged. Counts are returned too, so pieces can be pooled.
    """
    from audiovis.metrics.transcription import onset_matches
    from audiovis.music import LOWEST_PITCH, roll_to_notes

    lo, hi = keys
    roll = np.asarray(roll)[:, lo:hi] > 0.5
    truth = np.asarray(reference_roll)[: len(roll), lo:hi] > 0.5
    estimate = roll_to_notes(roll.astype(np.float32), fps, lowest_pitch=LOWEST_PITCH + lo)
    matches = onset_matches(list(reference), estimate, ONSET_TOLERANCE)
    ref, est = len(reference), len(estimate)
    tp, fp = int((roll & truth).sum()), int((roll & ~truth).sum())
    fn = int((~roll & truth).sum())

    def ratio(a: float, b: float) -> float:
        return round(a / b, 4) if b else 0.0

    return {
        "onset_precision": ratio(matches, est),
        "onset_recall": ratio(matches, ref),
        "onset_f1": ratio(2 * matches, ref + est),
        "frame_precision": ratio(tp, tp + fp),
        "frame_recall": ratio(tp, tp + fn),
        "frame_f1": ratio(2 * tp, 2 * tp + fp + fn),
        "onset_matches": matches,
        "reference_notes": ref,
        "estimated_notes": est,
        "frame_tp": tp,
        "frame_fp": fp,
        "frame_fn": fn,
    }


def reference_notes(score: Score, keys: tuple[int, int], fps: float,
                    num_frames: int) -> list[NoteEvent]:  # fmt: skip
    """The score's notes on the keys ``keys`` (offset, end; A0 = 0) that start within the
    first ``num_frames`` frames: what the loop's rolls are scored against."""
    from audiovis.music import NoteEvent

    lo, hi = keys
    return [NoteEvent(n.pitch, n.start, n.end, n.velocity) for n in score.notes
            if lo <= n.pitch - PIANO_RANGE[0] < hi and n.start * fps < num_frames]  # fmt: skip


# ----------------------------------------------------------------------------- generation


def transcribe_video(
    video: np.ndarray,
    v2r: Video2Roll,
    r2m: Roll2Midi,
    what: str,
    say: Callable[[str], None] = print,
    quiet: bool = True,
) -> dict[str, np.ndarray]:
    """Audeo on a video (T, H, W, 3) uint8: Video2Roll on the keyboard's crops, then
    Roll2Midi (:func:`audiovis.models.audeo.transcribe`'s rolls, plus ``video2roll``, the
    Video2Roll probabilities thresholded). A video whose keyboard the model cannot locate is
    cropped at the studio's keyboard box, and ``say`` tells so."""
    import torch
    from tqdm.auto import tqdm

    from audiovis.models.audeo import transcribe

    say(f"transcribing the {what} with Video2Roll + Roll2Midi")
    tensor = torch.from_numpy(video).permute(0, 3, 1, 2)
    try:  # once per video (a model with keyboard_box "auto" locates the keyboard)
        box = v2r.box_for(tensor, "byte")
    except AudiovisError as err:
        box = v2r.studio_box()
        say(f"{err}: cropping the studio's keyboard box in the {what}")
    crops = torch.cat([v2r.crops(tensor[i : i + 64], box, value_range="byte")
                       for i in range(0, len(tensor), 64)])  # fmt: skip
    with tqdm(total=len(crops), unit="frame", desc="Video2Roll", disable=quiet) as bar:
        rolls = transcribe(crops, v2r, r2m, progress=bar.update)
    rolls["video2roll"] = (rolls["probabilities"] >= v2r.threshold).astype(np.uint8)
    return rolls


class Scene(NamedTuple):
    """Where APVG plays (:func:`first_frame`): ``frame`` (3, H, W) in [-1, 1], or ``None`` for
    the model's reference frame; ``keys`` (88,) down in it, or ``None`` (unknown: the
    key-press head decides); ``performer``, the studio look the ceiling and the pixel probe
    use; ``name`` for the report."""

    frame: Tensor | None
    keys: Tensor | None
    performer: int
    name: str


def generate(
    model: APVG,
    audio: Tensor,
    window: int,
    context: int = 8,
    progress: Callable[[int], None] | None = None,
    scene: Scene | None = None,
) -> Tensor:
    """Frames (T, 3, H, W) in [-1, 1] for a waveform (S,): :meth:`APVG.generate`, window by
    window with the state carried and ``context`` frames of music around each window, in
    the ``scene`` of :func:`first_frame` (default the reference frame)."""
    import torch

    frame, keys = (None, None) if scene is None else (scene.frame, scene.keys)
    with torch.no_grad():
        out = model.generate(audio, window, context, progress, frame, keys)
    return out["frames"].float()


def studio_scene(performer: int, size: int, fps: float) -> Take:
    """The studio performer's empty keyboard, one frame: every key up and the hands at rest
    (the scene of that performer's videos, no note of any piece in it), with the hands' mask
    and keypoints."""
    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.data.studio.score import Score

    empty = Score(name="empty", notes=[], beats=np.zeros(1))
    return PianoRig().render(empty, np.zeros(1), Look.performer_look(performer), size, fps, 1)


def nearest_look(frame: np.ndarray, fps: float) -> int:
    """The studio performer whose empty keyboard looks most like ``frame`` (H, W, 3) uint8
    (the framing of the keyboard differs between performers)."""
    from audiovis.data.studio.rigs.base import NUM_PERFORMERS

    errors = [float(np.abs(studio_scene(i, frame.shape[0], fps).frames[0].astype(np.float32)
                           - frame.astype(np.float32)).mean())
              for i in range(NUM_PERFORMERS)]  # fmt: skip
    return int(np.argmin(errors))


def first_frame(spec: str | None, performer: int | None, model: APVG) -> Scene:
    """The scene APVG performs in, from ``--first-frame``: ``None`` (the model's reference
    frame), ``"studio"`` (the studio performer's empty keyboard; ``performer`` or the one
    nearest the reference frame) or an image file of the model's size."""
    import torch

    from audiovis.media import read_image, to_uint8

    size, fps = model.image_size, model.fps
    if spec is None:
        image = to_uint8(model.reference_frame[None])[0]
        look = nearest_look(image, fps) if performer is None else performer
        return Scene(None, None, look, "reference frame")
    if spec == "studio":
        if performer is None:
            performer = nearest_look(to_uint8(model.reference_frame[None])[0], fps)
        image = studio_scene(performer, size, fps).frames[0]
        name = f"studio performer p{performer} (empty keyboard)"
        keys: Tensor | None = torch.zeros_like(model.reference_keys)
    else:
        image = read_image(spec, size, "--first-frame")
        name, keys = spec, None
    frame = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 127.5 - 1
    if model.generator.keys is not None:
        try:
            model.locate_keys(frame[None])
        except AudiovisError as err:
            raise FileProblem(Path(spec), f"shows no piano keyboard APVG can play ({err})"
                              ) from None  # fmt: skip
    look = nearest_look(image, fps) if performer is None else performer
    return Scene(frame, keys, look, name)


# ---------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="audiovis loop",
        description="Music → APVG's piano video → Audeo → music, scored against the input "
        "notes and against Audeo on the studio's own video of them (the ceiling).",
    )
    p.add_argument("--audio", help="the music (any audio file); its notes are --midi if given")
    p.add_argument("--midi", help="the piece's MIDI: rendered to audio when no --audio is given, "
                   "and the reference the scores compare with")  # fmt: skip
    p.add_argument("--apvg", required=True, help="an APVG checkpoint trained on piano")
    p.add_argument("--video2roll", required=True, help="an Audeo Video2Roll checkpoint")
    p.add_argument("--roll2midi", required=True, help="an Audeo Roll2Midi checkpoint")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--window", type=int, default=16, help="frames generated per window (16)")
    p.add_argument("--context", type=int, default=8, help="frames of music each window hears "
                   "on each side (8; 0: the window's own audio alone)")  # fmt: skip
    p.add_argument(
        "--first-frame",
        metavar="IMAGE|studio",
        help="the scene APVG plays in: an image of a keyboard from above at the "
        "model's size, or `studio`: the studio performer's empty keyboard (see "
        "--performer), the ceiling's own scene; default the model's reference "
        "frame (the first frame of its training videos)",
    )
    p.add_argument("--performer", type=int, help="studio performer of the ceiling's video and, "
                   "with --first-frame studio, of APVG's scene (0..3; default: the one whose "
                   "keyboard framing APVG's first frame has)")  # fmt: skip
    p.add_argument("--no-ceiling", action="store_true", help="skip the ceiling's transcription")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit status (user errors raise AudiovisError)."""
    args = build_parser().parse_args(argv)
    say: Callable[[str], None] = (lambda _: None) if args.quiet else \
        (lambda text: print(f"loop: {text}", file=sys.stderr, flush=True))  # fmt: skip
    if not args.audio and not args.midi:
        raise AudiovisError("give the music: --midi PIECE.mid or --audio PIECE.wav")
    if args.window < 1:
        raise AudiovisError(f"--window must be >= 1 frame, got {args.window}")
    if args.context < 0:
        raise AudiovisError(f"--context must be >= 0 frames, got {args.context}")
    from audiovis.media import MediaError

    for path in (args.audio, args.midi, args.apvg, args.video2roll, args.roll2midi):
        if path is not None and not Path(path).is_file():
            raise MediaError(Path(path), "no such file")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise FileProblem(Path(args.out), "exists and is not a folder (--out)")

    from audiovis.models.audeo import load_roll2midi, load_video2roll

    # everything that can be wrong is checked before the long work starts
    apvg = load_apvg(args.apvg)
    v2r = load_video2roll(args.video2roll)
    r2m = load_roll2midi(args.roll2midi, v2r)  # refuses another key range
    if abs(apvg.fps - v2r.fps) > 1e-6:
        raise FileProblem(Path(args.video2roll), f"reads video at {v2r.fps:g} fps but the APVG "
                          f"generates {apvg.fps:g} fps")  # fmt: skip
    if args.performer is not None and not 0 <= args.performer <= 3:
        raise AudiovisError(f"--performer must be a studio performer 0..3, got {args.performer}")
    scene = first_frame(args.first_frame, args.performer, apvg)
    fps, sr = apvg.fps, apvg.sample_rate
    score = piano_score(Path(args.midi)) if args.midi else None
    if args.audio:
        from audiovis.media import read_audio

        wave, _ = read_audio(args.audio, sr)
        problem = window_error(len(wave) / sr, args.window, fps)
        if problem:
            raise FileProblem(Path(args.audio), problem)
    else:
        assert score is not None
        problem = window_error(score.duration, args.window, fps)
        if problem:
            raise FileProblem(Path(args.midi), problem)
        from audiovis.data.studio.synth import render_audio

        say("rendering the MIDI to audio (FluidSynth)")
        wave = render_audio(score, "piano", sr)
    num_frames = int(len(wave) * fps / sr)
    wave = wave[: int(round(num_frames * sr / fps))]

    report, arrays, files = run(args, apvg, v2r, r2m, score, wave, num_frames, scene, say)
    write_outputs(Path(args.out), report, arrays, files, say)
    loop, ceiling = report.get("loop", {}), report.get("ceiling") or {}
    if loop.get("roll2midi"):
        line = f"loop note-onset F1 {loop['roll2midi']['onset_f1']:.3f}"
        if ceiling.get("roll2midi"):
            line += f", ceiling {ceiling['roll2midi']['onset_f1']:.3f}"
        print(f"{line} → {Path(args.out) / 'report.json'}")
    else:
        print(f"no reference notes (give --midi to score) → {Path(args.out) / 'report.json'}")
    return 0


def run(
    args: argparse.Namespace,
    apvg: APVG,
    v2r: Video2Roll,
    r2m: Roll2Midi,
    score: Score | None,
    wave: np.ndarray,
    num_frames: int,
    scene: Scene,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """The long work: generate (in the ``scene`` of :func:`first_frame`), transcribe,
    synthesise, score. Nothing is written here."""
    import torch
    from tqdm.auto import tqdm

    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.media import to_uint8
    from audiovis.models.audeo import render

    fps, sr = apvg.fps, apvg.sample_rate
    keys = (v2r.key_offset, v2r.key_offset + v2r.num_keys)
    say(
        f"generating {num_frames} frames ({num_frames / fps:.1f} s) with APVG in the "
        f"{scene.name}"
    )
    with tqdm(total=num_frames, unit="frame", desc="APVG", disable=args.quiet) as bar:
        frames = to_uint8(generate(apvg, torch.from_numpy(wave).float(), args.window, args.context,
                                   bar.update, scene))  # fmt: skip

    def audeo(video: np.ndarray, what: str) -> dict[str, np.ndarray]:
        return transcribe_video(video, v2r, r2m, what, say, args.quiet)

    loop = audeo(frames, "generated video")
    midi, recovered = render(loop["roll"], fps, sr, r2m.program, r2m.soundfont,
                             r2m.min_note_frames)  # fmt: skip
    report: dict[str, Any] = {
        "input": {"audio": args.audio, "midi": args.midi, "seconds": round(len(wave) / sr, 3),
                  "frames": num_frames},
        "checkpoints": {"apvg": args.apvg, "video2roll": args.video2roll,
                        "roll2midi": args.roll2midi},
        "settings": {"fps": fps, "sample_rate": sr, "image_size": apvg.image_size,
                     "window": args.window, "context": args.context, "keys": list(keys),
                     "scene": scene.name,
                     "video2roll_threshold": v2r.threshold,
                     "roll2midi_threshold": r2m.threshold,
                     "note_onset_tolerance_s": ONSET_TOLERANCE},
        "recovered_notes": sum(len(i.notes) for i in midi.instruments),
    }  # fmt: skip
    arrays: dict[str, np.ndarray] = {f"loop_{k}": v for k, v in loop.items()}
    files: dict[str, Any] = {"frames": frames, "wave": wave, "midi": midi, "recovered": recovered}
    if score is None:
        report["loop"] = {"video2roll": None, "roll2midi": None}
        report["note"] = "no reference notes: give --midi to score the loop"
        return report, arrays, files

    lo, hi = keys
    truth = score.roll(fps, num_frames)
    reference = reference_notes(score, keys, fps, num_frames)
    in_keys = [n for n in score.notes if lo <= n.pitch - PIANO_RANGE[0] < hi]
    report["reference"] = {
        "notes": len(reference),
        "notes_outside_keys": len(score.notes) - len(in_keys),
        # the ground-truth roll read as notes: what a roll at this frame rate can hold
        "roll": stage_scores(reference, truth, truth, fps, keys),
    }
    stages = (("video2roll", "video2roll"), ("roll2midi", "roll"))
    report["loop"] = {s: stage_scores(reference, truth, loop[k], fps, keys) for s, k in stages}
    performer = scene.performer
    look = Look.performer_look(performer)
    drawn = PianoRig().pressed_from_pixels(frames, look).astype(np.uint8)
    report["apvg"] = {
        "performer_framing": performer,
        "keys_by_pixels": stage_scores(reference, truth, drawn, fps, keys),
    }
    arrays.update({"reference_roll": truth, "apvg_keys_by_pixels": drawn})
    files["score"] = score
    report["ceiling"] = None
    if not args.no_ceiling:
        say(f"rendering the studio's own video of the notes (performer p{performer})")
        take = PianoRig().render(score, np.zeros(num_frames), look, apvg.image_size, fps,
                                 num_frames)  # fmt: skip
        ceiling = audeo(take.frames, "studio's video (the ceiling)")
        report["ceiling"] = {
            s: stage_scores(reference, truth, ceiling[k], fps, keys) for s, k in stages
        }
        arrays.update({f"ceiling_{k}": v for k, v in ceiling.items()})
        files["ceiling_frames"] = take.frames
        files["ceiling_midi"], _ = render(ceiling["roll"], fps, sr, r2m.program, r2m.soundfont,
                                          r2m.min_note_frames)  # fmt: skip
    return report, arrays, files


def write_outputs(
    out: Path,
    report: dict[str, Any],
    arrays: dict[str, np.ndarray],
    files: dict[str, Any],
    say: Callable[[str], None],
) -> None:
    """Write everything into a hidden folder inside ``out``, then rename the files into place:
    an interruption leaves no half-written file under a final name."""
    from PIL import Image

    from audiovis.media import write_audio, write_video
    from audiovis.models.audeo import roll_image

    say(f"writing {out}")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".loop.", suffix=".tmp", dir=out))
    fps, sr = report["settings"]["fps"], report["settings"]["sample_rate"]
    try:
        write_audio(stage / "input.wav", files["wave"], sr)
        write_video(stage / "generated.mp4", files["frames"], fps, files["wave"], sr)
        files["midi"].write(str(stage / "recovered.mid"))
        write_audio(stage / "recovered.wav", files["recovered"], sr)
        write_video(stage / "recovered.mp4", files["frames"], fps, files["recovered"], sr)
        loop_rows = [arrays["loop_probabilities"], arrays["loop_refined"], arrays["loop_roll"]]
        if "reference_roll" in arrays:
            loop_rows.insert(0, arrays["reference_roll"])
        Image.fromarray(roll_image(*loop_rows)).save(stage / "loop_roll.png")
        if "score" in files:
            files["score"].to_midi(0).write(str(stage / "input.mid"))
        if "ceiling_frames" in files:
            write_video(stage / "ceiling.mp4", files["ceiling_frames"], fps, files["wave"], sr)
            files["ceiling_midi"].write(str(stage / "ceiling.mid"))
            rows = [arrays["reference_roll"], arrays["ceiling_probabilities"],
                    arrays["ceiling_refined"], arrays["ceiling_roll"]]  # fmt: skip
            Image.fromarray(roll_image(*rows)).save(stage / "ceiling_roll.png")
        np.savez_compressed(stage / "rolls.npz", **arrays)  # type: ignore[arg-type]
        names = sorted(p.name for p in stage.iterdir() if not p.name.startswith("."))
        report["files"] = [*names, "report.json"]
        (stage / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        # report.json last: its presence says the rest is complete
        for name in [n for n in names if n != "report.json"] + ["report.json"]:
            os.replace(stage / name, out / name)
    except BaseException:
        for name in report.get("files", []):
            if not (stage / name).exists():  # already moved: this run's file, remove it
                (out / name).unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()


if __name__ == "__main__":
    raise SystemExit(main())
