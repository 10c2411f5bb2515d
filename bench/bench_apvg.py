"""APVG: generation speed, training throughput and memory, and what it learns in a fixed CPU
budget on the embedded default data (held-out pieces).

    python -m bench.bench_apvg speed [--size 128]
    python -m bench.bench_apvg learning [--budget 600] [--size 64] [--variants full no_cvg no_khp]

``speed`` writes bench/results/apvg_speed.json: frames generated per second from audio (fp32 and
bf16 autocast, which uses the CPU's AMX/AVX-512 bf16 units where present), training clips per
second (bf16-mixed, batch 4 of 16 frames) and the peak resident memory.

``learning`` writes bench/results/apvg_learning.json: each variant trains for the same CPU
budget (process CPU seconds, so a shared machine gives every variant the same compute) on the
studio's cello performances, then is scored on the held-out test piece: PSNR, SSIM, and the
mean keypoint distance against that of always predicting the training split's average pose.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import pytorch_lightning as pl
import torch

from audiovis.audio import CQT
from audiovis.callbacks import CPUBudget
from audiovis.data import AudioVisualDataModule
from audiovis.metrics.video import KeypointDistance
from audiovis.models import APVG
from bench.common import write_result

SAMPLE_RATE = 16000
VARIANTS: dict[str, dict[str, bool]] = {
    "full": {},
    "no_cvg": {"use_cvg": False},
    "no_khp": {"use_khp": False},
    "no_stu": {"use_stu": False},
    "no_gcn": {"use_gcn": False},
    "no_gru": {"use_gru": False},
}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def build_model(size: int, **flags: Any) -> APVG:
    frontend = CQT(SAMPLE_RATE, hop_length=256, n_bins=84)
    small = {"cvg_channels": 16, "stu_base": 16, "stu_depth": 3} if size <= 64 else {}
    return APVG(frontend, image_size=size, sample_rate=SAMPLE_RATE, w_perceptual=0.0,
                **small, **flags)  # fmt: skip


def speed(size: int, seconds: float) -> None:
    torch.manual_seed(0)
    model = build_model(size).eval()
    audio = torch.randn(int(seconds * SAMPLE_RATE)) * 0.1
    figures: dict[str, Any] = {"generator_parameters_M": round(
        sum(p.numel() for p in model.generator.parameters()) / 1e6, 2)}  # fmt: skip
    for name, bf16 in (("fp32", False), ("bf16", True)):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model.generate(audio[:SAMPLE_RATE])  # warm-up
            rates = []
            for _ in range(3):
                start = time.perf_counter()
                frames = model.generate(audio)["frames"]
                rates.append(len(frames) / (time.perf_counter() - start))
        figures[f"generate_fps_{name}"] = round(sorted(rates)[1], 2)
    model.train()
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), 1e-4)
                    for m in (model.generator, model.discriminator))  # fmt: skip
    batch = {
        "audio": torch.randn(4, 16 * SAMPLE_RATE // 25) * 0.1,
        "video": torch.rand(4, 16, 3, size, size) * 2 - 1,
        "keypoints": torch.rand(4, 16, 67, 3),
    }
    times = []
    for step in range(4):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            d_loss, _ = model.discriminator_loss(batch)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            g_loss, _ = model.generator_loss(batch)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    figures["train_clips_per_s_bf16"] = round(4 / (sum(times) / len(times)), 3)
    figures["peak_rss_gb"] = round(peak_rss_gb(), 2)
    write_result("apvg", "speed", {"size": size, "audio_seconds": seconds,
                                   "threads": torch.get_num_threads()}, figures)  # fmt: skip


def average_pose_distance(model: APVG, dm: AudioVisualDataModule) -> float:
    metric = KeypointDistance()
    for batch in dm.test_dataloader():
        true = batch["keypoints"]
        guess = model.average_keypoints[:, :2].expand(*true.shape[:-1], 2)
        metric.update(guess, true)
    return float(metric.compute())


def learning(size: int, budget: float, variants: list[str]) -> None:
    results: dict[str, Any] = {}
    for name in variants:
        pl.seed_everything(0)
        model = build_model(size, **VARIANTS[name])
        dm = AudioVisualDataModule(sample_rate=SAMPLE_RATE, image_size=size, clip_frames=16,
                                   batch_size=8, select={"instrument": ["cello"]})  # fmt: skip
        limit = CPUBudget(budget)
        trainer = pl.Trainer(max_epochs=10_000, precision="bf16-mixed", logger=False,
                             enable_checkpointing=False, limit_val_batches=0,
                             callbacks=[limit], enable_model_summary=False)  # fmt: skip
        start = time.perf_counter()
        trainer.fit(model, dm)
        wall = time.perf_counter() - start
        scores = trainer.test(model, dm, verbose=False)[0]
        results[name] = {
            "psnr": round(scores["test/psnr"], 3),
            "ssim": round(scores["test/ssim"], 4),
            "keypoint_distance": round(scores["test/keypoint_distance"], 4),
            "average_pose_distance": round(average_pose_distance(model, dm), 4),
            "epochs": trainer.current_epoch,
            "optimizer_steps": trainer.global_step,
            "cpu_seconds": round(limit.used, 1),
            "wall_seconds": round(wall, 1),
        }
        print(name, results[name], flush=True)
    full = results.get("full")
    if full:
        results["keypoint_ratio_to_average"] = round(
            full["keypoint_distance"] / full["average_pose_distance"], 3)  # fmt: skip
    write_result("apvg", "learning", {"size": size, "cpu_budget_s": budget, "data":
                 "studio default, cello: 2 train / 1 test performances", "batch": 8,
                 "clip_frames": 16, "precision": "bf16-mixed",
                 "threads": torch.get_num_threads()}, results)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what")
    s = sub.add_parser("speed")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seconds", type=float, default=8.0)
    learn = sub.add_parser("learning")
    learn.add_argument("--size", type=int, default=64)
    learn.add_argument("--budget", type=float, default=600.0, help="CPU seconds per variant")
    learn.add_argument("--variants", nargs="*", default=["full", "no_cvg", "no_khp"],
                       choices=list(VARIANTS))  # fmt: skip
    args = parser.parse_args()
    if args.what == "learning":
        learning(args.size, args.budget, args.variants)
    else:  # `audiovis bench` runs the quick part
        speed(getattr(args, "size", 128), getattr(args, "seconds", 8.0))


if __name__ == "__main__":
    main()
