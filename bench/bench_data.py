"""Data loading throughput (clips/s) of the DataModule against one training step of a
ResNet-18-size network on the same clips: is the loader ever the bottleneck?

    python bench/bench_data.py [--performances 8] [--seconds 10] [--size 128] [--clip 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from audiovis.data import AudioVisualDataModule
from audiovis.data.schema import PerformanceMeta, write_manifest, write_performance
from audiovis.skeleton import NUM_KEYPOINTS
from bench.common import write_result


def make_dataset(
    root: Path, performances: int, seconds: float, size: int, fps: float, sample_rate: int
) -> None:
    rng = np.random.default_rng(0)
    entries = []
    for i in range(performances):
        t = int(seconds * fps)
        meta = PerformanceMeta(
            name=f"p{i}",
            fps=fps,
            sample_rate=sample_rate,
            num_frames=t,
            size=(size, size),
            streams=[],
        )
        arrays: dict[str, np.ndarray] = {
            "video": rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8),
            "keypoints": rng.random((t, NUM_KEYPOINTS, 3), dtype=np.float32),
        }
        audio = (0.1 * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32)
        write_performance(root, meta, arrays, audio)
        entries.append((meta, "train"))
    write_manifest(root, entries)


def loader_rate(dm: AudioVisualDataModule, max_batches: int) -> float:
    loader = dm.train_dataloader()
    clips, start = 0, time.perf_counter()
    for i, batch in enumerate(loader):
        clips += len(batch["video"])
        if i + 1 >= max_batches:
            break
    return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--performances", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--clip", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    fps, sr = 25.0, 16000
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        make_dataset(root, args.performances, args.seconds, args.size, fps, sr)
        for workers in (0, 2):
            dm = AudioVisualDataModule(
                str(root),
                streams=["audio", "video", "keypoints"],
                fps=fps,
                sample_rate=sr,
                clip_frames=args.clip,
                image_size=args.size,
                batch_size=args.batch,
                num_workers=workers,
            )
            dm.prepare_data()
            dm.setup("fit")
            figures[f"loader_clips_per_s_workers{workers}"] = round(
                loader_rate(dm, args.batches), 1
            )

        # one optimizer step of a ResNet-18 over every frame of a batch of clips
        net = torchvision.models.resnet18(num_classes=NUM_KEYPOINTS * 2)
        opt = torch.optim.Adam(net.parameters(), 1e-4)
        frames = torch.randn(args.batch * args.clip, 3, args.size, args.size)
        target = torch.randn(args.batch * args.clip, NUM_KEYPOINTS * 2)
        steps = []
        for _ in range(4):
            start = time.perf_counter()
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(frames), target).backward()
            opt.step()
            steps.append(time.perf_counter() - start)
        step = sorted(steps[1:])[1]
        figures["resnet18_step_clips_per_s"] = round(args.batch / step, 2)
        figures["loader_over_model_ratio"] = round(
            figures["loader_clips_per_s_workers0"] / figures["resnet18_step_clips_per_s"], 1
        )
    write_result("data", "loading", vars(args), figures)


if __name__ == "__main__":
    main()
