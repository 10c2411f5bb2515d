"""Studio speed and memory: build the default dataset (every instrument and dance style,
>= 10 minutes of music, 128x128, 25 fps) with a cold and a warm score cache, and measure the
seconds of performance rendered per second of compute for each rig.

    python -m bench.bench_studio [--minutes 10] [--size 128] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from audiovis.data.schema import read_manifest
from audiovis.data.studio import StudioConfig, build, plan
from audiovis.data.studio.builder import load_score, make_rig
from audiovis.data.studio.rigs.base import Look
from audiovis.data.studio.synth import frame_loudness, render_audio
from bench.common import write_result


def peak_rss_gb() -> float:
    """Peak resident memory of this process and of its finished children, GB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024**2, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # a private score cache: the first build converts every score with music21 (cold)
        os.environ["AUDIOVIS_CACHE"] = str(Path(tmp) / "cache")
        config = StudioConfig(minutes=args.minutes, size=args.size)
        for run in ("cold", "warm"):
            root = Path(tmp) / f"data_{run}"
            start = time.perf_counter()
            build(root, config, workers=args.workers, progress=False)
            seconds = time.perf_counter() - start
            manifest = read_manifest(root)
            music = sum(p["duration"] for p in manifest.performances)
            figures[f"build_{run}_seconds"] = round(seconds, 1)
            figures[f"build_{run}_music_minutes"] = round(music / 60, 2)
        figures["performances"] = len(manifest.performances)
        figures["peak_memory_gb"] = peak_rss_gb()

        # per rig, one process: render only (scores and audio are prepared first)
        per_rig: dict[str, float] = {}
        seen: set[str] = set()
        for job in plan(config):
            if job.category in seen:
                continue
            seen.add(job.category)
            score = load_score(job, config)
            audio = render_audio(
                score, job.category if job.category != "dance" else "piano", config.sample_rate
            )
            frames = int(len(audio) * config.fps / config.sample_rate)
            loudness = frame_loudness(audio, config.sample_rate, config.fps, frames)
            rig = make_rig(job.category)
            start = time.perf_counter()
            rig.render(
                score, loudness, Look.performer_look(0), args.size, config.fps, frames, job.style
            )
            per_rig[job.category] = round(frames / config.fps / (time.perf_counter() - start), 1)
        figures["rendered_seconds_per_second_per_rig"] = per_rig
    write_result("studio", "build", vars(args), figures)


if __name__ == "__main__":
    main()
