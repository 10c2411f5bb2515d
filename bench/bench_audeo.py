"""Audeo: learning on held-out studio piano pieces after a fixed CPU budget, and speed.

    python -m bench.bench_audeo [--minutes 4] [--v2r-budget 900] [--r2m-budget 300]

1. Data: a piano-only studio set rendered once into the user cache
   (``audiovis studio build --out <cache>/bench-audeo-piano-<N>min --instruments piano
   --styles --minutes N``, no dancers:
   N minutes of 20 s pieces; the last piece is test, the one before val, the rest train).
2. Video2Roll is trained for ``--v2r-budget`` process CPU seconds (``time.process_time``,
   all threads counted) on 5-frame stacks of keyboard crops (precomputed once per piece, as
   the model's ``keyboard_crops`` makes them), then predicts every frame of every piece.
3. Roll2Midi is trained for ``--r2m-budget`` CPU seconds on 100-frame windows of those
   predictions (train pieces), as ``Roll2Midi`` does from its on-disk cache.
4. Scores on the held-out pieces (val + test): frame P/R/F1/accuracy of Video2Roll
   thresholded and of Roll2Midi, and note-onset P/R/F1 (mir_eval, 50 ms) of the notes each
   roll gives against the pieces' score (notes.mid), with the ground-truth roll's own
   note-onset F1 as the ceiling of reading notes off a 25 fps roll.
5. Speed on 2 threads: Video2Roll inference frames/s and training samples/s at the bench
   configuration and at the original's (100 × 900 input, 51 keys), fp32 and bf16 autocast
   with channels_last; Roll2Midi inference windows/s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from audiovis.networks.audeo import PatchDiscriminator, Roll2MidiGenerator
from bench.common import timeit, write_result


def build_data(minutes: float) -> Path:
    from audiovis.data.cache import user_cache_dir

    out = user_cache_dir() / f"bench-audeo-piano-{minutes:g}min"
    if not (out / "manifest.json").is_file():
        exe = Path(sys.executable).with_name("audiovis")
        subprocess.run([str(exe), "studio", "build", "--out", str(out), "--instruments",
                        "piano", "--styles", "--minutes", str(minutes)], check=True)  # fmt: skip
    return out


def load_pieces(root: Path, box: Any, size: tuple[int, int]) -> dict[str, list[dict[str, Any]]]:
    from audiovis.data.schema import read_manifest
    from audiovis.models.audeo import keyboard_crops
    from audiovis.music import midi_notes

    pieces: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for perf in read_manifest(root).performances:
        if perf["instrument"] != "piano":
            continue
        folder = root / perf["name"]
        frames = np.load(folder / "frames.npy", mmap_mode="r")
        crops = torch.cat([
            keyboard_crops(torch.from_numpy(np.array(frames[i : i + 250])).permute(0, 3, 1, 2),
                           box, size, value_range="byte")
            for i in range(0, len(frames), 250)
        ])  # fmt: skip
        pieces[perf["split"]].append({
            "name": perf["name"], "crops": crops,
            "roll": torch.from_numpy(np.load(folder / "roll.npy").astype(np.float32)),
            "notes": midi_notes(folder / "notes.mid"),
        })  # fmt: skip
    return pieces


def train_video2roll(model: Any, pieces: list[dict[str, Any]], budget: float, batch: int,
                     lr: float, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    from audiovis.models.audeo import BalancedMultilabelSampler, stack_context

    index = [(p, t) for p, piece in enumerate(pieces) for t in range(len(piece["roll"]))]
    labels = np.stack([model.keys(pieces[p]["roll"][t]).numpy() for p, t in index])
    sampler = iter(BalancedMultilabelSampler(labels, 10**9, seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start, steps, losses = time.process_time(), 0, []
    wall = time.perf_counter()
    while time.process_time() - start < budget:
        chosen = [index[next(sampler)] for _ in range(batch)]
        x = torch.stack([stack_context(pieces[p]["crops"], torch.tensor([t]))[0]
                         for p, t in chosen])  # fmt: skip
        y = torch.stack([model.keys(pieces[p]["roll"][t]) for p, t in chosen])
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        losses.append(loss.item())
    return {"steps": steps, "samples": steps * batch, "cpu_seconds": time.process_time() - start,
            "wall_seconds": time.perf_counter() - wall,
            "final_loss": float(np.mean(losses[-20:])) if losses else None}  # fmt: skip


def train_roll2midi(
    model: Any,
    probs: list[torch.Tensor],
    rolls: list[torch.Tensor],
    budget: float,
    batch: int,
    lr: float,
    seed: int = 0,
) -> dict[str, Any]:
    from audiovis.losses import lsgan_discriminator_loss, lsgan_generator_loss

    rng = np.random.default_rng(seed)
    g, d, w = model.generator, model.discriminator, model.window
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.9, 0.999))
    g.train()
    d.train()
    start, steps = time.process_time(), 0
    while time.process_time() - start < budget:
        xs, ys = [], []
        for _ in range(batch):
            p = int(rng.integers(len(probs)))
            s = int(rng.integers(0, len(probs[p]) - w + 1))
            xs.append(probs[p][s : s + w].T)
            ys.append(model.video2roll.keys(rolls[p][s : s + w]).T)
        x, real = torch.stack(xs)[:, None], torch.stack(ys)[:, None]
        with torch.no_grad():
            fake = g(x)
        d_loss = lsgan_discriminator_loss(d(real), d(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        fake = g(x)
        g_loss = model.w_adv * lsgan_generator_loss(d(fake)) + model.w_mse * F.mse_loss(fake, real)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        steps += 1
    return {"steps": steps, "windows": steps * batch,
            "cpu_seconds": time.process_time() - start}  # fmt: skip


def score(pieces: list[dict[str, Any]], rolls: list[np.ndarray], key_range: tuple[int, int],
          fps: float) -> dict[str, float]:  # fmt: skip
    from audiovis.metrics.transcription import FrameMetrics, NoteOnsetMetrics
    from audiovis.music import LOWEST_PITCH, roll_to_notes

    lo, hi = key_range
    frames, notes = FrameMetrics(0.5), NoteOnsetMetrics()
    for piece, roll in zip(pieces, rolls, strict=True):
        frames.update(torch.from_numpy(roll[:, lo:hi].astype(np.float32)), piece["roll"][:, lo:hi])
        ref = [n for n in piece["notes"] if lo <= n.pitch - LOWEST_PITCH < hi]
        notes.update(ref, roll_to_notes(roll, fps))
    out = {f"frame_{k}": round(float(v), 4) for k, v in frames.compute().items()}
    out.update({f"onset_{k}": round(float(v), 4) for k, v in notes.compute().items()})
    return out


def speed(width: int, size: tuple[int, int], keys: int, batch: int = 16) -> dict[str, float]:
    from audiovis.networks.audeo import Video2RollNet

    net = Video2RollNet(num_keys=keys, width=width)
    x = torch.rand(batch, 5, *size)
    y = torch.randint(0, 2, (batch, keys)).float()
    opt = torch.optim.Adam(net.parameters())

    def train_step() -> None:
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    out = {}
    net.train()
    out["train_samples_per_s_fp32"] = batch / timeit(train_step, repeat=3)
    net.eval()
    with torch.no_grad():
        out["infer_frames_per_s_fp32"] = batch / timeit(lambda: net(x), repeat=3)
        net_cl, x_cl = (
            net.to(memory_format=torch.channels_last),
            x.to(memory_format=torch.channels_last),
        )
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out["infer_frames_per_s_bf16_channels_last"] = batch / timeit(
                lambda: net_cl(x_cl), repeat=3
            )
    return {k: round(v, 1) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="piano music to render")
    parser.add_argument("--v2r-budget", type=float, default=900.0, help="CPU s for Video2Roll")
    parser.add_argument("--r2m-budget", type=float, default=300.0, help="CPU s for Roll2Midi")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--input", type=int, nargs=2, default=[32, 256])
    parser.add_argument("--keys", type=int, nargs=2, default=[0, 88], help="offset count")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--r2m-base", type=int, default=8)
    parser.add_argument(
        "--r2m-pieces", type=int, default=0, help="train pieces Roll2Midi sees (0: all)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed figures")
    parser.add_argument("--speed-only", action="store_true", help="only the speed figures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = (args.input[0], args.input[1])
    offset, count = args.keys
    fps = 25.0
    common = {"threads": args.threads, "shared_machine": SHARED}
    if not args.speed_only:
        figures, config = learning(args, size, offset, count, fps)
        write_result("audeo", "learning", {**config, **common}, figures)
    if not args.no_speed:
        figures = {"bench_config": speed(args.width, size, count)}
        figures["bench_config"]["video_seconds_per_second_fp32"] = round(
            figures["bench_config"]["infer_frames_per_s_fp32"] / fps, 2
        )
        figures["original_config"] = speed(64, (100, 900), 51)
        gen = Roll2MidiGenerator(base=args.r2m_base).eval()
        with torch.no_grad():
            x = torch.rand(16, 1, count, 100)
            figures["roll2midi_infer_windows_per_s"] = round(16 / timeit(lambda: gen(x), 3), 2)
        config = {
            "batch": 16,
            "bench_config": {"width": args.width, "input_size": list(size), "num_keys": count},
            "original_config": {"width": 64, "input_size": [100, 900], "num_keys": 51},
            "roll2midi": {"base": args.r2m_base, "window": 100, "num_keys": count},
            "timing": "median of 3 after 1 warm-up",
        }
        write_result("audeo", "speed", {**config, **common}, figures)


SHARED = "2 CPU cores shared with other engineers' jobs while measured (load average 9-14)"


def learning(
    args: Any, size: tuple[int, int], offset: int, count: int, fps: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    from audiovis.models.audeo import STUDIO_KEYBOARD_BOX, Roll2Midi, Video2Roll

    root = build_data(args.minutes)
    pieces = load_pieces(root, STUDIO_KEYBOARD_BOX, size)
    held = pieces["val"] + pieces["test"]
    v2r = Video2Roll(key_offset=offset, num_keys=count, input_size=size, width=args.width)
    v2r_run = train_video2roll(v2r, pieces["train"], args.v2r_budget, args.batch, args.lr)
    print("video2roll", v2r_run, flush=True)
    v2r.eval()
    r2m_pieces = pieces["train"][: args.r2m_pieces or None]
    train_probs = [v2r.predict_probabilities(p["crops"]) for p in r2m_pieces]
    held_probs = [v2r.predict_probabilities(p["crops"]) for p in held]

    class _R2M(torch.nn.Module):  # Roll2Midi's parts without its checkpoint plumbing
        def __init__(self) -> None:
            super().__init__()
            self.video2roll, self.window, self.threshold = v2r, 100, 0.4
            self.w_adv, self.w_mse = 0.001, 0.999
            self.generator = Roll2MidiGenerator(base=args.r2m_base)
            self.discriminator = PatchDiscriminator(base=args.r2m_base)

    r2m_parts = _R2M()
    rolls_train = [p["roll"] for p in r2m_pieces]
    r2m_run = train_roll2midi(r2m_parts, train_probs, rolls_train, args.r2m_budget, 16, 5e-4)
    print("roll2midi", r2m_run, flush=True)
    refine = Roll2Midi.refine.__get__(r2m_parts)  # the model's windowed inference
    raw, refined = [], []
    for probs in held_probs:
        raw.append((v2r.full_roll(probs).numpy() >= v2r.threshold).astype(np.uint8))
        refined.append((v2r.full_roll(refine(probs)).numpy() >= 0.4).astype(np.uint8))
    keys = (offset, offset + count)
    truth = [p["roll"].numpy().astype(np.uint8) for p in held]
    figures: dict[str, Any] = {
        "held_out_pieces": [p["name"] for p in held],
        "held_out_frames": int(sum(len(p["roll"]) for p in held)),
        "train_pieces": len(pieces["train"]),
        "video2roll_training": v2r_run,
        "roll2midi_training": r2m_run,
        "video2roll_thresholded": score(held, raw, keys, fps),
        "roll2midi": score(held, refined, keys, fps),
        "ground_truth_roll_ceiling": score(held, truth, keys, fps),
    }
    for what in ("frame_f1", "onset_f1"):
        gain = figures["roll2midi"][what] - figures["video2roll_thresholded"][what]
        figures[f"roll2midi_gain_{what}"] = round(gain, 4)
    config = {
        "studio_minutes_piano": args.minutes,
        "studio_root": str(root),
        "video2roll_cpu_budget_s": args.v2r_budget,
        "roll2midi_cpu_budget_s": args.r2m_budget,
        "roll2midi_train_pieces": len(r2m_pieces),
        "budget_clock": "time.process_time (all threads)",
        "video2roll": {
            "width": args.width,
            "input_size": list(size),
            "key_offset": offset,
            "num_keys": count,
            "batch": args.batch,
            "lr": args.lr,
            "sampler": "balanced multilabel",
            "threshold": 0.4,
        },  # fmt: skip
        "roll2midi": {
            "base": args.r2m_base,
            "window": 100,
            "batch": 16,
            "lr": 5e-4,
            "w_adv": 0.001,
            "w_mse": 0.999,
            "threshold": 0.4,
        },  # fmt: skip
        "note_onset_tolerance_s": 0.05,
    }
    return figures, config


if __name__ == "__main__":
    main()
