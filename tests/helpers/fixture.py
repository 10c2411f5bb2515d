"""Generate a small fixture dataset in the on-disk format, with a learnable audio → image link.

Each performance is a sequence of tones; a bright square's height in the frame follows the
tone's pitch, its mask and keypoints follow the square, the roll holds the key sounding.

    python -m tests.helpers.fixture OUT_DIR [--performances 6] [--seconds 2] [--size 32]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from audiovis.data.schema import PerformanceMeta, write_manifest, write_performance
from audiovis.skeleton import NUM_KEYPOINTS

INSTRUMENTS = ("cello", "piano")
PITCHES = np.arange(48, 72)  # MIDI C3 … B4


def make_performance(
    rng: np.random.Generator,
    name: str,
    seconds: float,
    size: int,
    fps: float,
    sample_rate: int,
    instrument: str,
) -> tuple[PerformanceMeta, dict[str, np.ndarray], np.ndarray]:
    frames = int(round(seconds * fps))
    per_frame = sample_rate / fps
    note_frames = 5  # a new note every 5 frames
    notes = rng.choice(PITCHES, size=-(-frames // note_frames))
    pitch = np.repeat(notes, note_frames)[:frames]  # (T,)
    t = np.arange(int(round(frames * per_frame))) / sample_rate
    freq = 440.0 * 2 ** ((np.repeat(pitch, int(per_frame))[: len(t)] - 69) / 12)
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    audio = (0.5 * np.sin(phase)).astype(np.float32)

    height = (pitch - PITCHES[0]) / (len(PITCHES) - 1)  # 0 … 1, high notes at the top
    video = np.full((frames, size, size, 3), 20, np.uint8)
    mask = np.zeros((frames, size, size), np.uint8)
    side = max(2, size // 4)
    for i, h in enumerate(height):
        top = int(round((1 - h) * (size - side)))
        left = (size - side) // 2
        video[i, top : top + side, left : left + side] = (230, 180, 40)
        mask[i, top : top + side, left : left + side] = 1
    keypoints = np.zeros((frames, NUM_KEYPOINTS, 3), np.float32)
    keypoints[..., 0] = 0.5 + 0.1 * np.sin(np.arange(NUM_KEYPOINTS))[None]
    keypoints[..., 1] = (1 - height)[:, None] * 0.75 + 0.125
    keypoints[..., 2] = 1.0
    roll = np.zeros((frames, 88), np.uint8)
    roll[np.arange(frames), pitch - 21] = 1
    pose3d = np.cumsum(rng.normal(0, 0.01, (frames, 23, 3)), axis=0).astype(np.float32)
    meta = PerformanceMeta(
        name=name,
        fps=fps,
        sample_rate=sample_rate,
        num_frames=frames,
        size=(size, size),
        streams=["instrument", "performer", "style"],
        instrument=instrument,
        # a stable label (str hashes change between runs): pairs of performances alternate
        performer=f"p{sum(map(ord, name)) // 2 % 2}",
        style="none",
        piece=name,
        source="tests fixture",
        licence="CC0",
    )
    arrays = {"video": video, "mask": mask, "keypoints": keypoints, "roll": roll, "pose3d": pose3d}
    return meta, arrays, audio


def make_fixture(
    root: str | Path,
    performances: int = 6,
    seconds: float = 2.0,
    size: int = 32,
    fps: float = 25.0,
    sample_rate: int = 8000,
    seed: int = 0,
) -> Path:
    """Write ``performances`` performances (4 train, then val and test alternating)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    entries = []
    for i in range(performances):
        split = "train" if i < performances - 2 else ("val" if i % 2 == 0 else "test")
        meta, arrays, audio = make_performance(
            rng, f"perf{i:02d}", seconds, size, fps, sample_rate, INSTRUMENTS[i % 2]
        )
        write_performance(root, meta, arrays, audio)
        entries.append((meta, split))
    write_manifest(root, entries, name="fixture")
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--performances", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    print(make_fixture(args.out, args.performances, args.seconds, args.size))
