"""Importer speed: seconds of video prepared per second by `audiovis prepare` on 2 worker
processes, without and with the pose estimator (mediapipe), at 256x256 and 25 fps; and how
close the keypoints of studio performances round-tripped through an .mp4 come back.

The input is the sports2d demo (a real outdoor video: 7.7 s, 1768x994, 30 fps, VP9) with
music21's real 20 s recording muxed in as its sound (the demo's own track is silent), copied
once per worker. Targets (issue 9): faster than real time without the estimator, at least half
real time with it. The machine is shared: wall-clock figures are recorded with the load
average, and the CPU seconds of the workers give the rate on 2 idle cores.

    python -m bench.bench_prepare [--workers 2] [--copies 2] [--size 256]
"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import os
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from audiovis.data.importers.video import (
    NoPersonFound,
    PrepareConfig,
    mux_audio,
    pose_available,
    prepare,
)
from audiovis.data.schema import read_meta
from bench.common import write_result


def demo_video(out: Path) -> Path:
    import soundfile as sf

    spec = importlib.util.find_spec("Sports2D")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the demo: pip install --no-deps sports2d==0.8.34")
    video = Path(next(iter(spec.submodule_search_locations))) / "Demo" / "demo.mp4"
    wav = importlib.resources.files("music21") / "audioSearch" / "test_audio.wav"
    audio, rate = sf.read(str(wav), dtype="float32")
    return mux_audio(video, audio, int(rate), out)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(folder: Path, root: Path, config: PrepareConfig, workers: int) -> dict[str, float]:
    shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    cpu0, own0, start = children_cpu(), time.process_time(), time.perf_counter()
    report = prepare(folder, root, config, workers=workers, progress=False)
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu0 + time.process_time() - own0
    assert not report.failed, report.failed
    seconds = sum(read_meta(root / n).duration for n in report.imported)
    return {
        "video_seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "realtime_wall": round(seconds / wall, 3),
        "realtime_on_2_idle_cores": round(seconds / (cpu / 2), 3),
        "load_average_before": round(load, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def studio_round_trip(tmp: Path, size: int) -> dict[str, dict[str, float]]:
    """Studio performances → .mp4 → prepare: distance of the body keypoints to the studio's."""
    from audiovis.data.importers.video import prepare_video
    from audiovis.data.studio import StudioConfig, plan, render_job
    from audiovis.media import read_audio, write_video

    out: dict[str, dict[str, float]] = {}
    for instrument, style in (("cello", None), ("piano", None), (None, "waltz"), (None, "tango")):
        studio = StudioConfig(instruments=(instrument,) if instrument else (),
                              styles=(style,) if style else (), minutes=0.2,
                              segment_seconds=8, size=size, use_corpus=False)  # fmt: skip
        meta = render_job(plan(studio)[0], studio, tmp / "studio")
        folder = tmp / "studio" / meta.name
        frames, truth = np.load(folder / "frames.npy"), np.load(folder / "keypoints.npy")
        audio, rate = read_audio(folder / "audio.flac")
        video = write_video(tmp / f"{meta.name}.mp4", frames, meta.fps, audio, rate)
        config = PrepareConfig(size=size, crop=(0, 0, size, size), pose=True)
        try:
            back = prepare_video(video, tmp / "back", config)
        except NoPersonFound:
            out[meta.name] = {"frames": meta.num_frames, "person_frames": 0.0}
            continue
        found = np.load(tmp / "back" / back.name / "keypoints.npy")
        n = min(len(found), len(truth))
        both = (truth[:n, :25, 2] > 0.5) & (found[:n, :25, 2] > 0.5)
        dist = np.linalg.norm(truth[:n, :25, :2] - found[:n, :25, :2], axis=-1)
        hands = (truth[:n, 25:, 2] > 0.5) & (found[:n, 25:, 2] > 0.3)
        mask = np.load(tmp / "back" / back.name / "mask.npy")[:n].astype(bool)
        studio_mask = np.load(folder / "mask.npy")[:n].astype(bool)
        out[meta.name] = {
            "frames": n,
            "person_frames": back.extra["person_frames"],
            "body_points_compared": round(float(both.mean()), 3),
            "body_distance_mean": round(float(dist[both].mean()), 4),
            "body_distance_median": round(float(np.median(dist[both])), 4),
            "worst_joint_mean": round(
                float(max(dist[:, j][both[:, j]].mean() for j in range(25) if both[:, j].any())),
                4,
            ),
            "hand_points_found": round(float(hands.mean()), 3),
            "mask_iou": round(float((mask & studio_mask).sum() / (mask | studio_mask).sum()), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--copies", type=int, default=2, help="copies of the demo video")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "videos"
        folder.mkdir()
        first = demo_video(folder / "demo0.mp4")
        for i in range(1, args.copies):
            shutil.copy(first, folder / f"demo{i}.mp4")
        base = PrepareConfig(size=args.size, fps=25.0)
        figures["without_pose"] = run(folder, tmp / "a", replace(base, pose=False), args.workers)
        if pose_available():
            with_pose = replace(base, pose=True)
            figures["with_pose"] = run(folder, tmp / "b", with_pose, args.workers)
            no_hands = replace(base, pose=True, hands=False)
            figures["with_pose_no_hands"] = run(folder, tmp / "c", no_hands, args.workers)
            figures["studio_round_trip"] = studio_round_trip(tmp, args.size)
        else:
            figures["with_pose"] = "mediapipe is not installed"
    write_result(
        "importers",
        "prepare",
        {
            "video": "sports2d 0.8.34 Demo/demo.mp4 (7.7 s, 1768x994, 30 fps, VP9) + music21 "
            "audioSearch/test_audio.wav as its sound",
            "copies": args.copies,
            "workers": args.workers,
            "size": args.size,
            "fps": 25.0,
            "crop": "auto",
            "cores": os.cpu_count(),
            "note": "shared 2-core machine: realtime_wall depends on the other load; "
            "realtime_on_2_idle_cores = video seconds / (worker CPU seconds / 2)",
        },
        figures,
    )


if __name__ == "__main__":
    main()
