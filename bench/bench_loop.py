"""The closed loop (issue 10): music → APVG's generated piano video → Audeo → music, on the
held-out studio piano pieces, against Audeo on the studio's own rendering (the ceiling).

    python -m bench.bench_loop train [--budget 1100] [--khp-budget 250]   # APVG, CPU budget
    python -m bench.bench_loop loop [--apvg CKPT] [--video2roll CKPT] [--roll2midi CKPT]
                                    [--scenes studio|reference]

1. Data: the Audeo benchmark's piano studio set (``bench-audeo-piano-4min`` in the user cache,
   built by ``bench/bench_audeo.py``): 10 train pieces, one val and one test piece. Neither
   APVG nor Audeo trains on the val/test pieces, so both are held out for the loop.
2. ``train``: ``lightning fit --config experiments/apvg.yaml --config
   experiments/apvg_piano.yaml`` on that root, in this process on one thread, stopped after
   ``--budget`` process CPU seconds (``audiovis.callbacks.CPUBudget``; loader workers off so
   every cycle is counted; no validation, the held-out pieces are the loop's). The checkpoint
   is ``<cache>/bench-loop/apvg_piano/checkpoints/last.ckpt``.
3. ``loop``: ``audiovis loop --midi notes.mid`` for each held-out piece (its score, rendered
   to audio by the studio's synth as the dataset was), with the Audeo checkpoints of the zoo
   (``<cache>/zoo/audeo_video2roll.ckpt``, ``audeo_roll2midi.ckpt``), and writes
   bench/results/loop_closed.json: per piece and pooled over the pieces, note-onset P/R/F1
   (mir_eval, 50 ms) and frame F1 of the loop and of the ceiling at each stage (Video2Roll
   thresholded, Roll2Midi), and the keys read straight off the generated frames' pixels
   (APVG's own accuracy, without Audeo). Two more stages split the loss between the parts:
   ``key_head`` (the keys APVG's key-press head decides from the whole piece's audio, as it
   draws them: what a perfect renderer could show) and ``painted_truth`` (Audeo + Roll2Midi
   on APVG's first frame with the *true* roll painted by APVG's key paint: a perfect
   key head with the hands held still, what the renderer and Audeo's reading of it allow).
4. Scenes: each piece is played in each studio performer's scene in turn (their empty
   keyboard as APVG's first frame, ``audiovis loop --first-frame studio --performer N``),
   the ceiling in the same look, so loop and ceiling differ in nothing but who drew the
   video; figures are pooled over scenes and pieces, and given per scene. With ``--scenes
   reference`` APVG plays in its reference frame (a frame of its training videos) and the
   ceiling is the studio's video in the performer look of that framing (the figures before
   the scenes existed). One more stage in the studio's scenes: ``still_hands_truth``, Audeo
   on the studio's own pixel-exact keys of the piece with the performer's hands held at rest
   (as on the empty keyboard): how much of what Audeo reads comes from hands that move to
   the keys.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.common import write_result

REPO = Path(__file__).resolve().parent.parent
DATA = "bench-audeo-piano-4min"
SHARED = "2 CPU cores shared with the lead's and other helpers' jobs"


def cache() -> Path:
    from audiovis.data.cache import user_cache_dir

    return user_cache_dir()


def load() -> str:
    return " ".join(f"{v}" for v in Path("/proc/loadavg").read_text().split()[:3])


def train(budget: float, out: Path, overrides: list[str],
          first_stage: dict[str, Any] | None = None) -> bool:  # fmt: skip
    """Train within ``budget``; True when the trained APVG has a key-press head."""
    import torch

    from audiovis.cli import run_lightning

    torch.set_num_threads(1)
    root = cache() / DATA
    if not (root / "manifest.json").is_file():
        raise SystemExit(f"{root}: missing; build it with `python -m bench.bench_audeo`")
    load_before = load()
    start, wall = time.process_time(), time.perf_counter()
    cli = run_lightning([
        "fit", "--config", str(REPO / "experiments/apvg.yaml"),
        "--config", str(REPO / "experiments/apvg_piano.yaml"),
        "--data.root", str(root), "--data.num_workers", "0",
        "--trainer.default_root_dir", str(out), "--trainer.max_epochs", "1000",
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.callbacks+=audiovis.callbacks.CPUBudget",
        f"--trainer.callbacks.seconds={budget}", *overrides,
    ])  # fmt: skip
    trainer = cli.trainer
    last = out / "checkpoints" / "last.ckpt"
    if not last.is_file():  # a budget stop mid-epoch with no validation: save it here
        trainer.save_checkpoint(last)
    record = {
        "cpu_budget_s": budget,
        "overrides": overrides,
        "cpu_seconds": round(time.process_time() - start, 1),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "epochs": trainer.current_epoch,
        "optimizer_steps": trainer.global_step,
        "load_average_before": load_before,
        "load_average_after": load(),
        "threads": torch.get_num_threads(),
        "metrics": {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()},
        "checkpoint": str(out / "checkpoints" / "last.ckpt"),
    }
    if first_stage is not None:
        record["first_stage"] = first_stage
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return cli.model.generator.keys is not None


def held_out(root: Path) -> list[Path]:
    from audiovis.data.schema import read_manifest

    return [root / p["name"] for p in read_manifest(root).performances
            if p["split"] in ("val", "test") and p["instrument"] == "piano"]  # fmt: skip


def pooled(reports: list[dict[str, Any]], part: str, stage: str) -> dict[str, float] | None:
    """Note-onset and frame scores pooled over pieces (matches and counts summed)."""
    rows = [r[part][stage] for r in reports if r.get(part) and r[part].get(stage)]
    if not rows:
        return None
    m = sum(r["onset_matches"] for r in rows)
    ref = sum(r["reference_notes"] for r in rows)
    est = sum(r["estimated_notes"] for r in rows)
    tp, fp, fn = (sum(r[f"frame_{k}"] for r in rows) for k in ("tp", "fp", "fn"))
    p, r_ = (m / est if est else 0.0), (m / ref if ref else 0.0)
    fp_ = tp / (tp + fp) if tp + fp else 0.0
    fr = tp / (tp + fn) if tp + fn else 0.0
    return {
        "onset_precision": round(p, 4),
        "onset_recall": round(r_, 4),
        "onset_f1": round(2 * m / (ref + est) if ref + est else 0.0, 4),
        "frame_precision": round(fp_, 4),
        "frame_recall": round(fr, 4),
        "frame_f1": round(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0, 4),
        "reference_notes": ref,
        "estimated_notes": est,
    }


def stage_bounds(apvg: Path, video2roll: Path, roll2midi: Path, pieces: list[Path],
                 scenes: list[int | None]) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Per piece, the scores of the ``key_head`` stage, and per scene and piece (scene by
    scene) those of ``painted_truth`` and, in the studio's scenes, ``still_hands_truth`` (see
    above)."""
    import numpy as np
    import soundfile as sf
    import torch

    from audiovis.audio import frames_to_video_rate
    from audiovis.media import to_uint8
    from audiovis.models.audeo import load_roll2midi, load_video2roll
    from audiovis.tools.loop import (
        first_frame,
        load_apvg,
        piano_score,
        reference_notes,
        stage_scores,
        transcribe_video,
    )

    model = load_apvg(apvg).eval()
    if model.generator.keys is None:
        return {}
    v2r = load_video2roll(video2roll)
    r2m = load_roll2midi(roll2midi, v2r)
    keys, fps = (v2r.key_offset, v2r.key_offset + v2r.num_keys), model.fps
    rows: dict[str, list[dict[str, Any]]] = {"key_head": [], "painted_truth": []}
    if scenes[0] is not None:
        rows["still_hands_truth"] = []
    for performer in scenes:
        scene = first_frame(None if performer is None else "studio", performer, model)
        first = model.reference_frame if scene.frame is None else scene.frame
        first_keys = model.reference_keys if scene.keys is None else scene.keys
        for folder in pieces:
            truth = np.load(folder / "roll.npy")
            reference = reference_notes(piano_score(folder / "notes.mid"), keys, fps, len(truth))
            with torch.no_grad():
                if performer == scenes[0]:  # the head's keys: the same in every scene
                    wave, _ = sf.read(folder / "audio.flac", dtype="float32")
                    feats = model.frontend(torch.from_numpy(wave)[None])
                    feats = frames_to_video_rate(feats, len(truth))
                    drawn = model.drawn_keys(feats)[1][0].numpy()  # binary with key_threshold
                    rows["key_head"].append(stage_scores(reference, truth, drawn, fps, keys))
                painted = model.paint_keys(first[None], torch.from_numpy(truth)[None],
                                           first_keys[None])[0]  # fmt: skip
            read = transcribe_video(to_uint8(painted), v2r, r2m, "painted truth",
                                    say=lambda _: None)  # fmt: skip
            rows["painted_truth"].append(stage_scores(reference, truth, read["roll"], fps, keys))
            if performer is not None:
                still = still_hands(folder, performer, model.image_size, fps, len(truth))
                read = transcribe_video(still, v2r, r2m, "still hands", say=lambda _: None)
                rows["still_hands_truth"].append(
                    stage_scores(reference, truth, read["roll"], fps, keys)
                )
    return rows


def still_hands(folder: Path, performer: int, size: int, fps: float, num_frames: int) -> Any:
    """(T, H, W, 3) uint8: the studio's own keys of the piece, every pixel as the studio draws
    it, with the performer's hands held at rest (as on the empty keyboard) instead of playing."""
    import numpy as np

    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.tools.loop import piano_score, studio_scene

    score = piano_score(folder / "notes.mid")
    frames = PianoRig().render(score, np.zeros(num_frames), Look.performer_look(performer), size,
                               fps, num_frames, hands=False).frames  # fmt: skip
    rest = studio_scene(performer, size, fps)
    hands = rest.mask[0] > 0
    frames[:, hands] = rest.frames[0][hands]
    return frames


def loop(apvg: Path, video2roll: Path, roll2midi: Path, out: Path, final: bool,
         tag: str = "", scenes: str = "studio") -> None:  # fmt: skip
    import torch

    from audiovis.data.studio.rigs.base import NUM_PERFORMERS
    from audiovis.tools.loop import main as loop_main

    torch.set_num_threads(1)
    for path in (apvg, video2roll, roll2midi):
        if not path.is_file():
            raise SystemExit(f"{path}: missing (train APVG with `python -m bench.bench_loop "
                             "train`; the Audeo checkpoints come from the zoo)")  # fmt: skip
    root = cache() / DATA
    pieces = held_out(root)
    performers: list[int | None] = list(range(NUM_PERFORMERS)) if scenes == "studio" else [None]
    reports: dict[str, dict[str, Any]] = {}  # "<scene>/<piece>" -> report
    wall, start = time.perf_counter(), time.process_time()
    load_before = load()
    for performer in performers:
        scene = "reference" if performer is None else f"p{performer}"
        for folder in pieces:
            target = out / folder.name if performer is None else out / scene / folder.name
            argv = ["--midi", str(folder / "notes.mid"), "--apvg", str(apvg),
                    "--video2roll", str(video2roll), "--roll2midi", str(roll2midi),
                    "--out", str(target), "--quiet"]  # fmt: skip
            if performer is not None:
                argv += ["--first-frame", "studio", "--performer", str(performer)]
            status = loop_main(argv)
            if status:
                raise SystemExit(status)
            reports[f"{scene}/{folder.name}"] = json.loads((target / "report.json").read_text())
    every = list(reports.values())
    figures: dict[str, Any] = {"held_out_pieces": [p.name for p in pieces],
                               "scenes": sorted({k.split("/")[0] for k in reports})}  # fmt: skip
    for part in ("loop", "ceiling"):
        figures[part] = {s: pooled(every, part, s) for s in ("video2roll", "roll2midi")}
    figures["generated_keys_by_pixels"] = pooled(every, "apvg", "keys_by_pixels")
    figures["ground_truth_roll"] = pooled(every, "reference", "roll")
    bounds = stage_bounds(apvg, video2roll, roll2midi, pieces, performers)
    for stage, rows in bounds.items():
        figures[stage] = pooled([{"s": {"s": row}} for row in rows], "s", "s")
    loop_f1 = figures["loop"]["roll2midi"]["onset_f1"]
    ceiling_f1 = figures["ceiling"]["roll2midi"]["onset_f1"]
    figures["target"] = {
        "loop_onset_f1_at_least_0.8": loop_f1 >= 0.8,
        "within_0.1_of_ceiling": ceiling_f1 - loop_f1 <= 0.1,
        "gap_to_ceiling": round(ceiling_f1 - loop_f1, 4),
    }
    figures["per_scene"], figures["per_piece"] = {}, {}
    for i, (name, report) in enumerate(reports.items()):
        stages = {"apvg_keys_by_pixels": report["apvg"]["keys_by_pixels"]}
        if bounds:
            stages["key_head"] = bounds["key_head"][i % len(pieces)]
            for stage in ("painted_truth", "still_hands_truth"):
                if stage in bounds:
                    stages[stage] = bounds[stage][i]
        for part in ("loop", "ceiling"):
            stages.update({f"{part}_{s}": report[part][s] for s in ("video2roll", "roll2midi")})
        figures["per_piece"][name if len(performers) > 1 else name.split("/")[1]] = {
            stage: {k: v[k] for k in ("onset_precision", "onset_recall", "onset_f1", "frame_f1")}
            for stage, v in stages.items()
        }
    if len(performers) > 1:
        n = len(pieces)
        for j, scene in enumerate(figures["scenes"]):
            mine = [r for k, r in reports.items() if k.startswith(f"{scene}/")]
            figures["per_scene"][scene] = {
                "loop": pooled(mine, "loop", "roll2midi"),
                "ceiling": pooled(mine, "ceiling", "roll2midi"),
            }
            for stage in ("painted_truth", "still_hands_truth"):
                if stage in bounds:
                    part = [{"s": {"s": row}} for row in bounds[stage][j * n : (j + 1) * n]]
                    figures["per_scene"][scene][stage] = pooled(part, "s", "s")
    else:
        del figures["per_scene"]
    figures["cpu_seconds"] = round(time.process_time() - start, 1)
    figures["wall_seconds"] = round(time.perf_counter() - wall, 1)
    figures["load_average"] = {"before": load_before, "after": load()}
    training = apvg.parent.parent / "training.json"
    config: dict[str, Any] = {
        "data": str(root),
        "apvg": str(apvg),
        "apvg_training": json.loads(training.read_text()) if training.is_file() else None,
        "video2roll": str(video2roll),
        "roll2midi": str(roll2midi),
        "audeo_checkpoints": "final (the Audeo helper's zoo)"
        if final
        else "DEVELOPMENT ONLY: not the zoo's Audeo checkpoints",
        "apvg_config": "experiments/apvg.yaml + experiments/apvg_piano.yaml",
        "scenes": "each studio performer's empty keyboard as APVG's first frame, the ceiling "
        "in the same performer's look"
        if scenes == "studio"
        else "APVG's reference frame; the ceiling in the studio performer of its framing",
        "note_onset_tolerance_s": 0.05,
        "threads": 1,
        "shared_machine": SHARED,
    }
    zoo = cache() / "zoo" / "audeo.json"
    if zoo.is_file():
        config["audeo_zoo"] = json.loads(zoo.read_text())
    what = ("closed" if final else "closed_dev") + (f"_{tag}" if tag else "")
    write_result("loop", what, config, figures)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what")
    t = sub.add_parser("train", help="train APVG on the piano pieces within a CPU budget")
    t.add_argument("--budget", type=float, default=1100.0, help="process CPU seconds")
    t.add_argument("--out", type=Path, help="run folder (default <cache>/bench-loop/apvg_piano)")
    t.add_argument("--override", action="append", default=[], metavar="ARG",
                   help="an extra `lightning fit` argument over the piano config, e.g. "
                   "--override=--model.init_args.w_change=20 (repeatable)")  # fmt: skip
    t.add_argument("--khp-budget", type=float, default=0.0,
                   help="CPU seconds of --budget for the KHP stage first (with key_presses "
                   "the key-press head trains there too); 0: all stages jointly")  # fmt: skip
    lp = sub.add_parser("loop", help="run the loop on the held-out pieces")
    lp.add_argument("--apvg", type=Path, help="APVG checkpoint (default: the train step's)")
    lp.add_argument("--video2roll", type=Path, help="default <cache>/zoo/audeo_video2roll.ckpt")
    lp.add_argument("--roll2midi", type=Path, help="default <cache>/zoo/audeo_roll2midi.ckpt")
    lp.add_argument("--out", type=Path, help="outputs (default <cache>/bench-loop/outputs)")
    lp.add_argument("--tag", default="", help="suffix of the results file (a variant's name)")
    lp.add_argument("--scenes", choices=("studio", "reference"), default="studio",
                    help="studio (default): APVG plays in each studio performer's empty "
                    "keyboard in turn, the ceiling in the same look; reference: in its reference "
                    "frame (the ceiling in the studio look of its framing)")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    base = cache() / "bench-loop"
    if args.what == "train":
        out = args.out or base / "apvg_piano"
        if not args.khp_budget:
            train(args.budget, out, args.override)
            return
        # the paper's first stage: the KHP (and the key-press head) alone, then all jointly
        if not 0 < args.khp_budget < args.budget:
            raise SystemExit(f"--khp-budget {args.khp_budget}: must lie in (0, --budget)")
        keys = train(args.khp_budget, out / "khp",
                     [*args.override, "--model.init_args.stage=khp"])  # fmt: skip
        first = out / "khp" / "checkpoints" / "last.ckpt"
        init = f"{{khp: {first}" + (f", keys: {first}}}" if keys else "}")
        record = json.loads((out / "khp" / "training.json").read_text())
        train(args.budget - args.khp_budget, out,
              [*args.override, f"--model.init_args.init_from={init}"], record)  # fmt: skip
    elif args.what == "loop":
        zoo = cache() / "zoo"
        v2r = args.video2roll or zoo / "audeo_video2roll.ckpt"
        r2m = args.roll2midi or zoo / "audeo_roll2midi.ckpt"
        final = v2r == zoo / "audeo_video2roll.ckpt" and r2m == zoo / "audeo_roll2midi.ckpt"
        apvg = args.apvg or base / "apvg_piano" / "checkpoints" / "last.ckpt"
        loop(apvg, v2r, r2m, args.out or base / "outputs", final, args.tag, args.scenes)
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
