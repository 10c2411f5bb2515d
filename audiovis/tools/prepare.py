"""``audiovis prepare``: users' performance videos, or the Sub-URMP dataset, into a dataset root.

    audiovis prepare VIDEO_OR_FOLDER --out ROOT [--fps 25] [--size 256] [--crop auto|x,y,w,h]
        [--sample-rate 16000] [--workers N] [--instrument NAME] [--performer NAME]
        [--split auto|train|val|test] [--no-pose | --pose] [--no-hands] [--preview DIR]
    audiovis prepare SUB_URMP_ROOT --suburmp --out ROOT [--fps 25] [--size 256] [--clips N]

A rerun skips finished videos (same file, same settings); a file that fails is reported and
the others imported (exit status 1 when any failed). Without mediapipe only frames and sound
are imported; ``--pose`` makes its absence an error instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from audiovis.data.importers.video import POSE_INSTALL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiovis prepare",
        description="Import performance videos (or Sub-URMP) into a dataset root.",
        epilog=f"keypoints and masks need mediapipe: {POSE_INSTALL}",
    )
    parser.add_argument("source", help="a video, a folder of videos, or (--suburmp) Sub-URMP")
    parser.add_argument("--out", required=True, help="dataset root to write (resumes if present)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels (default 256)")
    parser.add_argument(
        "--crop",
        default="auto",
        help="auto (around the performer; the centre square without mediapipe) or x,y,w,h in "
        "upright source pixels (made square about its centre)",
    )
    parser.add_argument("--sample-rate", type=int, default=16000, help="audio rate (16000)")
    parser.add_argument("--workers", type=int, help="parallel processes (default: all cores)")
    parser.add_argument("--instrument", default="unknown", help="instrument label of the videos")
    parser.add_argument("--style", default="none", help="style label of the videos")
    parser.add_argument("--performer", default="unknown", help="performer label of the videos")
    parser.add_argument(
        "--split", default="auto", choices=["auto", "train", "val", "test"], help="(auto: ~10%% "
        "val and ~10%% test from three videos up)"
    )  # fmt: skip
    pose = parser.add_mutually_exclusive_group()
    pose.add_argument("--pose", action="store_true", help="require mediapipe (error without)")
    pose.add_argument("--no-pose", action="store_true", help="frames and sound only")
    parser.add_argument("--no-hands", action="store_true", help="skip the hand landmarker")
    parser.add_argument("--preview", help="also write DIR/<name>.mp4: skeleton and mask, sound")
    parser.add_argument("--suburmp", action="store_true", help="SOURCE is a Sub-URMP root")
    parser.add_argument("--clips", type=int, help="Sub-URMP: at most this many clips per split")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from audiovis.data.importers.video import PrepareConfig, parse_crop, prepare

    args = build_parser().parse_args(argv)
    config = PrepareConfig(
        fps=args.fps,
        size=args.size,
        crop=parse_crop(args.crop),
        sample_rate=args.sample_rate,
        pose=True if args.pose else False if args.no_pose else None,
        hands=not args.no_hands,
        instrument=args.instrument,
        style=args.style,
        performer=args.performer,
        split=args.split,
    )
    if args.suburmp:
        from audiovis.data.importers.suburmp import import_suburmp

        report = import_suburmp(
            args.source, args.out, config, workers=args.workers, max_clips=args.clips,
            progress=not args.quiet,
        )  # fmt: skip
    else:
        report = prepare(args.source, args.out, config, args.workers, progress=not args.quiet)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.preview:
        write_previews(Path(args.out), [*report.imported, *report.skipped], Path(args.preview))
    print(
        f"{args.out}: {len(report.imported)} imported, {len(report.skipped)} already done, "
        f"{len(report.failed)} failed"
    )
    return 1 if report.failed else 0


def write_previews(root: Path, names: Sequence[str], out: Path) -> list[Path]:
    """``out/<name>.mp4`` per performance: frames with the mask tinted and the skeleton drawn,
    with the imported sound (to check an import by eye and ear)."""
    import numpy as np

    from audiovis.data.schema import read_meta
    from audiovis.media import VideoWriter, draw_skeleton, read_audio

    written = []
    for name in names:
        folder = root / name
        meta = read_meta(folder)
        frames = np.load(folder / "frames.npy", mmap_mode="r")
        mask = np.load(folder / "mask.npy", mmap_mode="r") if "mask" in meta.streams else None
        points = (
            np.load(folder / "keypoints.npy", mmap_mode="r")
            if "keypoints" in meta.streams
            else None
        )
        audio, rate = read_audio(folder / "audio.flac", allow_silent=True)
        with VideoWriter(out / f"{name}.mp4", meta.fps, audio, rate) as writer:
            for i in range(len(frames)):
                image = np.array(frames[i])
                if mask is not None:
                    on = mask[i] > 0
                    image[on] = (0.6 * image[on] + (0, 90, 0)).clip(0, 255).astype(np.uint8)
                if points is not None:
                    image = draw_skeleton(image, points[i])
                writer.write(image)
        written.append(out / f"{name}.mp4")
    return written


if __name__ == "__main__":
    sys.exit(main())
