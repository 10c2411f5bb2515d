"""GANterpretation benchmarks.

1. training: ClassConditionalGAN on the embedded default studio frames (instrument classes,
   64 px) for a fixed budget of process CPU seconds; losses, val/loss (sliced Wasserstein
   distance to validation frames) before and after, a sample grid PNG.
2. coupling: Pearson correlation between the per-frame image change of the video and the
   audio's change measure, on real music (held-out studio renders of real scores and the
   music21 recording), walking the generator trained in 1; an audio-blind random walk of the
   same generator as the baseline.
3. speed: frames per second at 128x128 (generator alone and the whole tool with encoding),
   and BigGAN-deep 128 at its full size (random weights; no pretrained weights here).
4. memory: peak resident memory of ``audiovis ganterpret`` for 10 s and for 10 min of music.

    python -m bench.bench_ganterpretation [--budget 240] [--skip-memory]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import RESULTS, write_result

FPS = 25.0


def studio_root() -> Path:
    from audiovis.data.studio import default_dataset

    return Path(default_dataset(fps=FPS))


def real_music() -> list[tuple[str, Path]]:
    """Held-out studio renders (one per instrument kind) and the music21 recording."""
    import music21

    from audiovis.data.schema import read_manifest

    root = studio_root()
    tests = [p for p in read_manifest(root).performances if p["split"] == "test"]
    chosen, kinds = [], set()
    for p in tests:
        kind = p["instrument"]
        if kind not in kinds:
            kinds.add(kind)
            chosen.append((f"studio:{p['name']}", root / p["name"] / "audio.flac"))
    recording = Path(music21.__file__).parent / "audioSearch" / "test_audio.wav"
    chosen.append(("music21:audioSearch/test_audio.wav (recording)", recording))
    return chosen


# ---------------------------------------------------------------------------------- training


def train(budget: float, out: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    import pytorch_lightning as pl
    from PIL import Image

    from audiovis.data import AudioVisualDataModule
    from audiovis.models.ganterpretation import ClassConditionalGAN

    class Budget(pl.Callback):
        """Stops training once the process has used ``budget`` CPU seconds; records losses."""

        def __init__(self) -> None:
            self.start = time.process_time()
            self.history: list[dict[str, float]] = []

        def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
            m = trainer.callback_metrics
            self.history.append({k: float(m[k]) for k in ("train/d_loss", "train/g_loss")
                                 if k in m})  # fmt: skip
            if time.process_time() - self.start > budget:
                trainer.should_stop = True

    pl.seed_everything(0)
    config = dict(label="instrument", num_classes=6, image_size=64, channels=16, attention=32,
                  z_dim=128, embed_dim=128, frames_per_clip=2, n_critic=2)  # fmt: skip
    model = ClassConditionalGAN(
        **config,  # type: ignore[arg-type]
        generator_optimizer=lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.0, 0.999)),
        discriminator_optimizer=lambda p: torch.optim.Adam(p, lr=4e-4, betas=(0.0, 0.999)),
    )
    data = AudioVisualDataModule(image_size=64, clip_frames=8, clip_stride=8, eval_stride=40,
                                 batch_size=8, num_workers=0)  # fmt: skip
    common = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    before = pl.Trainer(**common).validate(model, data, verbose=False)[0]  # type: ignore[arg-type]
    budget_cb = Budget()
    trainer = pl.Trainer(max_epochs=10_000, callbacks=[budget_cb], num_sanity_val_steps=0,
                         check_val_every_n_epoch=10_000, **common)  # type: ignore[arg-type]  # fmt: skip
    trainer.fit(model, data)
    cpu = time.process_time() - budget_cb.start
    after = pl.Trainer(**common).validate(model, data, verbose=False)[0]  # type: ignore[arg-type]
    grid_path = out / "ganterpretation_samples.png"
    Image.fromarray(model.sample_grid(per_class=6)).save(grid_path)
    hist = budget_cb.history
    d = [h["train/d_loss"] for h in hist if "train/d_loss" in h]
    g = [h["train/g_loss"] for h in hist if "train/g_loss" in h]
    tenth = max(1, len(d) // 10)
    figures = {
        "cpu_seconds_used": round(cpu, 1),
        "steps": trainer.global_step,
        "batches": len(hist),
        "epochs": trainer.current_epoch,
        "d_loss_first_10pct": float(np.mean(d[:tenth])),
        "d_loss_last_10pct": float(np.mean(d[-tenth:])),
        "g_loss_first_10pct": float(np.mean(g[: max(1, len(g) // 10)])),
        "g_loss_last_10pct": float(np.mean(g[-max(1, len(g) // 10) :])),
        "val_swd_untrained": float(before["val/loss"]),
        "val_swd_trained": float(after["val/loss"]),
        "sample_grid": str(grid_path.relative_to(RESULTS.parent.parent)),
        "class_names": model.class_names,
    }
    cfg = {"budget_cpu_seconds": budget, "model": config, "batch": "8 clips x 2 frames",
           "optimizers": "Adam G 2e-4, D 4e-4, betas (0, 0.999)",
           "data": "embedded default studio dataset, 64 px, train split"}  # fmt: skip
    return model, cfg, figures


# ---------------------------------------------------------------------------------- coupling


def coupling_bench(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from audiovis.errors import AudiovisError
    from audiovis.media import read_audio, to_uint8
    from audiovis.models.ganterpretation import (
        Ganterpreter,
        coupling,
        frame_change,
        random_walk_latents,
    )

    generator = model.generator.eval()
    rows = []
    for name, path in real_music():
        audio, rate = read_audio(path)
        row: dict[str, Any] = {"audio": name, "seconds": round(len(audio) / rate, 2)}
        for threshold in (0.1, 0.035):
            walker = Ganterpreter(generator, fps=FPS, threshold=threshold, batch_size=32)
            try:
                plan = walker.plan(audio, rate)
            except AudiovisError as err:
                row[f"threshold_{threshold}"] = {"error": str(err)}
                continue
            change = frame_change(np.concatenate(list(walker.frames(plan))))
            times = (np.arange(1, plan.num_frames) + 0.5) / FPS
            row[f"threshold_{threshold}"] = {
                "inflection_points": len(plan.keys) - 2,
                "coupling": round(coupling(change, plan.change[1:]), 3),
                "coupling_raw_change": round(coupling(change, plan.curve.at(times, False)), 3),
            }
        z, y = random_walk_latents(plan.num_frames, walker.z_dim, walker.num_classes, seed=1)
        with torch.no_grad():
            rw = np.concatenate([
                to_uint8(generator(torch.from_numpy(z[i : i + 32]),
                                   torch.from_numpy(y[i : i + 32]), 0.4))
                for i in range(0, len(z), 32)
            ])  # fmt: skip
        row["random_walk_coupling"] = round(coupling(frame_change(rw), plan.change[1:]), 3)
        rows.append(row)
        print(row, flush=True)

    def mean(threshold: float, key: str) -> float:
        values = [r[f"threshold_{threshold}"][key] for r in rows
                  if key in r[f"threshold_{threshold}"]]  # fmt: skip
        return round(float(np.mean(values)), 3) if values else float("nan")

    figures = {
        "mean_coupling": mean(0.1, "coupling"),
        "mean_coupling_raw_change": mean(0.1, "coupling_raw_change"),
        "mean_coupling_threshold_0.035": mean(0.035, "coupling"),
        "mean_random_walk_coupling": round(
            float(np.mean([r["random_walk_coupling"] for r in rows])), 3
        ),  # fmt: skip
        "target": 0.5,
        "pieces": rows,
    }
    config = {
        "generator": "the ClassConditionalGAN of ganterpretation_training.json (64 px)",
        "walk": "threshold 0.1 (default) and 0.035 (the original's default), both extrema, "
        "smoothing 0.743 s, rolling 0.580 s, truncation 0.4, fps 25, random classes, seed 0",
        "image_change": "mean |frame_t - frame_t-1| over pixels (0..1)",
        "audio_change": "the smoothed spectral change at frame times (raw: unsmoothed)",
        "random_walk": "z and class-logit random walk (step 0.05), audio-blind, scored "
        "against the smoothed change",
    }
    return config, figures


# ------------------------------------------------------------------------------------ speed


def speed_bench(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from audiovis.media import write_audio
    from audiovis.models.ganterpretation import Ganterpreter
    from audiovis.networks.biggan import BigGANDeep, ConditionalGenerator
    from bench.common import timeit

    torch.manual_seed(0)
    figures: dict[str, Any] = {}
    g128 = ConditionalGenerator(6, 128, channels=32, attention=64).eval()
    g128_cheap = ConditionalGenerator(6, 128, channels=16, attention=32).eval()
    z, y = torch.randn(16, 128), torch.arange(16) % 6
    for key, g in (("generator_128px_ch32_attn64", g128),
                   ("generator_128px_ch16_attn32", g128_cheap)):  # fmt: skip
        with torch.no_grad():
            seconds = timeit(lambda g=g: g(z, y, 0.4), repeat=3)  # type: ignore[misc]
        figures[f"{key}_frames_per_s"] = round(16 / seconds, 2)
        print(key, figures[f"{key}_frames_per_s"], flush=True)
    deep = BigGANDeep().eval()
    zd, yd = torch.randn(4, 128), torch.arange(4)
    with torch.no_grad():
        seconds = timeit(lambda: deep(zd, yd, 0.4), repeat=2)
    figures["biggan_deep_128_full_size_frames_per_s"] = round(4 / seconds, 2)
    # the whole tool: analysis, generation and h264 encoding with the audio, 10 s of music
    audio_path = real_music()[0][1]
    from audiovis.media import read_audio

    audio, rate = read_audio(audio_path)
    audio = audio[: 10 * rate]
    song = write_audio(tmp / "ten_seconds.wav", audio, rate)
    walker = Ganterpreter(g128, fps=FPS, batch_size=16)
    start = time.perf_counter()
    _, plan = walker.render(audio, rate, tmp / "speed.mp4")
    figures["end_to_end_128px_ch32_frames_per_s"] = round(
        plan.num_frames / (time.perf_counter() - start), 2)  # fmt: skip
    config = {
        "threads": torch.get_num_threads(),
        "batch": 16,
        "note": "2 shared CPU cores (other engineers' jobs running); median of repeats",
        "end_to_end_audio": str(song.name),
    }
    return config, figures


# ----------------------------------------------------------------------------------- memory

_CHILD = """
import re, sys
from pathlib import Path
from audiovis.cli import main
status = main(sys.argv[1:])
# VmHWM belongs to this process image (ru_maxrss would carry the parent's peak over the fork)
print("PEAK_KB", re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
sys.exit(status)
"""


def memory_bench(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from audiovis.media import read_audio, write_audio
    from audiovis.models.ganterpretation import ClassConditionalGAN

    torch.manual_seed(0)
    small = ClassConditionalGAN(num_classes=6, image_size=32, channels=8, attention=None)
    ckpt = {"state_dict": small.state_dict(), "hyper_parameters": dict(small.hparams)}
    torch.save(ckpt, tmp / "small.ckpt")
    pieces = [read_audio(path, 16000)[0] for _, path in real_music()[:-1]]
    music = np.concatenate(pieces)
    figures: dict[str, Any] = {}
    for label, seconds in (("10s", 10), ("10min", 600)):
        audio = np.resize(music, seconds * 16000)
        song = write_audio(tmp / f"{label}.wav", audio, 16000)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, "ganterpret", "--audio", str(song), "--generator",
             str(tmp / "small.ckpt"), "--out", str(tmp / f"{label}.mp4"), "--quiet",
             "--batch-size", "64"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        peak = int(result.stdout.split("PEAK_KB")[1].split()[0]) / 1024
        figures[f"peak_rss_mb_{label}"] = round(peak, 1)
        figures[f"wall_seconds_{label}"] = round(time.perf_counter() - start, 1)
        figures[f"audio_array_mb_{label}"] = round(audio.nbytes / 2**20, 1)
        print(label, figures, flush=True)
    figures["peak_growth_mb"] = round(figures["peak_rss_mb_10min"] - figures["peak_rss_mb_10s"], 1)
    config = {
        "generator": "untrained ClassConditionalGAN, 32 px, channels 8 (the pipeline's memory, "
        "not the network's, is what varies with length)",
        "audio": "held-out studio renders of real scores, tiled to length, 16 kHz mono",
        "fps": FPS,
        "measure": "VmHWM (peak resident set) of a fresh process running `audiovis ganterpret`",
    }
    return config, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=240.0, help="training CPU seconds")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--only-memory", action="store_true", help="run the memory part alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.only_memory:
            write_result("ganterpretation", "memory", *memory_bench(tmp))
            return 0
        model, cfg, fig = train(args.budget, RESULTS)
        write_result("ganterpretation", "training", cfg, fig)
        write_result("ganterpretation", "coupling", *coupling_bench(model))
        if not args.skip_speed:
            write_result("ganterpretation", "speed", *speed_bench(tmp))
        if not args.skip_memory:
            write_result("ganterpretation", "memory", *memory_bench(tmp))
    print("peak RSS of this process (MB):",
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
