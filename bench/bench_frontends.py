"""Audio front-end speed: nnAudio CQT against librosa's CQT on the same batch, plus log-mel,
chroma and onset envelope; CPU always, the GPU too when there is one.

    python bench/bench_frontends.py [--batch 16] [--seconds 4] [--sample-rate 22050]
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
import torch

from audiovis.audio import CQT, Chroma, LogMel, OnsetEnvelope
from bench.common import timeit, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--hop", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    sr, hop = args.sample_rate, args.hop
    audio = torch.randn(args.batch, int(args.seconds * sr)) * 0.1
    audio_seconds = args.batch * args.seconds
    figures: dict[str, dict[str, float]] = {}

    def record(name: str, seconds: float) -> None:
        figures[name] = {
            "ms_per_batch": round(1000 * seconds, 2),
            "audio_seconds_per_second": round(audio_seconds / seconds, 1),
        }

    frontends = {
        "cqt_nnaudio": CQT(sr, hop, n_bins=84),
        "logmel": LogMel(sr, 1024, hop, 80),
        "chroma": Chroma(sr, 2048, hop),
        "onset": OnsetEnvelope(sr, 1024, hop),
    }
    with torch.no_grad():
        for name, module in frontends.items():
            record(f"{name}_cpu", timeit(partial(module, audio)))
        if torch.cuda.is_available():
            gpu_audio = audio.cuda()
            for name, module in frontends.items():
                module = module.cuda()

                def run(m: torch.nn.Module = module) -> None:
                    m(gpu_audio)
                    torch.cuda.synchronize()

                record(f"{name}_gpu", timeit(run, repeat=20, warmup=3))

    import librosa

    batch = audio.numpy().astype(np.float32)

    def librosa_cqt() -> None:
        for wave in batch:  # librosa has no batch axis worth the name: one clip at a time
            librosa.cqt(wave, sr=sr, hop_length=hop, n_bins=84, fmin=32.70)

    record("cqt_librosa_cpu", timeit(librosa_cqt, repeat=3, warmup=1))
    ours, theirs = figures["cqt_nnaudio_cpu"], figures["cqt_librosa_cpu"]
    figures["cqt_speedup_nnaudio_over_librosa_cpu"] = {
        "times": round(theirs["ms_per_batch"] / ours["ms_per_batch"], 2)
    }
    write_result("audio", "frontends", vars(args), figures)


if __name__ == "__main__":
    main()
