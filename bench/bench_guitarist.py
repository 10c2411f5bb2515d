"""Audio2Guitarist learning and speed on held-out studio guitar pieces.

Renders a guitar-only studio set (``audiovis studio build --out DIR --instruments guitar
--styles --minutes N``; splits by piece, so the test piece is never heard in training), then
trains each stage for a fixed budget of process CPU seconds and measures on the test split:

* stage 1: mask IoU of the model, of a "mean mask" (the training masks' mean, thresholded at
  0.5), of the same model fed silent audio, and of the reference frame's own mask repeated
  (each test window's first frame is its reference; frames 1 … T−1 are scored);
* stage 2: PSNR / SSIM from the true masks + heatmaps and from the stage-1 outputs, and of the
  reference frame repeated;
* generation frames per second at 128x128 with 2 threads (both stages, 10 s of music);
* training clips per second (wall and per process-CPU second) of each stage.

    python -m bench.bench_guitarist [--budget 240] [--budget2 150] [--size 64] [--minutes 5]

Learning runs at 64x64 by default (a 128x128 stage-1 step costs about 4x the CPU, too much
for a budget of minutes on 2 cores); the speed figures are at 128x128.
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

from audiovis.data import AudioVisualDataModule
from audiovis.data.cache import user_cache_dir
from audiovis.data.clips import ClipDataset, StreamFiles
from audiovis.metrics.guitarist import FrameMetrics, MaskIoU
from audiovis.models.guitarist import AudioToMaskGAN, MaskToImageGAN, Reference, render_guitarist
from bench.common import write_result


def build_data(out: Path, minutes: float) -> Path:
    if not (out / "manifest.json").is_file():
        exe = str(Path(sys.executable).with_name("audiovis"))
        cmd = [exe, "studio", "build", "--out", str(out), "--instruments", "guitar",
               "--styles", "--minutes", str(minutes)]  # fmt: skip
        subprocess.run(cmd, check=True)
    return out


def performances(dm: AudioVisualDataModule, split: str) -> list[StreamFiles]:
    dataset = dm.datasets[split]
    assert isinstance(dataset, ClipDataset)
    return dataset.performances


def loader(dm: AudioVisualDataModule, split: str, batch: int, shuffle: bool) -> Any:
    return torch.utils.data.DataLoader(dm.datasets[split], batch_size=batch, shuffle=shuffle)


def train(model: Any, data: Any, budget: float, lr_g: float, lr_d: float) -> dict[str, float]:
    """GANModule's step (a discriminator step, then a generator step) until ``budget`` process
    CPU seconds are spent; returns the clips seen and the time taken."""
    opt_g = torch.optim.Adam(model.generator.parameters(), lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr_d, betas=(0.5, 0.999))
    model.train()
    cpu0, wall0, clips, steps = time.process_time(), time.perf_counter(), 0, 0
    while time.process_time() - cpu0 < budget:
        for batch in data:
            for opt, net, fn in ((opt_d, model.discriminator, model.discriminator_loss),
                                 (opt_g, model.generator, model.generator_loss)):  # fmt: skip
                model.requires_grad_(False)
                net.requires_grad_(True)
                loss, _ = fn(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
                opt.step()
            clips += len(batch["audio"] if "audio" in batch else batch["video"])
            steps += 1
            if time.process_time() - cpu0 >= budget:
                break
    model.requires_grad_(True)
    model.eval()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"steps": steps, "clips": clips, "cpu_seconds": round(cpu, 1),
            "wall_seconds": round(wall, 1), "clips_per_second": round(clips / wall, 2),
            "clips_per_cpu_second": round(clips / cpu, 3)}  # fmt: skip


@torch.no_grad()
def eval_stage1(model: AudioToMaskGAN, dm: AudioVisualDataModule, mean_mask: torch.Tensor
                ) -> dict[str, float]:  # fmt: skip
    ious = {k: MaskIoU() for k in ("model", "silent_audio", "mean_mask", "reference_mask")}
    for batch in loader(dm, "test", 8, False):
        mask, ref = batch["mask"], batch["keypoints"][:, 0]
        t, true = mask.shape[1], mask[:, 1:]  # frame 0 is the reference itself: not scored
        ious["model"](model(batch["audio"], t, ref, mask[:, 0])["mask"][:, 1:].sigmoid(), true)
        silent = torch.zeros_like(batch["audio"])
        ious["silent_audio"](model(silent, t, ref, mask[:, 0])["mask"][:, 1:].sigmoid(), true)
        ious["mean_mask"](mean_mask.expand_as(true), true)
        ious["reference_mask"](mask[:, :1].expand_as(true), true)
    return {k: round(float(v.compute()), 4) for k, v in ious.items()}


@torch.no_grad()
def eval_stage2(image: MaskToImageGAN, mask_model: AudioToMaskGAN, dm: AudioVisualDataModule
                ) -> dict[str, dict[str, float]]:  # fmt: skip
    """Each window's frames from its first frame (the reference), given the true conditions or
    stage 1's outputs (its mask thresholded, as the pipeline does)."""
    metrics = {k: FrameMetrics() for k in ("true_masks", "stage1_masks", "reference_frame")}
    floored: list[float] = []
    for batch in loader(dm, "test", 8, False):
        video, mask, kp = batch["video"], batch["mask"], batch["keypoints"]
        t = video.shape[1]
        true = image.condition(kp, mask)  # (B, T, C, S, S)
        out = mask_model(batch["audio"], t, kp[:, 0], mask[:, 0])
        stage1 = torch.cat([(out["mask"].sigmoid() >= 0.5).float(), out["heatmaps"].sigmoid()], 2)
        # frame 0 of each window is the reference itself: frames 1 … T−1 are scored
        reference = video[:, :1].expand(-1, t - 1, -1, -1, -1).flatten(0, 1)
        ref_cond = true[:, :1].expand(-1, t - 1, -1, -1, -1).flatten(0, 1)
        real = video[:, 1:].flatten(0, 1)
        for name, cond in (("true_masks", true), ("stage1_masks", stage1)):
            fake = image(cond[:, 1:].flatten(0, 1), reference, ref_cond)[1]
            metrics[name].update(fake, real)
        metrics["reference_frame"].update(reference, real)
        # a frame equal to its reference has infinite PSNR; floor the error at 8-bit rounding
        mse = ((reference - real) / 2).pow(2).flatten(1).mean(1).clamp(min=(0.5 / 255) ** 2)
        floored += (10 * torch.log10(1 / mse)).tolist()
    result = {
        k: {n: round(float(x), 3) for n, x in v.compute().items()} for k, v in metrics.items()
    }
    result["reference_frame"]["psnr"] = round(float(np.mean(floored)), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=240.0,
                        help="process CPU seconds of training of stage 1")  # fmt: skip
    parser.add_argument("--budget2", type=float, default=150.0,
                        help="process CPU seconds of training of stage 2")  # fmt: skip
    parser.add_argument("--size", type=int, default=64, help="frame side of the learning runs")
    parser.add_argument("--minutes", type=float, default=5.0, help="guitar music to render")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    # learning runs on one thread: on a shared, loaded machine two threads spin-wait for each
    # other and burn the process-CPU budget (measured: ~4x the CPU seconds per step)
    torch.set_num_threads(1)
    data = build_data(args.data or user_cache_dir() / "bench" / f"guitar-{args.minutes:g}min",
                      args.minutes)  # fmt: skip
    size, clip = args.size, 8
    dm = AudioVisualDataModule(str(data), streams=["audio", "video", "mask", "keypoints"],
                               image_size=size, clip_frames=clip, clip_stride=4,
                               eval_stride=clip, select={"instrument": ["guitar"]})  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    test_frames = sum(p.meta.num_frames for p in performances(dm, "test"))

    stage1_config = dict(audio_dim=64, code_dim=64, base=16, depth=3, d_base=16, d_layers=3,
                         window=clip)  # fmt: skip
    mask_model = AudioToMaskGAN(image_size=size, **stage1_config)  # type: ignore[arg-type]
    masks = [np.load(p.arrays["mask"], mmap_mode="r") for p in performances(dm, "train")]
    mean = torch.from_numpy(np.concatenate([m[::5] for m in masks]).mean(0)).float()
    mean_mask = (mean >= 0.5).float()[None, None]
    stage1_train = train(mask_model, loader(dm, "train", 4, True), args.budget, 1e-3, 2e-4)
    stage1 = eval_stage1(mask_model, dm, mean_mask)
    print("stage 1", stage1_train, stage1)

    stage2_config = dict(base=16, depth=3, refine_base=16, refine_depth=2, d_base=32)
    image_model = MaskToImageGAN(image_size=size, **stage2_config)  # type: ignore[arg-type]
    stage2_train = train(image_model, loader(dm, "train", 4, True), args.budget2, 5e-4, 2e-4)
    stage2 = eval_stage2(image_model, mask_model, dm)
    print("stage 2", stage2_train, stage2)

    # generation speed at 128x128 (the same designs, fresh weights: speed does not depend on
    # them): 10 s of a test piece's music through both stages, 2 threads
    torch.set_num_threads(2)
    test_files = performances(dm, "test")[0]
    wave = torch.from_numpy(np.array(np.load(str(test_files.audio))[: 10 * 16000]))
    fast1 = AudioToMaskGAN(image_size=128, **stage1_config).eval()  # type: ignore[arg-type]
    fast2 = MaskToImageGAN(image_size=128, **stage2_config).eval()  # type: ignore[arg-type]
    ref = Reference(fast2.reference_frame, fast2.reference_mask, fast2.reference_keypoints)
    render_guitarist(wave[:16000], fast1, fast2, ref)  # warm-up
    start = time.perf_counter()
    render = render_guitarist(wave, fast1, fast2, ref)
    seconds = time.perf_counter() - start
    frames = len(render.masks)

    write_result(
        "guitarist",
        "learning",
        {
            "data": "audiovis studio build --instruments guitar --styles --minutes "
            f"{args.minutes:g}",
            "train_performances": len(performances(dm, "train")),
            "test_performances": [p.meta.name for p in performances(dm, "test")],
            "test_frames": test_frames,
            "budget_process_cpu_seconds_stage1": args.budget,
            "budget_process_cpu_seconds_stage2": args.budget2,
            "threads_learning": 1,
            "threads_generation": 2,
            "image_size_learning": size,
            "image_size_generation": 128,
            "train_clip_frames": clip,
            "batch_size": 4,
            "stage1": stage1_config,
            "stage2": stage2_config,
        },  # fmt: skip
        {
            "stage1_training": stage1_train,
            "stage1_mask_iou": stage1,
            "stage2_training": stage2_train,
            "stage2_frames": stage2,
            "generation_fps_both_stages_128px": round(frames / seconds, 2),
            "generation_frames": frames,
        },
    )


if __name__ == "__main__":
    main()
