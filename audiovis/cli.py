"""Command line: ``lightning``/``audiovis`` fit|validate|test|predict over the zoo, plus the
``audiovis`` tools (check-data, bench).

    lightning fit --config experiments/apvg.yaml
    lightning predict --config experiments/apvg.yaml --ckpt_path last --data.predict_audio a.wav
    audiovis check-data ROOT
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

TOOLS_HELP = """\
audiovis tools (besides fit/validate/test/predict):
  studio build --out DIR   render a studio dataset (real scores, performers, ground truth)
  studio held-out [INSTR]  print the default dataset's held-out (test) audio files
  check-data ROOT      list every problem in a dataset at once (and audio/video alignment)
  prepare VIDEOS --out ROOT   import performance videos (or --suburmp) into a dataset
  bench [NAME ...]     run the benchmarks under bench/ (JSON to bench/results/)
  ganterpret --audio A --generator G --out V   audio → video walking a class-conditional GAN
  transcribe VIDEO --video2roll CKPT --out DIR   piano video -> .mid, .wav, .mp4 (Audeo)
"""


def condense_error(message: str) -> str:
    """jsonargparse's multi-line validation report → one line naming the key and the problem."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return message
    head = re.match(r'Parser key "([^"]+)":\s*(.*)', lines[0])
    key, first = (head.group(1), head.group(2)) if head else ("", lines[0])
    noise = (
        "Does not validate against any of the Union subtypes",
        "Subtypes:",
        "Errors:",
        "Given value type:",
        "Given value:",
        "- Expected a <class 'NoneType'>",
    )
    given = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), ""
    )
    rest = [
        line.removeprefix("- ")
        for line in [first, *lines[1:]]
        if line and not line.startswith(noise)
    ]
    text = " ".join(rest)
    if given and len(given) < 60 and "(" not in given and given not in text:
        text += f" (got {given!r})"
    return f"{key}: {text}" if key else text


def _build_cli_class() -> tuple[type, type]:
    # Lightning is imported here, not at module import, so `audiovis check-data` starts fast.
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
    from pytorch_lightning.utilities import rank_zero_warn

    from audiovis.callbacks import MediaWriter
    from audiovis.errors import AudiovisError
    from audiovis.hardware import CPU_BF16_ENV, cpu_precision

    class Parser(LightningArgumentParser):
        """Prints a user's mistake as one line, without the usage block."""

        def error(self, message: str, ex: Exception | None = None) -> NoReturn:
            if not self.exit_on_error or os.environ.get("AUDIOVIS_DEBUG"):
                super().error(message, ex)
            prog = self.prog.replace(" [options]", "")
            sys.stderr.write(f"error: {condense_error(message)} (see `{prog} --help`)\n")
            self.exit(2)

    class AudioVisCLI(LightningCLI):
        """LightningCLI in subclass mode over the zoo's models and the one DataModule."""

        def instantiate_classes(self) -> None:
            try:
                super().instantiate_classes()
            except ValueError as err:
                # jsonargparse wraps errors raised in __init__: surface ours, condense theirs
                cause: BaseException | None = err
                while cause is not None and not isinstance(cause, AudiovisError):
                    cause = cause.__cause__ or cause.__context__
                if isinstance(cause, AudiovisError):
                    raise cause from None
                raise AudiovisError(condense_error(str(err))) from err

        def _parse_ckpt_path(self) -> None:
            # Lightning rebuilds the model from a checkpoint's hyperparameters; a checkpoint of
            # another zoo model would silently run as that model: refuse it instead
            sub = self.config.get("subcommand")
            path = self.config[sub].get("ckpt_path") if sub else None
            if path and Path(path).is_file():
                import torch

                try:
                    ckpt = torch.load(path, weights_only=True, map_location="cpu")
                except Exception as err:
                    raise AudiovisError(
                        f"{path}: not a readable checkpoint ({type(err).__name__}: {err})"
                    ) from None
                saved = (ckpt.get("hyper_parameters") or {}).get("_class_path")
                wanted = self.config[sub].model.get("class_path")
                if saved and wanted and saved.rsplit(".", 1)[-1] != wanted.rsplit(".", 1)[-1]:
                    raise AudiovisError(
                        f"{path}: a checkpoint of {saved.rsplit('.', 1)[-1]}, but the config "
                        f"builds {wanted.rsplit('.', 1)[-1]}; pass the matching --config"
                    )
            super()._parse_ckpt_path()

        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults({"checkpoint.save_last": True})
            parser.add_lightning_class_args(MediaWriter, "media_writer")

        def before_instantiate_classes(self) -> None:
            # a stable checkpoint folder, so `--ckpt_path last` finds the previous run's files
            config = self.config[self.subcommand] if self.subcommand else self.config
            if config.get("checkpoint") is not None and config.checkpoint.dirpath is None:
                root = config.trainer.default_root_dir or os.getcwd()
                config.checkpoint.dirpath = str(Path(root) / "checkpoints")
            # checkpoints hold tensors and plain values only: never unpickle code from them
            if "weights_only" in config and config.weights_only is None:
                config.weights_only = True
            trainer = config.get("trainer")
            if trainer is not None:
                precision = cpu_precision(trainer.get("precision"), trainer.get("accelerator"))
                if precision is not None:
                    rank_zero_warn(
                        f"trainer.precision {trainer.precision}: this CPU has no bfloat16 units "
                        f"(AVX-512 BF16 / AMX), where bf16 runs about 100x slower than fp32; "
                        f"training in {precision} (set {CPU_BF16_ENV}=1 to keep bf16)"
                    )
                    trainer.precision = precision

    return AudioVisCLI, Parser


def run_lightning(args: Sequence[str] | None = None) -> Any:
    """Run the LightningCLI (fit/validate/test/predict) and return it."""
    import audiovis.models  # noqa: F401  (short class names resolve to the zoo)
    from audiovis.data import AudioVisualDataModule
    from audiovis.models.base import AudioVisualModule

    # modules in the working directory (a user's own model, the tests' tiny ones) resolve too
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    cli_class, parser_class = _build_cli_class()
    return cli_class(
        AudioVisualModule,
        AudioVisualDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "epilog": TOOLS_HELP,
            "formatter_class": argparse.RawDescriptionHelpFormatter,
        },
        parser_class=parser_class,
        args=None if args is None else list(args),
        auto_configure_optimizers=False,
    )


def _user_errors() -> tuple[type[BaseException], ...]:
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    from audiovis.errors import AudiovisError

    return (AudiovisError, MisconfigurationException, FileNotFoundError)


def _guarded(fn: Callable[[], Any]) -> int:
    """Run ``fn``; a user's mistake becomes one line on stderr and exit status 2."""
    try:
        fn()
    except _user_errors() as err:
        if os.environ.get("AUDIOVIS_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        # a checkpoint of another model (or another configuration of this one)
        if os.environ.get("AUDIOVIS_DEBUG") or "loading state_dict" not in str(err):
            raise
        first = str(err).splitlines()[0].rstrip(":.")
        print(
            f"error: the checkpoint does not fit the configured model ({first}); was it "
            "trained with another model or config?",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def check_data(argv: Sequence[str]) -> int:
    from audiovis.data.schema import check_dataset

    parser = argparse.ArgumentParser(
        prog="audiovis check-data", description="List every problem in a dataset at once."
    )
    parser.add_argument("root", help="dataset root (holds manifest.json)")
    parser.add_argument(
        "--shallow", action="store_true", help="check headers only (shapes, dtypes), not values"
    )
    args = parser.parse_args(argv)
    problems = check_dataset(args.root, deep=not args.shallow)
    for problem in problems:
        print(problem)
    if not args.shallow and Path(args.root, "manifest.json").is_file():
        from audiovis.data.alignment import alignment_report

        # informational, on stderr: stdout lists problems only
        for line in alignment_report(args.root):
            print(f"alignment: {line}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.root}", file=sys.stderr)
        return 1
    print(f"{args.root}: ok")
    return 0


def bench(argv: Sequence[str]) -> int:
    import subprocess

    parser = argparse.ArgumentParser(
        prog="audiovis bench", description="Run benchmarks from ./bench (a clone)."
    )
    parser.add_argument("names", nargs="*", help="benchmark names (file stems); all by default")
    args = parser.parse_args(argv)
    folder = Path("bench")
    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        print("error: no bench/bench_*.py here; run from a clone of audiovis", file=sys.stderr)
        return 2
    chosen = [
        s
        for s in scripts
        if not args.names or s.stem.removeprefix("bench_") in args.names or s.stem in args.names
    ]
    status = 0
    for script in chosen:
        print(f"== {script}", flush=True)
        status |= subprocess.call([sys.executable, "-m", f"bench.{script.stem}"])
    return status


def studio(argv: Sequence[str]) -> int:
    from audiovis.data.studio import INSTRUMENTS, STYLES, StudioConfig, build

    parser = argparse.ArgumentParser(prog="audiovis studio", description="The performance studio.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render a dataset of performances with exact ground truth")
    b.add_argument("--out", required=True, help="dataset root to write (resumes if present)")
    b.add_argument(
        "--instruments",
        nargs="*",
        default=list(INSTRUMENTS),
        metavar="NAME",
        help=f"of {', '.join(INSTRUMENTS)} (default: all)",
    )
    b.add_argument(
        "--styles",
        nargs="*",
        default=list(STYLES),
        metavar="STYLE",
        help=f"dance styles, of {', '.join(STYLES)} (default: all)",
    )
    b.add_argument("--minutes", type=float, default=10.0, help="music in total (default 10)")
    b.add_argument("--segment", type=float, default=20.0, help="seconds per performance")
    b.add_argument("--size", type=int, default=128, help="frame side in pixels (default 128)")
    b.add_argument("--fps", type=float, default=25.0)
    b.add_argument("--sample-rate", type=int, default=16000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--soundfont", help="a General MIDI .sf2 (default: pretty_midi's)")
    b.add_argument("--reverb", type=float, default=0.0, help="room reverb wet mix, 0..1")
    b.add_argument("--noise-db", type=float, help="add white noise at this dBFS level")
    b.add_argument("--midi", nargs="*", default=[], help="perform these MIDI files instead")
    b.add_argument(
        "--procedural", action="store_true", help="procedural scores instead of the music21 corpus"
    )
    b.add_argument("--workers", type=int, help="parallel processes (default: all cores)")
    h = sub.add_parser(
        "held-out", help="print the audio files of the default dataset's test split (for demos)"
    )
    h.add_argument("instrument", nargs="?", help="only this instrument (e.g. cello)")
    h.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="YAML",
        help="the studio a `lightning fit` config trains on (its data.studio; repeatable, "
        "last wins) instead of the default dataset",
    )
    args = parser.parse_args(argv)
    if args.command == "held-out":
        return _held_out(args.instrument, args.config)
    config = StudioConfig(
        instruments=tuple(args.instruments),
        styles=tuple(args.styles),
        minutes=args.minutes,
        segment_seconds=args.segment,
        size=args.size,
        fps=args.fps,
        sample_rate=args.sample_rate,
        seed=args.seed,
        soundfont=args.soundfont,
        reverb=args.reverb,
        noise_db=args.noise_db,
        use_corpus=not args.procedural,
        midi=tuple(args.midi),
    )
    root = build(args.out, config, workers=args.workers)
    print(root)
    return 0


def _held_out(instrument: str | None, configs: Sequence[str] = ()) -> int:
    from audiovis.data.schema import AUDIO_FILE, read_manifest
    from audiovis.data.studio import studio_dataset

    root = studio_dataset(**_config_studio(configs))
    chosen = [
        root / p["name"] / AUDIO_FILE
        for p in read_manifest(root).performances
        if p["split"] == "test" and instrument in (None, p.get("instrument"))
    ]
    if not chosen:
        print(f"error: no held-out performance of {instrument!r} in {root}", file=sys.stderr)
        return 2
    print("\n".join(str(path) for path in chosen))
    return 0


def _config_studio(configs: Sequence[str]) -> dict[str, Any]:
    """The ``data.studio`` settings of ``lightning fit`` configs (the last one that sets it)."""
    import yaml

    from audiovis.errors import AudiovisError

    studio: dict[str, Any] = {}
    for path in configs:
        try:
            config = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise AudiovisError(f"{path}: cannot read the config ({error})") from None
        data = config.get("data") if isinstance(config, dict) else None
        data = data.get("init_args", data) if isinstance(data, dict) else {}
        if isinstance(data, dict) and data.get("studio") is not None:
            studio = dict(data["studio"])
    return studio


def _lazy(module: str) -> Callable[[Sequence[str]], int]:
    """A tool living in ``audiovis.tools.<module>``, imported only when it runs."""

    def run(argv: Sequence[str]) -> int:
        from importlib import import_module

        return int(import_module(f"audiovis.tools.{module}").main(argv))

    return run


TOOLS: dict[str, Callable[[Sequence[str]], int]] = {
    "studio": studio,
    "check-data": check_data,
    "bench": bench,
    "prepare": _lazy("prepare"),
    "ganterpret": _lazy("ganterpret"),
    "transcribe": _lazy("transcribe"),
    "loop": _lazy("loop"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``audiovis``: the tools, or the LightningCLI."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        tool = TOOLS[argv[0]]
        status = 0

        def call() -> None:
            nonlocal status
            status = tool(argv[1:])

        return _guarded(call) or status
    return _guarded(lambda: run_lightning(None if from_command_line else argv))


def lightning_main() -> int:
    """Entry point of ``lightning``: the LightningCLI alone, reading ``sys.argv``."""
    return _guarded(lambda: run_lightning(None))


if __name__ == "__main__":
    sys.exit(main())
