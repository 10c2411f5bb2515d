"""APVG: generation speed, training throughput and memory, and what it learns in a fixed CPU
budget on the embedded default data (held-out pieces).

    python -m bench.bench_apvg speed [--size 128] [--warp-sigma 0.02] [--cvg-scale 2]
        [--gpu-size 256]
    python -m bench.bench_apvg learning [--budget 600] [--size 64] [--variants full no_cvg no_khp]
        [--instrument cello] [--workdir runs/bench_apvg]
    python -m bench.bench_apvg keypoints [--budget 150] [--instrument cello]

``speed`` writes bench/results/apvg_speed.json: frames generated per second from audio (fp32 and
bf16 autocast, which uses the CPU's AMX/AVX-512 bf16 units where present), training clips per
second (batch 4 of 16 frames) in each precision and the peak resident memory. On a CPU without
bfloat16 units (AVX2 only), where bf16 runs about 100x slower than fp32
(audiovis/hardware.py), bf16 is not measured and everything runs in fp32 (the JSON says which).
Where a CUDA GPU is present, the same figures in bf16 at ``--gpu-size`` (the paper's 256) and
the GPU's peak memory go under ``gpu``.

``keypoints`` writes bench/results/apvg_keypoints.json (apvg_keypoints_<root>.json for another
dataset): the KHP stage alone under each pose
condition (the paper's average pose; our ``first_pose``: a change to the clip's first pose),
scored on the test piece against always predicting the average pose and holding the first pose.

``learning`` writes bench/results/apvg_learning.json: each variant runs the paper's stage-wise
schedule (KHP, then CVG, then STU + discriminator; SCHEDULE below) within the same CPU budget
(process CPU seconds, so a shared machine gives every variant the same compute) on the
studio's performances of one instrument, then is scored on the held-out test piece: PSNR, SSIM,
and the mean keypoint distance against that of always predicting the training split's average
pose.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import Tensor

from audiovis.audio import CQT
from audiovis.callbacks import CPUBudget
from audiovis.data import AudioVisualDataModule
from audiovis.hardware import cpu_has_fast_bf16
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


FAST_BF16 = cpu_has_fast_bf16()
PRECISION = "bf16-mixed" if FAST_BF16 else "32-true"


def build_model(size: int, **flags: Any) -> APVG:
    frontend = CQT(SAMPLE_RATE, hop_length=256, n_bins=84)
    small: dict[str, Any] = (
        {"cvg_channels": 16, "stu_base": 16, "stu_depth": 3} if size <= 64 else {}
    )
    return APVG(frontend, image_size=size, sample_rate=SAMPLE_RATE, w_perceptual=0.0,
                **small, **flags)  # fmt: skip


def _rates(model: APVG, audio: Tensor, size: int, bf16: bool) -> tuple[float, float]:
    """Frames generated per second from ``audio`` (median of 3) and training clips per second
    (batch 4 of 16 frames, the discriminator's and the generator's step; mean of 3 after a
    warm-up), on the model's device, under bf16 autocast if ``bf16``."""
    device = audio.device

    def clock() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        model.generate(audio[:SAMPLE_RATE])  # warm-up
        rates = []
        for _ in range(3):
            start = clock()
            frames = model.generate(audio)["frames"]
            rates.append(len(frames) / (clock() - start))
    model.train()
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), 1e-4)
                    for m in (model.generator, model.discriminator))  # fmt: skip
    batch = {
        "audio": torch.randn(4, 16 * SAMPLE_RATE // 25, device=device) * 0.1,
        "video": torch.rand(4, 16, 3, size, size, device=device) * 2 - 1,
        "keypoints": torch.rand(4, 16, 67, 3, device=device),
    }
    times = []
    for step in range(4):
        start = clock()
        for optimizer, loss_of in ((opt_d, model.discriminator_loss),
                                   (opt_g, model.generator_loss)):  # fmt: skip
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss, _ = loss_of(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if step:  # the first step warms up
            times.append(clock() - start)
    model.eval()
    return sorted(rates)[1], 4 / (sum(times) / len(times))


def speed(size: int, seconds: float, warp_sigma: float = 0.02, cvg_scale: int = 2,
          gpu_size: int = 256) -> None:  # fmt: skip
    """CPU: fp32 (and bf16 where the CPU has bf16 units) at ``size``; a GPU if present:
    bf16-mixed at ``gpu_size``."""
    torch.manual_seed(0)
    model = build_model(size, warp_sigma=warp_sigma, cvg_scale=cvg_scale)
    audio = torch.randn(int(seconds * SAMPLE_RATE)) * 0.1
    figures: dict[str, Any] = {"generator_parameters_M": round(
        sum(p.numel() for p in model.generator.parameters()) / 1e6, 2)}  # fmt: skip
    for name, bf16 in (("fp32", False), ("bf16", True))[: 2 if FAST_BF16 else 1]:
        fps, clips = _rates(model, audio, size, bf16)
        figures[f"generate_fps_{name}"] = round(fps, 2)
        figures[f"train_clips_per_s_{name}"] = round(clips, 3)
    figures["peak_rss_gb"] = round(peak_rss_gb(), 2)
    if torch.cuda.is_available():
        torch.manual_seed(0)
        gpu = build_model(gpu_size, warp_sigma=warp_sigma, cvg_scale=cvg_scale).cuda()
        torch.cuda.reset_peak_memory_stats()
        fps, clips = _rates(gpu, audio.cuda(), gpu_size, bf16=True)
        figures["gpu"] = {"size": gpu_size, "generate_fps_bf16": round(fps, 2),
                          "train_clips_per_s_bf16_mixed": round(clips, 3),
                          "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1024**3,
                                                  2)}  # fmt: skip
    config = {"size": size, "audio_seconds": seconds, "warp_sigma": warp_sigma,
              "cvg_scale": cvg_scale, "threads": torch.get_num_threads(),
              "cpu_bf16_units": FAST_BF16}  # fmt: skip
    write_result("apvg", "speed", config, figures)


def average_pose_distance(model: APVG, dm: AudioVisualDataModule) -> float:
    metric = KeypointDistance()
    for batch in dm.test_dataloader():
        true = batch["keypoints"]
        guess = model.average_keypoints[:, :2].expand(*true.shape[:-1], 2)
        metric.update(guess, true)
    return float(metric.compute())


#: the paper's schedule, as fractions of a variant's budget: KHP alone, CVG alone, then the
#: STU and the discriminator with both frozen. A variant without a stage gives its share to
#: the next stage it has, so every variant gets the same total compute.
SCHEDULE = (("khp", 0.25), ("cvg", 0.25), ("final", 0.5))


def _fit_stage(model: APVG, dm: AudioVisualDataModule, budget: float, ckpt: Path,
               keep_best: bool = False) -> dict[str, Any]:  # fmt: skip
    """Train within ``budget`` CPU seconds and save the model to ``ckpt``. ``keep_best``:
    validate every epoch and keep the epoch with the lowest val/loss (early stopping; the
    validation's CPU time counts in the budget)."""
    limit = CPUBudget(budget)
    best = ModelCheckpoint(dirpath=ckpt.parent, filename=ckpt.stem + "_best",
                           monitor="val/loss", mode="min", save_top_k=1)  # fmt: skip
    trainer = pl.Trainer(max_epochs=10_000, precision=PRECISION, logger=False,
                         enable_checkpointing=keep_best, limit_val_batches=1.0 if keep_best
                         else 0, callbacks=[limit, best] if keep_best else [limit],
                         enable_model_summary=False, enable_progress_bar=False)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, dm)
    info = {"steps": trainer.global_step, "epochs": trainer.current_epoch,
            "cpu_seconds": limit.used, "wall_seconds": time.perf_counter() - start}  # fmt: skip
    if keep_best and best.best_model_path:
        Path(best.best_model_path).replace(ckpt)
        info["best_val_loss"] = float(best.best_model_score or 0.0)
    else:
        trainer.save_checkpoint(ckpt)
    return info


def copy_first_frame(size: int, dm: AudioVisualDataModule) -> dict[str, float]:
    """The scores of repeating each test clip's first frame: what the untrained model does
    (its CVG and STU start at zero change), the baseline any training must beat."""
    pl.seed_everything(0)
    model = build_model(size, use_khp=False)
    model.average_keypoints.fill_(0.0)  # not used: keypoints are not scored here
    tester = pl.Trainer(logger=False, precision=PRECISION, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    scores = tester.test(model, dm, verbose=False)[0]
    return {"psnr": round(scores["test/psnr"], 3), "ssim": round(scores["test/ssim"], 4)}


def learning(size: int, budget: float, variants: list[str], instrument: str,
             workdir: Path, root: Path | None = None,
             khp_condition: str = "average", cvg_anchor: str = "previous",
             w_change: float = 0.0, warp_sigma: float = 0.0, seed: int = 0,
             cvg_scale: int = 1) -> None:  # fmt: skip
    """Each variant runs the paper's stage-wise schedule within ``budget`` CPU seconds (the KHP
    stage keeps its best epoch on the validation piece: it overfits two training pieces). A KHP
    stage that two variants share (``full``, ``no_cvg``, ``no_gcn``, ...) is trained once and
    loaded by each, as a user would; it still counts in every variant's budget. ``seed`` seeds
    every stage's initialisation and batches (another seed measures the spread of a figure)."""
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    khp_runs: dict[str, tuple[str, dict[str, Any]]] = {}  # KHP flags → (checkpoint, log)
    dm = AudioVisualDataModule(root=None if root is None else str(root),
                               sample_rate=SAMPLE_RATE, image_size=size, clip_frames=16,
                               batch_size=8, num_workers=0,
                               select={"instrument": [instrument]})  # fmt: skip
    flags_all = {"khp_condition": khp_condition, "cvg_anchor": cvg_anchor, "w_change": w_change,
                 "warp_sigma": warp_sigma, "cvg_scale": cvg_scale}  # fmt: skip
    switch = {"khp": "use_khp", "cvg": "use_cvg", "final": "use_stu"}
    results["copy_first_frame"] = copy_first_frame(size, dm)
    for name in variants:
        flags = VARIANTS[name]
        shares: dict[str, float] = {}
        carry = 0.0  # a switched-off stage gives its share to the next stage the variant has
        for stage, share in SCHEDULE:
            if flags.get(switch[stage], True):
                shares[stage], carry = share + carry, 0.0
            else:
                carry += share
        shares[list(shares)[-1]] += carry
        log: dict[str, Any] = {}
        init: dict[str, str] = {}
        for stage, share in shares.items():
            pl.seed_everything(seed)
            model = build_model(size, stage=stage, init_from=dict(init), **flags, **flags_all)
            khp_key = repr({k: flags.get(k, True) for k in ("use_average", "use_dlt")})
            if stage == "khp" and khp_key in khp_runs:
                init["khp"], info = khp_runs[khp_key]
                log[stage] = {**info, "trained_for": "an earlier variant"}
                continue
            ckpt = str(workdir / f"{name}_{stage}.ckpt")
            info = _fit_stage(model, dm, budget * share, Path(ckpt), keep_best=stage == "khp")
            log[stage] = {k: round(v, 4 if k == "best_val_loss" else 1) if isinstance(v, float)
                          else v for k, v in info.items()}  # fmt: skip
            init["stu" if stage == "final" else stage] = ckpt
            if stage == "khp":
                khp_runs[khp_key] = (ckpt, log[stage])
        pl.seed_everything(seed)
        last = list(shares)[-1]
        final = build_model(size, stage=last, init_from=dict(init), **flags, **flags_all)
        tester = pl.Trainer(logger=False, precision=PRECISION, enable_progress_bar=False,
                            enable_model_summary=False)  # fmt: skip
        scores = tester.test(final, dm, verbose=False)[0]
        results[name] = {
            "psnr": round(scores["test/psnr"], 3),
            "ssim": round(scores["test/ssim"], 4),
            "keypoint_distance": round(scores["test/keypoint_distance"], 4),
            "average_pose_distance": round(average_pose_distance(final, dm), 4),
            "stages": log,
            "cpu_seconds": round(sum(v["cpu_seconds"] for v in log.values()), 1),
        }
        print(name, results[name], flush=True)
    full = results.get("full")
    if full:
        results["keypoint_ratio_to_average"] = round(
            full["keypoint_distance"] / full["average_pose_distance"], 3)  # fmt: skip
    train = len(getattr(dm.datasets["train"], "performances", []))
    what = "learning" if root is None else f"learning_{root.name}"
    what += "" if cvg_anchor == "previous" else f"_cvg-anchor-{cvg_anchor}"
    what += "" if w_change == 0.0 else f"_w-change-{w_change:g}"
    what += "" if warp_sigma == 0.0 else f"_warp-{warp_sigma:g}"
    what += "" if cvg_scale == 1 else f"_cvg-scale-{cvg_scale}"
    what += "" if seed == 0 else f"_seed-{seed}"
    write_result("apvg", what, {
        "size": size, "cpu_budget_s": budget, "schedule": dict(SCHEDULE),
        "data": f"{root or 'studio default'}, {instrument}: {train} train performances, the "
                "test split scored", "khp_condition": khp_condition, "cvg_anchor": cvg_anchor,
        "w_change": w_change, "warp_sigma": warp_sigma, "cvg_scale": cvg_scale, "seed": seed,
        "batch": 8, "clip_frames": 16, "precision": PRECISION,
        "threads": torch.get_num_threads()}, results)  # fmt: skip


def static_first_pose_distance(dm: AudioVisualDataModule) -> float:
    """Holding each test clip's first pose still: the baseline of the ``first_pose`` KHP."""
    metric = KeypointDistance()
    for batch in dm.test_dataloader():
        true = batch["keypoints"]
        metric.update(true[:, :1, :, :2].expand(*true.shape[:-1], 2), true)
    return float(metric.compute())


def keypoints(size: int, budget: float, instrument: str, workdir: Path,
              root: Path | None = None) -> None:  # fmt: skip
    """The KHP stage alone, ``budget`` CPU seconds per pose condition (best epoch on the val
    piece), scored on the test piece against both static baselines. ``root``: a studio
    dataset other than the embedded default (e.g. one with more pieces of the instrument)."""
    workdir.mkdir(parents=True, exist_ok=True)
    dm = AudioVisualDataModule(root=None if root is None else str(root),
                               sample_rate=SAMPLE_RATE, image_size=size, clip_frames=16,
                               batch_size=8, num_workers=0,
                               select={"instrument": [instrument]})  # fmt: skip
    results: dict[str, Any] = {}
    for condition in ("average", "first_pose"):
        pl.seed_everything(0)
        model = build_model(size, stage="khp", khp_condition=condition)
        ckpt = workdir / f"khp_{condition}.ckpt"
        info = _fit_stage(model, dm, budget, ckpt, keep_best=True)
        pl.seed_everything(0)
        final = build_model(size, stage="khp", khp_condition=condition,
                            init_from={"khp": str(ckpt)})  # fmt: skip
        tester = pl.Trainer(logger=False, precision=PRECISION, enable_progress_bar=False,
                            enable_model_summary=False)  # fmt: skip
        scores = tester.test(final, dm, verbose=False)[0]
        results[condition] = {
            "keypoint_distance": round(scores["test/keypoint_distance"], 4),
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in info.items()},
        }
        results.setdefault("average_pose_distance", round(average_pose_distance(final, dm), 4))
        print(condition, results[condition], flush=True)
    results["static_first_pose_distance"] = round(static_first_pose_distance(dm), 4)
    for condition in ("average", "first_pose"):
        results[f"{condition}_ratio_to_average_pose"] = round(
            results[condition]["keypoint_distance"] / results["average_pose_distance"], 3
        )
        results[f"{condition}_ratio_to_static_first_pose"] = round(
            results[condition]["keypoint_distance"] / results["static_first_pose_distance"], 3
        )
    what = "keypoints" if root is None else f"keypoints_{root.name}"
    write_result("apvg", what, {
        "size": size, "cpu_budget_s_per_condition": budget, "instrument": instrument,
        "data": str(root or "studio default"),
        "train_performances": len(getattr(dm.datasets["train"], "performances", [])),
        "selection": "best val/loss epoch (val piece)", "batch": 8, "clip_frames": 16,
        "precision": PRECISION, "threads": torch.get_num_threads(),
        "load_average": Path("/proc/loadavg").read_text().split()[:3]}, results)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what")
    s = sub.add_parser("speed")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seconds", type=float, default=8.0)
    s.add_argument(
        "--warp-sigma",
        type=float,
        default=0.02,
        help="APVG warp_sigma (apvg.yaml's 0.02; 0: the model without the warp)",
    )
    s.add_argument("--gpu-size", type=int, default=256, help="frame side on a GPU")
    s.add_argument("--cvg-scale", type=int, default=2, help="APVG cvg_scale (apvg.yaml's 2: "
                   "the coarse stage at half size; 1: the paper's full size)")  # fmt: skip
    learn = sub.add_parser("learning")
    learn.add_argument("--size", type=int, default=64)
    learn.add_argument("--budget", type=float, default=600.0, help="CPU seconds per variant")
    learn.add_argument("--variants", nargs="*", default=["full", "no_cvg", "no_khp"],
                       choices=list(VARIANTS))  # fmt: skip
    learn.add_argument("--instrument", default="cello")
    learn.add_argument("--workdir", type=Path, default=Path("runs/bench_apvg"),
                       help="where the stage checkpoints go")  # fmt: skip
    learn.add_argument("--root", type=Path, default=None, help="a studio dataset (default: "
                       "the embedded default)")  # fmt: skip
    learn.add_argument("--khp-condition", default="average", choices=["average", "first_pose"])
    learn.add_argument("--cvg-anchor", default="previous", choices=["previous", "first"])
    learn.add_argument("--w-change", type=float, default=0.0, help="APVG w_change: the frame "
                       "L1 weighted up where the real video moves")  # fmt: skip
    learn.add_argument("--warp-sigma", type=float, default=0.0, help="APVG warp_sigma: the "
                       "coarse frames carried with the predicted keypoints")  # fmt: skip
    learn.add_argument("--seed", type=int, default=0)
    learn.add_argument("--cvg-scale", type=int, default=1, help="APVG cvg_scale: the coarse "
                       "stage at 1/scale of the frame size")  # fmt: skip
    kp = sub.add_parser("keypoints")
    kp.add_argument("--size", type=int, default=64)
    kp.add_argument("--budget", type=float, default=150.0, help="CPU seconds per condition")
    kp.add_argument("--instrument", default="cello")
    kp.add_argument("--workdir", type=Path, default=Path("runs/bench_apvg_khp"))
    kp.add_argument("--root", type=Path, default=None, help="a studio dataset (default: the "
                    "embedded default)")  # fmt: skip
    args = parser.parse_args()
    if args.what == "keypoints":
        keypoints(args.size, args.budget, args.instrument, args.workdir, args.root)
    elif args.what == "learning":
        learning(
            args.size,
            args.budget,
            args.variants,
            args.instrument,
            args.workdir,
            args.root,
            args.khp_condition,
            args.cvg_anchor,
            args.w_change,
            args.warp_sigma,
            args.seed,
            args.cvg_scale,
        )
    else:  # `audiovis bench` runs the quick part
        speed(getattr(args, "size", 128), getattr(args, "seconds", 8.0),
              getattr(args, "warp_sigma", 0.02), getattr(args, "cvg_scale", 2),
              getattr(args, "gpu_size", 256))  # fmt: skip


if __name__ == "__main__":
    main()
