"""Audio2Guitarist learning and speed on held-out studio guitar pieces.

Renders a guitar-only studio set (``audiovis studio build --out DIR --instruments guitar
--styles --minutes N``; splits by piece, so the held-out pieces, the val and the test piece,
are never heard in training), then trains each stage for a fixed budget of process CPU
seconds and measures on the held-out pieces:

* stage 1 is trained with each clip's reference frame drawn at random from its own
  performance (not the clip's first frame, a third of a second from the frames to predict,
  which copying alone gets nearly right), as generation keeps one reference for a piece;
* stage 1, mask IoU of the model, of a "mean mask" (the training masks' mean, thresholded at
  0.5), of the same model fed silent audio, and of the reference frame's own mask repeated,
  two ways: ``pieces``, each held-out piece generated whole from its first frame as the
  pipeline does (LSTM state carried across windows; frames 1 … end are scored), and
  ``windows``, each 8-frame window from its own first frame (frames 1 … 7 scored); besides
  mask IoU, the change IoU (:class:`~audiovis.metrics.guitarist.MaskChangeIoU`: of where the
  mask moved from the reference, which copying the reference gets 0 on) and how much the
  music changes the output at all (mean |p(audio) − p(silence)|);
* stage 2 (its coarse U-Net predicts a change of the reference frame, starting at zero: the
  untrained generator copies the reference; only the performer's masks and a 3 % margin may
  change; adversarial weight 0.1 against L1's 10), PSNR / SSIM from the true masks +
  heatmaps, from stage 1's outputs, and of the reference frame repeated, the same two ways;
* generation frames per second at 128x128 with 2 threads (both stages, 10 s of music);
* training clips per second (wall and per process-CPU second) of each stage.

PSNR is floored at 8-bit rounding error (a generated frame equal to the real one would score
infinity), the same for every row.

    python -m bench.bench_guitarist [--budget 360] [--budget2 300] [--size 64] [--clip 8]
        [--minutes 5] [--no-speed]

Learning runs at 64x64 by default (a 128x128 stage-1 step costs about 4x the CPU, too much
for a budget of minutes on 2 cores); the speed figures are at 128x128.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiovis.data import AudioVisualDataModule
from audiovis.data.cache import user_cache_dir
from audiovis.data.clips import ClipDataset, StreamFiles, to_float_video
from audiovis.metrics.guitarist import FrameMetrics, MaskChangeIoU, MaskIoU
from audiovis.models.guitarist import AudioToMaskGAN, MaskToImageGAN, Reference, render_guitarist
from bench.common import write_result

HELD_OUT = ("val", "test")


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


class RandomReferences:
    """A training loader whose clips each get a reference frame (``reference_mask``,
    ``reference_keypoints``) drawn at random from their own performance."""

    def __init__(self, data: Iterable[dict[str, torch.Tensor]], files: list[StreamFiles],
                 seed: int = 0) -> None:  # fmt: skip
        self.data, self.rng = data, np.random.default_rng(seed)
        self.masks = [np.load(f.arrays["mask"], mmap_mode="r") for f in files]
        self.keypoints = [np.load(f.arrays["keypoints"], mmap_mode="r") for f in files]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for batch in self.data:
            picks = [(int(p), int(self.rng.integers(len(self.masks[int(p)]))))
                     for p in batch["performance"]]  # fmt: skip
            masks = [np.array(self.masks[p][r], np.float32)[None] for p, r in picks]
            kps = [np.array(self.keypoints[p][r], np.float32) for p, r in picks]
            batch["reference_mask"] = torch.from_numpy(np.stack(masks))
            batch["reference_keypoints"] = torch.from_numpy(np.stack(kps))
            yield batch


def load_average() -> str:
    """The machine's 1, 5 and 15-minute load averages (wall-clock figures depend on them)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def train(model: Any, data: Any, budget: float, lr_g: float, lr_d: float) -> dict[str, Any]:
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
            "clips_per_cpu_second": round(clips / cpu, 3),
            "load_average_at_end": load_average()}  # fmt: skip


class Frames:
    """PSNR (floored at 8-bit rounding error) and SSIM of frames in [-1, 1]."""

    def __init__(self) -> None:
        self.ssim, self.psnr = FrameMetrics(), list[float]()

    def update(self, fake: torch.Tensor, real: torch.Tensor) -> None:
        self.ssim.update(fake, real)
        mse = ((fake - real) / 2).pow(2).flatten(1).mean(1).clamp(min=(0.5 / 255) ** 2)
        self.psnr += (10 * torch.log10(1 / mse)).tolist()

    def compute(self) -> dict[str, float]:
        return {"psnr": round(float(np.mean(self.psnr)), 3),
                "ssim": round(float(self.ssim.compute()["ssim"]), 4)}  # fmt: skip


def held_out_pieces(dm: AudioVisualDataModule) -> list[dict[str, torch.Tensor]]:
    """Each held-out performance whole: ``audio`` (S,), ``video`` (T, 3, S, S) in [-1, 1],
    ``mask`` (T, 1, S, S), ``keypoints`` (T, 67, 3)."""
    pieces = []
    for split in HELD_OUT:
        for f in performances(dm, split):
            pieces.append({
                "audio": torch.from_numpy(np.array(np.load(str(f.audio)), np.float32)),
                "video": to_float_video(np.load(f.arrays["video"], mmap_mode="r")),
                "mask": torch.from_numpy(np.array(np.load(f.arrays["mask"]), np.float32))[:, None],
                "keypoints": torch.from_numpy(np.array(np.load(f.arrays["keypoints"]),
                                                       np.float32)),
            })  # fmt: skip
    return pieces


def stage1_pieces(model: AudioToMaskGAN, piece: dict[str, torch.Tensor], silent: bool = False
                  ) -> dict[str, torch.Tensor]:  # fmt: skip
    """Stage 1 over a whole piece from its first frame; (T', ...) with T' ≤ the piece's T."""
    audio = torch.zeros_like(piece["audio"]) if silent else piece["audio"]
    return model.generate(audio, piece["keypoints"][0], piece["mask"][0])


class Stage1Scores:
    """Mask IoU and change IoU (of where the mask moved from the reference) of each row."""

    ROWS = ("model", "silent_audio", "mean_mask", "reference_mask")

    def __init__(self) -> None:
        self.iou = {k: MaskIoU() for k in self.ROWS}
        self.change = {k: MaskChangeIoU() for k in self.ROWS}

    def update(self, row: str, pred: torch.Tensor, true: torch.Tensor, ref: torch.Tensor) -> None:
        self.iou[row].update(pred, true)
        self.change[row].update(pred, true, ref)

    def compute(self) -> dict[str, dict[str, float]]:
        return {
            name: {k: round(float(v.compute()), 4) for k, v in metric.items()}
            for name, metric in (("mask_iou", self.iou), ("change_iou", self.change))
        }


@torch.no_grad()
def eval_stage1(model: AudioToMaskGAN, dm: AudioVisualDataModule, mean_mask: torch.Tensor,
                pieces: list[dict[str, torch.Tensor]]) -> dict[str, Any]:  # fmt: skip
    result: dict[str, Any] = {}
    scores, changed = Stage1Scores(), []
    for piece in pieces:
        out, quiet = stage1_pieces(model, piece), stage1_pieces(model, piece, silent=True)
        t = min(len(out["mask"]), len(piece["mask"]))
        changed.append((out["mask"] - quiet["mask"]).abs().mean().item())
        true, ref = piece["mask"][1:t], piece["mask"][:1]
        scores.update("model", out["mask"][1:t], true, ref)
        scores.update("silent_audio", quiet["mask"][1:t], true, ref)
        scores.update("mean_mask", mean_mask[0].expand_as(true), true, ref)
        scores.update("reference_mask", ref.expand_as(true), true, ref)
    result["pieces"] = scores.compute()
    # how much the music moves the output at all: mean |p(audio) − p(silence)| per pixel
    result["pieces"]["mean_abs_probability_change_audio_vs_silent"] = round(
        float(np.mean(changed)), 5
    )
    scores = Stage1Scores()
    for split in HELD_OUT:
        for batch in loader(dm, split, 8, False):
            mask, kp = batch["mask"], batch["keypoints"][:, 0]
            t, true = mask.shape[1], mask[:, 1:]  # frame 0 is the reference itself: not scored
            ref = mask[:, :1]
            pred = model(batch["audio"], t, kp, mask[:, 0])["mask"][:, 1:].sigmoid()
            scores.update("model", pred, true, ref)
            silent = torch.zeros_like(batch["audio"])
            pred = model(silent, t, kp, mask[:, 0])["mask"][:, 1:].sigmoid()
            scores.update("silent_audio", pred, true, ref)
            scores.update("mean_mask", mean_mask.expand_as(true), true, ref)
            scores.update("reference_mask", ref.expand_as(true), true, ref)
    result["windows"] = scores.compute()
    return result


@torch.no_grad()
def eval_stage2(
    image: MaskToImageGAN,
    mask_model: AudioToMaskGAN,
    dm: AudioVisualDataModule,
    pieces: list[dict[str, torch.Tensor]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Frames from a reference frame given the true conditions or stage 1's outputs (its mask
    thresholded, as the pipeline does): whole pieces from their first frame, and windows from
    theirs."""
    names = ("true_masks", "stage1_masks", "reference_frame")
    result = {}
    metrics = {k: Frames() for k in names}
    for piece in pieces:
        video, mask, kp = piece["video"], piece["mask"], piece["keypoints"]
        out = stage1_pieces(mask_model, piece)
        t = min(len(out["mask"]), len(video))
        reference = Reference(video[0], mask[0], kp[0])
        true = image.condition(kp[:t], mask[:t])
        stage1 = torch.cat([(out["mask"][:t] >= 0.5).float(), out["heatmaps"][:t]], 1)
        real = video[1:t]
        for name, cond in (("true_masks", true), ("stage1_masks", stage1)):
            metrics[name].update(image.render(cond[1:], reference), real)
        metrics["reference_frame"].update(video[:1].expand_as(real), real)
    result["pieces"] = {k: v.compute() for k, v in metrics.items()}
    metrics = {k: Frames() for k in names}
    for split in HELD_OUT:
        for batch in loader(dm, split, 8, False):
            video, mask, kp = batch["video"], batch["mask"], batch["keypoints"]
            t = video.shape[1]
            true = image.condition(kp, mask)  # (B, T, C, S, S)
            out = mask_model(batch["audio"], t, kp[:, 0], mask[:, 0])
            stage1 = torch.cat([(out["mask"].sigmoid() >= 0.5).float(),
                                out["heatmaps"].sigmoid()], 2)  # fmt: skip
            # frame 0 of each window is the reference itself: frames 1 … T−1 are scored
            ref = video[:, :1].expand(-1, t - 1, -1, -1, -1).flatten(0, 1)
            ref_cond = true[:, :1].expand(-1, t - 1, -1, -1, -1).flatten(0, 1)
            real = video[:, 1:].flatten(0, 1)
            for name, cond in (("true_masks", true), ("stage1_masks", stage1)):
                metrics[name].update(image(cond[:, 1:].flatten(0, 1), ref, ref_cond)[1], real)
            metrics["reference_frame"].update(ref, real)
    result["windows"] = {k: v.compute() for k, v in metrics.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=360.0,
                        help="process CPU seconds of training of stage 1")  # fmt: skip
    parser.add_argument("--budget2", type=float, default=300.0,
                        help="process CPU seconds of training of stage 2")  # fmt: skip
    parser.add_argument("--size", type=int, default=64, help="frame side of the learning runs")
    parser.add_argument("--minutes", type=float, default=5.0, help="guitar music to render")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--clip", type=int, default=8, help="frames per training clip")
    parser.add_argument("--no-speed", action="store_true", help="skip the generation speed")
    args = parser.parse_args()
    torch.manual_seed(0)
    # learning runs on one thread: on a shared, loaded machine two threads spin-wait for each
    # other and burn the process-CPU budget (measured: ~4x the CPU seconds per step)
    torch.set_num_threads(1)
    data = build_data(args.data or user_cache_dir() / "bench" / f"guitar-{args.minutes:g}min",
                      args.minutes)  # fmt: skip
    size, clip = args.size, args.clip
    batch2 = max(1, 32 // clip)  # stage 2: 32 frames a step, each made on its own
    dm = AudioVisualDataModule(str(data), streams=["audio", "video", "mask", "keypoints"],
                               image_size=size, clip_frames=clip, clip_stride=4,
                               eval_stride=clip, select={"instrument": ["guitar"]})  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    pieces = held_out_pieces(dm)
    train_files = performances(dm, "train")

    stage1_config = dict(audio_dim=64, code_dim=64, base=16, depth=3, audio_skips=True,
                         w_pose=1.0, d_base=16, d_layers=3, window=clip)  # fmt: skip
    mask_model = AudioToMaskGAN(image_size=size, **stage1_config)  # type: ignore[arg-type]
    masks = [np.load(p.arrays["mask"], mmap_mode="r") for p in train_files]
    mean = torch.from_numpy(np.concatenate([m[::5] for m in masks]).mean(0)).float()
    mean_mask = (mean >= 0.5).float()[None, None]
    stage1_data = RandomReferences(loader(dm, "train", 4, True), train_files)
    stage1_train = train(mask_model, stage1_data, args.budget, 1e-3, 2e-4)
    cpu0 = time.process_time()
    stage1 = eval_stage1(mask_model, dm, mean_mask, pieces)
    print("stage 1", stage1_train, stage1, f"eval {time.process_time() - cpu0:.0f} CPU-s",
          flush=True)  # fmt: skip

    stage2_config = dict(base=16, depth=3, refine_base=16, refine_depth=2, residual=True,
                         change_margin=0.03, d_base=32, w_adv=0.1)  # fmt: skip
    image_model = MaskToImageGAN(image_size=size, **stage2_config)  # type: ignore[arg-type]
    stage2_train = train(image_model, loader(dm, "train", batch2, True), args.budget2, 5e-4, 2e-4)
    cpu0 = time.process_time()
    stage2 = eval_stage2(image_model, mask_model, dm, pieces)
    print("stage 2", stage2_train, stage2, f"eval {time.process_time() - cpu0:.0f} CPU-s",
          flush=True)  # fmt: skip

    speed: dict[str, Any] = {}
    if not args.no_speed:
        # generation speed at 128x128 (the same designs, fresh weights: speed does not depend
        # on them): 10 s of a test piece's music through both stages, 2 threads
        torch.set_num_threads(2)
        wave = pieces[-1]["audio"][: 10 * 16000]
        fast1 = AudioToMaskGAN(image_size=128, **stage1_config).eval()  # type: ignore[arg-type]
        fast2 = MaskToImageGAN(image_size=128, **stage2_config).eval()  # type: ignore[arg-type]
        ref = Reference(fast2.reference_frame, fast2.reference_mask, fast2.reference_keypoints)
        render_guitarist(wave[:16000], fast1, fast2, ref)  # warm-up
        load = load_average()
        start = time.perf_counter()
        render = render_guitarist(wave, fast1, fast2, ref)
        seconds = time.perf_counter() - start
        speed = {"generation_fps_both_stages_128px": round(len(render.masks) / seconds, 2),
                 "generation_frames": len(render.masks),
                 "load_average_before_speed": load}  # fmt: skip

    write_result(
        "guitarist",
        "learning",
        {
            "data": "audiovis studio build --instruments guitar --styles --minutes "
            f"{args.minutes:g}",
            "train_performances": len(train_files),
            "held_out_performances": [p.meta.name for s in HELD_OUT for p in performances(dm, s)],
            "held_out_frames": sum(len(p["mask"]) for p in pieces),
            "budget_process_cpu_seconds_stage1": args.budget,
            "budget_process_cpu_seconds_stage2": args.budget2,
            "stage1_reference": "a random frame of the clip's own performance",
            "threads_learning": 1,
            "threads_generation": 2,
            "image_size_learning": size,
            "image_size_generation": 128,
            "train_clip_frames": clip,
            "batch_size_stage1": 4,
            "batch_size_stage2": batch2,
            "stage1": stage1_config,
            "stage2": stage2_config,
        },  # fmt: skip
        {
            "stage1_training": stage1_train,
            "stage1_mask_iou": stage1,
            "stage2_training": stage2_train,
            "stage2_frames": stage2,
            **speed,
        },
    )


if __name__ == "__main__":
    main()
