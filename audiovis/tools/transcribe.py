"""``audiovis transcribe``: a silent piano video → .mid, .wav and the video with that audio
(Audeo: Video2Roll, optionally Roll2Midi, then FluidSynth).

    audiovis transcribe performance.mp4 --video2roll v2r.ckpt --roll2midi r2m.ckpt --out out/

Videos of any length are decoded as a stream for the keyboard crops; the decoded frames are
kept for re-encoding them with the new audio while they fit in ``KEEP_FRAMES_BYTES``, and a
longer video is decoded a second time instead, so memory holds only the small crops.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audiovis.errors import AudiovisError
from audiovis.media import MediaError

KEEP_FRAMES_BYTES = 256 * 2**20  # decoded frames kept for the re-encode, beyond: decode again


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``x,y,w,h`` in pixels."""
    try:
        values = tuple(int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise AudiovisError(f"--box must be x,y,w,h in pixels, got {text!r}") from None
    if len(values) != 4:
        raise AudiovisError(f"--box must be x,y,w,h in pixels, got {text!r}")
    return values  # type: ignore[return-value]


def video_info(path: Path) -> tuple[int, int, float, int]:
    """(height, width, seconds, approximate frames) of a video file, or a MediaError."""
    import av

    if not path.is_file():
        raise MediaError(path, "no such file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(path, "has no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            base = stream.time_base
            seconds = float(stream.duration * base) if stream.duration and base else 0.0
            if not seconds and container.duration:
                seconds = container.duration / 1e6
            return stream.height, stream.width, seconds, int(stream.frames or seconds * rate)
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable video file ({err})") from None


def frames_at(path: Path, fps: float) -> Iterator[np.ndarray]:
    """Decode RGB frames resampled to ``fps``: output frame k shows the latest source frame
    shown by time k / fps (as ``audiovis.media.read_video``), one at a time."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            k, start = 0, None
            last: np.ndarray | None = None
            last_time = 0.0
            # one converter for the whole stream: a new one per frame costs 3x the decoding
            reformatter = av.video.reformatter.VideoReformatter()
            for i, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else i / rate
                start = t if start is None else start
                t -= start
                while last is not None and k / fps < t - 1e-6:
                    yield last
                    k += 1
                last, last_time = reformatter.reformat(frame, format="rgb24").to_ndarray(), t
            if last is not None:
                while k / fps < last_time + 1.0 / rate - 1e-6:
                    yield last
                    k += 1
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable video file ({err})") from None


def _chunks(frames: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield np.stack(chunk)
            chunk = []
    if chunk:
        yield np.stack(chunk)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="audiovis transcribe",
        description="Transcribe a piano video: keys → MIDI → audio, and the video with it.",
    )
    parser.add_argument("video", help="a video of a piano keyboard seen from above")
    parser.add_argument("--video2roll", required=True, help="a Video2Roll checkpoint")
    parser.add_argument("--roll2midi", help="a Roll2Midi checkpoint (refines the roll)")
    parser.add_argument(
        "--box", help="keyboard box x,y,w,h in pixels (default: the model's, in fractions)"
    )
    parser.add_argument(
        "--keyboard-box",
        type=float,
        nargs=4,
        metavar=("X", "Y", "W", "H"),
        help="keyboard box in fractions of the frame (default: the model's box, or for a "
        'model with keyboard_box "auto" the keyboard located in the first frames)',
    )
    parser.add_argument("--program", type=int, default=0, help="General MIDI program (0..127)")
    parser.add_argument("--soundfont", help="a General MIDI .sf2 (default: pretty_midi's)")
    parser.add_argument("--threshold", type=float, help="key-down probability (model's)")
    parser.add_argument("--offset-threshold", type=float,
                        help="probability under which a note ends (model's)")  # fmt: skip
    parser.add_argument("--merge-gap", type=int, help="off frames a note bridges (model's)")
    parser.add_argument("--min-note-frames", type=int, help="shortest note kept (model's)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="run Video2Roll under bfloat16 autocast (faster on CPUs with AMX/AVX512-BF16; "
        "probabilities differ slightly from float32's; ignored, with a warning, on a CPU "
        "without them, where bf16 is about 100x slower)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on 2 cores this small network runs 1.5-10x slower "
        "with 2 threads once anything else uses the CPU)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    import torch

    if args.threads < 1:
        raise AudiovisError(f"--threads must be at least 1, got {args.threads}")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _transcribe(args)
    finally:
        torch.set_num_threads(threads)  # as it was, for callers in the same process


def _transcribe(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from audiovis.hardware import CPU_BF16_ENV, cpu_has_fast_bf16
    from audiovis.media import VideoWriter, atomic_path, write_audio
    from audiovis.models.audeo import (
        check_box,
        crop_box,
        load_roll2midi,
        load_video2roll,
        locate_keyboard,
        render,
        roll_image,
        transcribe,
    )

    if args.bf16 and not cpu_has_fast_bf16():
        print("warning: --bf16 ignored: this CPU has no bfloat16 units (AVX-512 BF16 / AMX), "
              f"where bf16 runs about 100x slower than fp32 ({CPU_BF16_ENV}=1 forces it)",
              file=sys.stderr)  # fmt: skip
        args.bf16 = False
    if not 0 <= args.program <= 127:
        raise AudiovisError(f"--program must be a General MIDI program 0..127, got {args.program}")
    if args.soundfont is not None and not Path(args.soundfont).is_file():
        raise MediaError(Path(args.soundfont), "no such soundfont")
    video = Path(args.video)
    height, width, seconds, approx = video_info(video)
    v2r = load_video2roll(args.video2roll)
    r2m = load_roll2midi(args.roll2midi, v2r) if args.roll2midi else None
    box: Any = v2r.keyboard_box
    if args.box and args.keyboard_box:
        raise AudiovisError("give --box (pixels) or --keyboard-box (fractions), not both")
    if args.keyboard_box:
        box = check_box(args.keyboard_box)
    if args.box:
        x, y, w, h = parse_box(args.box)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise AudiovisError(
                f"--box {args.box} is outside the {width}x{height} frame of {video}"
            )
        box = check_box((x / width, y / height, w / width, h / height))
    if args.threshold is not None:
        if not 0 < args.threshold < 1:
            raise AudiovisError(f"--threshold must be in (0, 1), got {args.threshold}")
        (r2m if r2m is not None else v2r).threshold = args.threshold
    reader = r2m if r2m is not None else v2r  # the stage whose roll becomes notes
    if args.offset_threshold is not None:
        if not 0 < args.offset_threshold < 1:
            raise AudiovisError(f"--offset-threshold must be in (0, 1), got "
                                f"{args.offset_threshold}")  # fmt: skip
        reader.offset_threshold = args.offset_threshold
    if args.merge_gap is not None:
        if args.merge_gap < 0:
            raise AudiovisError(f"--merge-gap must be >= 0, got {args.merge_gap}")
        reader.merge_gap = args.merge_gap
    if args.min_note_frames is not None:
        if args.min_note_frames < 1:
            raise AudiovisError(f"--min-note-frames must be >= 1, got {args.min_note_frames}")
        reader.min_note_frames = args.min_note_frames
    fps = v2r.fps
    # decode, Video2Roll, re-encode: three passes over the frames
    total = int(round(seconds * fps)) or approx
    bar = tqdm(total=3 * total, unit="frame", desc="transcribing", disable=args.quiet)
    crops: list[torch.Tensor] = []
    kept: list[np.ndarray] = []
    kept_bytes = 0
    for chunk in _chunks(frames_at(video, fps), 64):
        if box == "auto":  # located once, in the first frames (up to 64, 2.6 s)
            keys = locate_keyboard(chunk, "byte", name=video)
            box = crop_box(keys, v2r.key_offset, v2r.num_keys)
            if not args.quiet:
                print(f"keyboard located at x, y, w, h = {', '.join(f'{v:.4f}' for v in keys)}"
                      f" of the frame; crop {', '.join(f'{v:.4f}' for v in box)}")  # fmt: skip
        if kept_bytes + chunk.nbytes <= KEEP_FRAMES_BYTES:
            kept.append(chunk)
        kept_bytes += chunk.nbytes
        tensor = torch.from_numpy(chunk).permute(0, 3, 1, 2)
        crops.append(v2r.crops(tensor, box, value_range="byte").half())
    if not crops:
        raise MediaError(video, "video stream holds no frames")
    all_crops = torch.cat(crops)  # (T, [3,] h, w), half precision to keep long videos small
    bar.total = 3 * len(all_crops)
    bar.update(len(all_crops))
    with torch.no_grad():
        rolls = transcribe(all_crops.float(), v2r, r2m, progress=bar.update, bf16=args.bf16)
    midi, audio = render(rolls["roll"], fps, v2r.sample_rate, args.program, args.soundfont,
                         reader.min_note_frames)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = video.stem
    written: list[Path] = []
    try:
        path = out / f"{stem}.mid"
        with atomic_path(path) as tmp:
            midi.write(str(tmp))
        written.append(path)
        written.append(write_audio(out / f"{stem}.wav", audio, v2r.sample_rate))
        path = out / f"{stem}.roll.png"
        with atomic_path(path) as tmp:
            from PIL import Image

            stages = [rolls["probabilities"], *([rolls["refined"]] if "refined" in rolls else []),
                      rolls["roll"]]  # fmt: skip
            Image.fromarray(roll_image(*stages)).save(tmp, format="PNG")
        written.append(path)
        path = out / f"{stem}.roll.npy"
        with atomic_path(path) as tmp:
            np.save(tmp, rolls["roll"])
        written.append(path)
        with VideoWriter(out / f"{stem}.mp4", fps, audio, v2r.sample_rate) as writer:
            again = kept_bytes > KEEP_FRAMES_BYTES
            for chunk in _chunks(frames_at(video, fps), 64) if again else iter(kept):
                writer.write(chunk[: len(all_crops) - writer.frames_written])
                bar.update(len(chunk))
        written.append(out / f"{stem}.mp4")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    notes = sum(len(i.notes) for i in midi.instruments)
    where = ", ".join(f"{v:.4f}" for v in box)
    print(f"{len(all_crops)} frames, {notes} notes, keyboard crop (x, y, w, h) {where} → "
          f"{', '.join(str(p) for p in written)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
