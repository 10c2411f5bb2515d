"""``audiovis ganterpret``: turn an audio file into a GANterpretation video with its sound.

    audiovis ganterpret --audio song.wav --generator runs/ganterpretation/checkpoints/last.ckpt \\
        --classes 3,1,0 --out video.mp4
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence

from audiovis.errors import AudiovisError


def _parse_classes(text: str | None, names: list[str] | None) -> list[int] | None:
    """``3,7,1`` → ids; with a checkpoint that knows its class names, ``piano,cello`` too."""
    if not text:
        return None
    ids = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.lstrip("-").isdigit():
            ids.append(int(item))
        elif names and item in names:
            ids.append(names.index(item))
        else:
            known = f"; this generator's classes: {', '.join(names)}" if names else ""
            raise AudiovisError(f"--classes: unknown class {item!r}{known}")
    return ids


def build_parser() -> argparse.ArgumentParser:
    from audiovis.models.ganterpretation import ROLLING_SECONDS, SMOOTHING_SECONDS

    p = argparse.ArgumentParser(
        prog="audiovis ganterpret",
        description="Walk a class-conditional GAN in step with the music: a new class and "
        "noise at each inflection point of the audio's spectral change, interpolated between "
        "them as fast as the spectrum changes. Frames are streamed to the encoder, so any "
        "length works.",
    )
    p.add_argument("--audio", required=True, help="audio file (or a video's audio track)")
    p.add_argument(
        "--generator",
        required=True,
        help="a ClassConditionalGAN checkpoint (.ckpt), or BigGAN-deep weights "
        "(pytorch-pretrained-biggan: a folder with pytorch_model.bin + config.json, or the .bin)",
    )
    p.add_argument("--out", required=True, help="the .mp4 to write")
    p.add_argument(
        "--classes",
        help="class of each inflection point in order, ids (3,7,1) or names when the "
        "checkpoint records them (piano,cello); the rest are drawn at random from --seed",
    )
    p.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.1,
        help="how far an extremum of the smoothed change must stand out (default 0.1)",
    )
    p.add_argument("--kind", choices=("both", "max", "min"), default="both", help="extrema to use")
    p.add_argument("--smoothing", type=float, default=SMOOTHING_SECONDS, help="seconds")
    p.add_argument("--rolling", type=float, default=ROLLING_SECONDS, help="seconds")
    p.add_argument("--truncation", type=float, default=0.4, help="noise truncation (0, 1]")
    p.add_argument(
        "--beat-pulse", type=float, default=0.0, help="pulse z on each beat by this much"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of random classes and noise")
    p.add_argument("--batch-size", type=int, default=16, help="frames generated at once")
    p.add_argument("--sample-rate", type=int, help="resample the audio first (default: keep)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit status (user errors raise AudiovisError)."""
    args = build_parser().parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    from audiovis.media import read_audio
    from audiovis.models.ganterpretation import Ganterpreter, load_generator

    audio, rate = read_audio(args.audio, args.sample_rate, allow_silent=True)
    generator, names = load_generator(args.generator)
    generator.to(args.device)
    classes = _parse_classes(args.classes, names)
    walker = Ganterpreter(
        generator,
        fps=args.fps,
        threshold=args.threshold,
        kind=args.kind,
        smoothing=args.smoothing,
        rolling=args.rolling,
        truncation=args.truncation,
        beat_pulse=args.beat_pulse,
        seed=args.seed,
        batch_size=args.batch_size,
        device=torch.device(args.device),
        class_names=names,
    )
    total = max(1, round(len(audio) / rate * args.fps))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tqdm(total=total, unit="frame", desc="ganterpret", disable=args.quiet) as bar:
            path, plan = walker.render(audio, rate, args.out, classes, progress=bar.update)
    for warning in caught:
        print(f"warning: {warning.message}")
    label = lambda c: names[c] if names and c < len(names) else str(c)  # noqa: E731
    walk = " → ".join(label(int(c)) for c in plan.classes)
    print(f"{path}: {plan.num_frames} frames at {args.fps:g} fps, {len(plan.keys) - 2} "
          f"inflection points, classes {walk}")  # fmt: skip
    return 0
