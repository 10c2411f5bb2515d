"""Audeo: learning on held-out studio piano pieces after a fixed CPU budget, and speed.

    python -m bench.bench_audeo --keyboard-box auto --key-mix 0.5 --v2r-budget 900 \
        --r2m-budget 240 --r2m-lr 1e-3 --no-speed [--zoo]          # the zoo's recipe
    python -m bench.bench_audeo --video2roll CKPT --r2m-budget 240   # Roll2Midi alone
    python -m bench.bench_audeo --video2roll CKPT --roll2midi CKPT   # score both, no training
    python -m bench.bench_audeo --speed-only

1. Data: a piano-only studio set rendered once into the user cache
   (``audiovis studio build --out <cache>/bench-audeo-piano-<N>min --instruments piano
   --styles --minutes N``, no dancers: N minutes of 20 s pieces; the last piece is test, the
   one before val, the rest train). Its composition is shared with the closed loop (issue 10).
2. Video2Roll is trained for ``--v2r-budget`` process CPU seconds (``time.process_time`` on
   one thread; the periodic validation is counted apart) on 5-frame stacks of keyboard crops
   (precomputed once per piece, as the model's ``crops`` makes them) drawn by the balanced
   multilabel sampler, Adam with a cosine decay over the budget; ``--key-mix P``: a sample
   takes a band of keys from another frame of its piece with chance P (``key_mix``). The
   weights with the best val frame F1 are kept, and the threshold is chosen on the val piece.
3. Roll2Midi is trained for ``--r2m-budget`` CPU seconds on 100-frame windows of that
   Video2Roll's predictions on the train pieces (as ``Roll2Midi`` reads them from its cache),
   least squares 0.001 adversarial + 0.999 MSE as the original, the residual generator (it
   starts as the identity) and noise on the inputs' logits. Its threshold is chosen on val.
4. The note reading of each stage (``clean_roll``: threshold, offset threshold, merge gap,
   shortest note) is chosen on the val piece for its note-onset F1 and kept in the
   checkpoints. Scores on the held-out pieces (val + test pooled, and test alone): frame
   P/R/F1/accuracy of both stages thresholded (``*_thresholded``, the frame-F1 threshold) and
   read (``video2roll``, ``roll2midi``: what ``audiovis transcribe`` writes), and note-onset
   P/R/F1 (mir_eval, 50 ms) of the
   notes each roll gives against the pieces' score (notes.mid), with the ground-truth roll's
   own note-onset F1 as the ceiling of reading notes off a 25 fps roll.
5. ``--zoo``: both checkpoints are copied (atomically) to ``<cache>/zoo/audeo_video2roll.ckpt``
   and ``audeo_roll2midi.ckpt`` with ``audeo.json`` naming the data, held-out pieces, scores.
6. Speed: Video2Roll inference frames/s (and frames per process-CPU second, which sharing
   the machine does not change) on 1 and 2 threads at the default configuration
   (experiments/audeo_video2roll.yaml) and the original's (100 × 900, 51 keys, width 64), fp32
   and bf16 autocast; ``audiovis transcribe`` end to end on the 20 s test piece's video.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import write_result

FPS = 25.0
# experiments/audeo_video2roll.yaml's model (the default the speed target is measured at)
DEFAULT_V2R: dict[str, Any] = dict(
    key_offset=0, num_keys=88, input_size=(32, 192), width=16, head_grid=(1, 6),
    detector=(8, 2, 96), colour=True,
)  # fmt: skip
STUDIO_BOX = (0.0, 0.2, 1.0, 0.45)  # audiovis.models.audeo.STUDIO_KEYBOARD_BOX
THRESHOLDS = [round(0.05 * i, 2) for i in range(2, 19)]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build_data(minutes: float) -> Path:
    from audiovis.data.cache import user_cache_dir

    out = user_cache_dir() / f"bench-audeo-piano-{minutes:g}min"
    if not (out / "manifest.json").is_file():
        exe = Path(sys.executable).with_name("audiovis")
        subprocess.run([str(exe), "studio", "build", "--out", str(out), "--instruments",
                        "piano", "--styles", "--minutes", str(minutes)], check=True)  # fmt: skip
    return out


def load_pieces(root: Path, model: Any) -> dict[str, list[dict[str, Any]]]:
    """Each piece's keyboard crops (as ``model.crops`` makes them), roll and score notes."""
    from audiovis.data.schema import read_manifest
    from audiovis.music import midi_notes

    pieces: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for perf in read_manifest(root).performances:
        if perf["instrument"] != "piano":
            continue
        folder = root / perf["name"]
        frames = np.load(folder / "frames.npy", mmap_mode="r")
        # the model's box; "auto": located once per performance (as `audiovis transcribe`)
        sample = np.array(frames[np.linspace(0, len(frames) - 1, 32).round().astype(int)])
        box = model.box_for(torch.from_numpy(sample).permute(0, 3, 1, 2), "byte", folder)
        crops = torch.cat([
            model.crops(torch.from_numpy(np.array(frames[i : i + 250])).permute(0, 3, 1, 2),
                        box, value_range="byte").contiguous()
            for i in range(0, len(frames), 250)
        ])  # fmt: skip
        pieces[perf["split"]].append({
            "name": perf["name"], "crops": crops, "box": [round(v, 4) for v in box],
            "roll": torch.from_numpy(np.load(folder / "roll.npy").astype(np.float32)),
            "notes": midi_notes(folder / "notes.mid"),
        })  # fmt: skip
    return pieces


def frame_f1(probs: torch.Tensor, roll: torch.Tensor, threshold: float) -> float:
    pred, true = probs >= threshold, roll > 0.5
    tp, fp, fn = ((pred & true).sum(), (pred & ~true).sum(), (~pred & true).sum())
    return float(2 * tp / max(1, int(2 * tp + fp + fn)))


def best_threshold(probs: list[torch.Tensor], rolls: list[torch.Tensor]) -> tuple[float, float]:
    """The threshold with the best pooled frame F1, and that F1."""
    p, r = torch.cat(probs), torch.cat(rolls)
    scores = {t: frame_f1(p, r, t) for t in THRESHOLDS}
    best = max(scores, key=lambda t: scores[t])
    return best, scores[best]


def augment(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Per-sample brightness × [0.8, 1.2] and contrast about the mean × [0.8, 1.2], and a
    horizontal shift of up to ``shift`` pixels (edges repeated): the studio's looks vary in
    light and framing, and the keys must be read from their tint, not memorised poses.

    Shape:
        (B, C, h, w) → (B, C, h, w).
    """
    b = x.shape[0]
    gain = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=gen)
    contrast = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=gen)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean) * gain
    if shift:
        pad = F.pad(x, (shift, shift, 0, 0), mode="replicate")
        starts = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        x = torch.stack([pad[i, ..., s : s + x.shape[-1]] for i, s in enumerate(starts.tolist())])
    return x.clamp(0, 1)


def augment_looks(x: torch.Tensor, zoom: float, gen: torch.Generator) -> torch.Tensor:
    """Per-sample framing and colour of another performer look: the same zoom in
    [1 - zoom, 1 + zoom] on both axes, a shift of up to ``zoom`` of the side each way (the
    studio's looks differ by zoom 0.9-1.08 and shifts of 4 % / 3 %: a key moves by up to
    ~4 keys between looks), a gain per colour channel in [0.85, 1.15] (the same for the 5
    stacked frames), then brightness/contrast as :func:`augment`.

    Shape:
        (B, C, h, w) → (B, C, h, w) (C = 5 greyscale or 15 colour frames).
    """
    b, c = x.shape[:2]
    scale = 1 + zoom * (2 * torch.rand(b, generator=gen) - 1)
    move = 2 * zoom * (2 * torch.rand(b, 2, generator=gen) - 1)  # grid units: 2 = a side
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = 1 / scale, 1 / scale
    theta[:, :, 2] = move
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if c % 3 == 0:
        tint = 0.85 + 0.3 * torch.rand(b, 1, 3, 1, 1, generator=gen)
        x = (x.view(b, c // 3, 3, *x.shape[2:]) * tint).view_as(x)
    return augment(x, 0, gen)


def train_video2roll(model: Any, pieces: list[dict[str, Any]], val: list[dict[str, Any]],
                     budget: float, batch: int, lr: float, every: float, shift: int = -1,
                     seed: int = 0, zoom: float = 0.0,
                     mix: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """Balanced-sampler batches for ``budget`` CPU s, cosine LR, augmented unless ``shift``
    is negative, key-mixed (``key_mix``) with another frame of the same piece with
    probability ``mix``; keeps the best val weights."""
    from audiovis.models.audeo import CONTEXT, BalancedMultilabelSampler, key_mix

    crops = torch.cat([p["crops"] for p in pieces])  # (N, [3,] h, w)
    rolls = model.keys(torch.cat([p["roll"] for p in pieces]))  # (N, K)
    starts = np.cumsum([0] + [len(p["roll"]) for p in pieces])
    first = torch.from_numpy(np.repeat(starts[:-1], np.diff(starts)))  # each frame's piece
    last = torch.from_numpy(np.repeat(starts[1:] - 1, np.diff(starts)))
    sampler = BalancedMultilabelSampler(rolls.numpy(), num_samples=len(rolls), seed=seed)
    offsets = torch.arange(-CONTEXT, CONTEXT + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    used, steps, losses, curve = 0.0, 0, [], []
    best: tuple[float, dict[str, torch.Tensor] | None] = (-1.0, None)
    wall, next_eval, eval_cpu = time.perf_counter(), every, 0.0
    draws: Iterator[int] = iter(())
    gen = torch.Generator().manual_seed(seed)
    model.train()
    while used < budget:
        start = time.process_time()
        index: list[int] = []
        for _ in range(batch):
            try:
                index.append(next(draws))
            except StopIteration:
                draws = iter(sampler)
                index.append(next(draws))
        at = torch.tensor(index)
        frames = torch.minimum(torch.maximum(at[:, None] + offsets, first[at, None]),
                               last[at, None])  # fmt: skip
        x = crops[frames].flatten(1, -3)  # (B, 5 [x 3], h, w)
        y = rolls[at]
        if mix > 0:  # partners: frames of the same pieces, drawn uniformly
            span = (last[at] - first[at] + 1).float()
            other = first[at] + (torch.rand(len(at), generator=gen) * span).long()
            frames = torch.minimum(torch.maximum(other[:, None] + offsets, first[at, None]),
                                   last[at, None])  # fmt: skip
            x, y = key_mix(x, y, crops[frames].flatten(1, -3), rolls[other], mix,
                           model.key_offset, model.num_keys, gen)  # fmt: skip
        if zoom > 0:
            x = augment_looks(x, zoom, gen)
        elif shift >= 0:
            x = augment(x, shift, gen)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(used / budget, 1.0)))
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        losses.append(loss.item())
        used += time.process_time() - start
        if used >= next_eval or used >= budget:
            next_eval += every
            start = time.process_time()
            probs = [model.predict_probabilities(p["crops"]) for p in val]
            threshold, f1 = best_threshold(probs, [model.keys(p["roll"]) for p in val])
            model.train()
            curve.append({"cpu_s": round(used), "loss": round(float(np.mean(losses[-50:])), 4),
                          "val_frame_f1": round(f1, 4), "threshold": threshold})  # fmt: skip
            print("video2roll", curve[-1], f"wall {time.perf_counter() - wall:.0f}s",
                  f"load {load()}", flush=True)  # fmt: skip
            if f1 > best[0]:
                best = (f1, {k: v.clone() for k, v in model.state_dict().items()})
            eval_cpu += time.process_time() - start
    if best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()
    return {"steps": steps, "samples": steps * batch, "cpu_seconds": round(used, 1),
            "validation_cpu_seconds": round(eval_cpu, 1),
            "wall_seconds": round(time.perf_counter() - wall, 1),
            "final_loss": round(float(np.mean(losses[-50:])), 5) if losses else None,
            "best_val_frame_f1": round(best[0], 4), "curve": curve}  # fmt: skip


def train_roll2midi(
    model: Any,
    probs: list[torch.Tensor],
    rolls: list[torch.Tensor],
    val: tuple[list[torch.Tensor], list[torch.Tensor]],
    budget: float,
    batch: int,
    lr: float,
    every: float,
    noise: float = 0.0,
    seed: int = 0,
) -> dict[str, Any]:
    """The original's least-squares GAN step on random windows for ``budget`` CPU s; keeps
    the generator with the best val frame F1.

    Video2Roll all but memorises the train pieces, so its predictions there are cleaner than
    on new pieces; ``noise`` (std of Gaussian noise added to their logits) gives Roll2Midi
    uncertain inputs to learn to clean up from the roll's runs in time.
    """
    from audiovis.losses import lsgan_discriminator_loss, lsgan_generator_loss

    rng = np.random.default_rng(seed)
    g, d, w = model.generator, model.discriminator, model.window
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.9, 0.999))
    used, steps, next_eval, curve = 0.0, 0, every, []
    best: tuple[float, dict[str, torch.Tensor] | None] = (-1.0, None)
    wall, mse_log = time.perf_counter(), []
    while used < budget:
        start = time.process_time()
        g.train()
        d.train()
        xs, ys = [], []
        for _ in range(batch):
            p = int(rng.integers(len(probs)))
            s = int(rng.integers(0, len(probs[p]) - w + 1))
            xs.append(probs[p][s : s + w].T)
            ys.append(model.video2roll.keys(rolls[p][s : s + w]).T)
        x, real = torch.stack(xs)[:, None], torch.stack(ys)[:, None]  # (B, 1, K, W)
        if noise:
            gen = torch.Generator().manual_seed(seed * 1_000_003 + steps)
            x = torch.sigmoid(
                torch.logit(x, eps=1e-4) + noise * torch.randn(x.shape, generator=gen)
            )
        with torch.no_grad():
            fake = g(x)
        d_loss = lsgan_discriminator_loss(d(real), d(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        fake = g(x)
        mse = F.mse_loss(fake, real)
        g_loss = model.w_adv * lsgan_generator_loss(d(fake)) + model.w_mse * mse
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        steps += 1
        mse_log.append(mse.item())
        used += time.process_time() - start
        if used >= next_eval or used >= budget:
            next_eval += every
            refined = [model.refine(p) for p in val[0]]
            threshold, f1 = best_threshold(refined, val[1])
            curve.append({"cpu_s": round(used), "mse": round(float(np.mean(mse_log[-20:])), 5),
                          "val_frame_f1": round(f1, 4), "threshold": threshold})  # fmt: skip
            print("roll2midi", curve[-1], f"wall {time.perf_counter() - wall:.0f}s",
                  f"load {load()}", flush=True)  # fmt: skip
            if f1 > best[0]:
                best = (f1, {k: v.clone() for k, v in g.state_dict().items()})
    if best[1] is not None:
        g.load_state_dict(best[1])
    g.eval()
    return {"steps": steps, "windows": steps * batch, "cpu_seconds": round(used, 1),
            "wall_seconds": round(time.perf_counter() - wall, 1),
            "best_val_frame_f1": round(best[0], 4), "curve": curve}  # fmt: skip


def score(pieces: list[dict[str, Any]], rolls: list[np.ndarray], key_range: tuple[int, int],
          fps: float) -> dict[str, float]:  # fmt: skip
    from audiovis.metrics.transcription import FrameMetrics, NoteOnsetMetrics
    from audiovis.music import LOWEST_PITCH, roll_to_notes

    lo, hi = key_range
    frames, notes = FrameMetrics(0.5), NoteOnsetMetrics()
    for piece, roll in zip(pieces, rolls, strict=True):
        frames.update(torch.from_numpy(roll[:, lo:hi].astype(np.float32)), piece["roll"][:, lo:hi])
        ref = [n for n in piece["notes"] if lo <= n.pitch - LOWEST_PITCH < hi]
        notes.update(ref, roll_to_notes(roll, fps))
    out = {f"frame_{k}": round(float(v), 4) for k, v in frames.compute().items()}
    out.update({f"onset_{k}": round(float(v), 4) for k, v in notes.compute().items()})
    return out


def choose_reading(
    pieces: list[dict[str, Any]], probs: list[np.ndarray], keys: tuple[int, int], threshold: float
) -> tuple[float, float | None, int, int]:
    """The note reading (``clean_roll``: threshold, offset threshold, merge gap, shortest
    note) with the best pooled note-onset F1 on ``pieces`` (val), from the (T, 88)
    probabilities; ties go to the higher frame F1, then to the plain ``threshold``."""
    from audiovis.models.audeo import clean_roll

    best: tuple[tuple[float, float, int], tuple[float, float | None, int, int]] | None = None
    for on in THRESHOLDS:
        for off in sorted({o for o in (0.05, 0.1, 0.15, 0.2, 0.3, 0.5) if o < on} | {on}):
            for gap in (0, 1, 2):
                for shortest in (1, 2, 3):
                    rolls = [clean_roll(p, on, off, gap, shortest) for p in probs]
                    s = score(pieces, rolls, keys, FPS)
                    rank = (s["onset_f1"], s["frame_f1"], -abs(on - threshold))
                    reading = (on, None if off == on else off, gap, shortest)
                    if best is None or rank > best[0]:
                        best = (rank, reading)
    assert best is not None
    return best[1]


def save_checkpoint(model: Any, path: Path, hparams: dict[str, Any]) -> Path:
    """The two keys of a Lightning checkpoint that ``load_video2roll`` / ``load_roll2midi``
    read, written under a temporary name then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def learning(args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from audiovis.data.cache import user_cache_dir
    from audiovis.models.audeo import (
        Roll2Midi,
        Video2Roll,
        load_roll2midi,
        load_video2roll,
        read_roll,
    )

    torch.manual_seed(0)
    root = build_data(args.minutes)
    v2r_config = {**DEFAULT_V2R, "width": args.width, "input_size": tuple(args.input),
                  "keyboard_box": args.keyboard_box if args.keyboard_box == "auto" else
                  STUDIO_BOX, "key_mix": args.key_mix}  # fmt: skip
    v2r = load_video2roll(args.video2roll) if args.video2roll else Video2Roll(**v2r_config)
    pieces = load_pieces(root, v2r)
    held, val, test = pieces["val"] + pieces["test"], pieces["val"], pieces["test"]
    load_before = load()
    out = Path(args.out) if args.out else user_cache_dir() / "bench-audeo-runs"
    if args.video2roll:  # Roll2Midi alone, on a Video2Roll this script trained before
        v2r_ckpt = Path(args.video2roll)
        record = v2r_ckpt.with_suffix(".training.json")
        v2r_run = json.loads(record.read_text()) if record.is_file() else {}
        v2r_run["checkpoint"] = str(v2r_ckpt)
    else:
        v2r_run = train_video2roll(v2r, pieces["train"], val, args.v2r_budget, args.batch,
                                   args.lr, args.eval_every, args.augment_shift,
                                   zoom=args.augment_looks, mix=args.key_mix)  # fmt: skip
        val_probs = [v2r.predict_probabilities(p["crops"]) for p in val]
        v2r.threshold, _ = best_threshold(val_probs, [v2r.keys(p["roll"]) for p in val])
        v2r.config["threshold"] = v2r.threshold
        v2r_ckpt = save_checkpoint(v2r, out / "audeo_video2roll.ckpt", dict(v2r.config))
        save_bytes(json.dumps(v2r_run).encode(), v2r_ckpt.with_suffix(".training.json"))
    print("video2roll", {k: v for k, v in v2r_run.items() if k != "curve"}, flush=True)

    held_probs = [v2r.predict_probabilities(p["crops"]) for p in held]
    n_val = len(val)
    keys = (v2r.key_offset, v2r.key_offset + v2r.num_keys)
    val_keys = [v2r.keys(p["roll"]) for p in val]
    if args.video2roll and args.roll2midi:  # scores (and note reading) of both, no training
        r2m = load_roll2midi(args.roll2midi, v2r)
        r2m_run: dict[str, Any] = {"checkpoint": args.roll2midi}
    else:
        train_probs = [v2r.predict_probabilities(p["crops"]) for p in pieces["train"]]
        torch.manual_seed(0)
        r2m = Roll2Midi(video2roll_checkpoint=str(v2r_ckpt), window=100, base=args.r2m_base,
                        dropout=0.5, w_adv=0.001, w_mse=0.999,
                        residual=args.r2m_residual)  # fmt: skip
        rolls_train = [p["roll"] for p in pieces["train"]]
        r2m_run = train_roll2midi(r2m, train_probs, rolls_train, (held_probs[:n_val], val_keys),
                                  args.r2m_budget, args.r2m_batch, args.r2m_lr,
                                  args.eval_every, args.r2m_noise)  # fmt: skip
        r2m.threshold, _ = best_threshold([r2m.refine(p) for p in held_probs[:n_val]], val_keys)
    print("roll2midi", {k: v for k, v in r2m_run.items() if k != "curve"}, flush=True)
    refined_probs = [r2m.refine(p) for p in held_probs]

    # plain thresholding (the threshold with the best val frame F1) ...
    raw = [(v2r.full_roll(p).numpy() >= v2r.threshold).astype(np.uint8) for p in held_probs]
    refined = [(v2r.full_roll(p).numpy() >= r2m.threshold).astype(np.uint8)
               for p in refined_probs]  # fmt: skip
    # ... and the note reading (clean_roll) with the best val onset F1, kept in the checkpoints
    readings = {}
    for stage, model, probs in (("video2roll", v2r, held_probs),
                                ("roll2midi", r2m, refined_probs)):  # fmt: skip
        full = [v2r.full_roll(p).numpy() for p in probs]
        readings[stage] = choose_reading(val, full[:n_val], keys, model.threshold)
        model.threshold, model.offset_threshold, model.merge_gap, model.min_note_frames = \
            readings[stage]  # fmt: skip
    v2r.config.update(
        threshold=v2r.threshold,
        offset_threshold=v2r.offset_threshold,
        merge_gap=v2r.merge_gap,
        min_note_frames=v2r.min_note_frames,
    )
    r2m.hparams["video2roll_config"] = dict(v2r.config)
    v2r_ckpt = save_checkpoint(v2r, out / "audeo_video2roll.ckpt", dict(v2r.config))
    r2m_ckpt = save_checkpoint(r2m, out / "audeo_roll2midi.ckpt", {
        **dict(r2m.hparams), "threshold": r2m.threshold, "offset_threshold": r2m.offset_threshold,
        "merge_gap": r2m.merge_gap, "min_note_frames": r2m.min_note_frames,
    })  # fmt: skip
    v2r = load_video2roll(v2r_ckpt)  # what the zoo holds, round trip checked
    r2m = load_roll2midi(r2m_ckpt, v2r)
    raw_read = [read_roll(v2r.full_roll(p).numpy(), v2r) for p in held_probs]
    refined_read = [read_roll(v2r.full_roll(p).numpy(), r2m) for p in refined_probs]

    truth = [p["roll"].numpy().astype(np.uint8) for p in held]
    figures: dict[str, Any] = {
        "held_out_pieces": {"val": [p["name"] for p in val], "test": [p["name"] for p in test]},
        "held_out_frames": int(sum(len(p["roll"]) for p in held)),
        "train_pieces": len(pieces["train"]),
        "crop_boxes": {p["name"]: p["box"] for split in pieces.values() for p in split},
        "video2roll_training": v2r_run,
        "roll2midi_training": r2m_run,
        "reading_chosen_on_val": {
            stage: dict(
                zip(
                    ("threshold", "offset_threshold", "merge_gap", "min_note_frames"),
                    reading,
                    strict=True,
                )
            )
            for stage, reading in readings.items()
        },  # fmt: skip
        "video2roll_thresholded": score(held, raw, keys, FPS),
        "roll2midi_thresholded": score(held, refined, keys, FPS),
        "video2roll": score(held, raw_read, keys, FPS),
        "roll2midi": score(held, refined_read, keys, FPS),
        "test_piece_only": {
            "video2roll_thresholded": score(test, raw[n_val:], keys, FPS),
            "roll2midi_thresholded": score(test, refined[n_val:], keys, FPS),
            "video2roll": score(test, raw_read[n_val:], keys, FPS),
            "roll2midi": score(test, refined_read[n_val:], keys, FPS),
        },
        "ground_truth_roll_ceiling": score(held, truth, keys, FPS),
        "load_average_before": load_before,
        "load_average_after": load(),
    }
    for what in ("frame_f1", "onset_f1"):
        gain = figures["roll2midi"][what] - figures["video2roll"][what]
        figures[f"roll2midi_gain_{what}"] = round(gain, 4)
        gain = figures["roll2midi"][what] - figures["video2roll_thresholded"][what]
        figures[f"reading_and_roll2midi_gain_over_thresholding_{what}"] = round(gain, 4)
    if args.zoo:
        zoo = user_cache_dir() / "zoo"
        for ckpt in (v2r_ckpt, r2m_ckpt):
            save_bytes(ckpt.read_bytes(), zoo / ckpt.name)
        note = {
            "dataset": str(root),
            "dataset_note": "studio piano set of bench/bench_audeo.py (12 pieces of 20 s, 25 fps, "
            "128 px); train on the 10 train pieces only",
            "held_out_pieces": figures["held_out_pieces"],
            "video2roll": {"checkpoint": str(zoo / v2r_ckpt.name), "config": dict(v2r.config),
                           "scores_held_out": figures["video2roll"]},
            "roll2midi": {"checkpoint": str(zoo / r2m_ckpt.name),
                          "reading": figures["reading_chosen_on_val"]["roll2midi"],
                          "base": args.r2m_base, "scores_held_out": figures["roll2midi"]},
            "made_by": "python -m bench.bench_audeo " + " ".join(sys.argv[1:]),
        }  # fmt: skip
        save_bytes((json.dumps(note, indent=2) + "\n").encode(), zoo / "audeo.json")
    config = {
        "studio_minutes_piano": args.minutes,
        "studio_root": str(root),
        "video2roll_cpu_budget_s": args.v2r_budget,
        "roll2midi_cpu_budget_s": args.r2m_budget,
        "budget_clock": "time.process_time, one thread; validation counted apart",
        "video2roll": {**{k: v for k, v in v2r.config.items() if k != "soundfont"},
                       "batch": args.batch, "lr": args.lr, "schedule": "cosine over the budget",
                       "sampler": "balanced multilabel", "selection": "best val frame F1",
                       "augmentation": (f"looks: zoom/shift {args.augment_looks}, colour "
                                        "gains x[0.85, 1.15], brightness/contrast x[0.8, 1.2]")
                       if args.augment_looks > 0 else "none" if args.augment_shift < 0 else
                       f"brightness/contrast x[0.8, 1.2], shift <= {args.augment_shift} px",
                       "key_mix": args.key_mix},
        "roll2midi": {"base": args.r2m_base, "window": 100, "batch": args.r2m_batch,
                      "lr": args.r2m_lr, "residual": args.r2m_residual,
                      "input_logit_noise": args.r2m_noise,
                      "w_adv": 0.001, "w_mse": 0.999, "selection": "best val frame F1"},
        "threshold_choice": f"best frame F1 on the val piece over {THRESHOLDS}",
        "note_onset_tolerance_s": 0.05,
        "checkpoints": [str(v2r_ckpt), str(r2m_ckpt)],
    }  # fmt: skip
    return figures, config


def other_looks(args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Held-out onset F1 of trained checkpoints on the test piece rendered again, note for
    note, under other performer looks (camera zoom, framing, colours): p0 is the look the
    set rendered it with; p1-p3 play the train pieces; p4-p7 appear nowhere in training."""
    from audiovis.data.schema import read_manifest
    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.data.studio.score import Note, Score
    from audiovis.models.audeo import load_roll2midi, load_video2roll, read_roll

    root = build_data(args.minutes)
    v2r = load_video2roll(args.video2roll)
    r2m = load_roll2midi(args.roll2midi, v2r)
    test = load_pieces(root, v2r)["test"][0]
    meta = json.loads((root / test["name"] / "meta.json").read_text())
    num_frames, size = int(meta["num_frames"]), int(meta["size"][0])
    notes = [Note(n.pitch, n.start, n.end, n.velocity) for n in test["notes"]]
    score_ = Score(name=test["name"], notes=notes, beats=np.arange(0.0, num_frames / FPS, 0.5))
    keys = (v2r.key_offset, v2r.key_offset + v2r.num_keys)
    rig = PianoRig()
    figures: dict[str, Any] = {}
    load_before = load()
    for index in range(args.other_looks):
        look = Look.performer_look(index)
        take = rig.render(score_, np.full(num_frames, 0.5), look, size, FPS, num_frames)
        video = torch.from_numpy(take.frames).permute(0, 3, 1, 2)
        box = v2r.box_for(video, "byte")
        probs = v2r.predict_probabilities(v2r.crops(video, box, value_range="byte"))
        raw = (v2r.full_roll(probs).numpy() >= v2r.threshold).astype(np.uint8)
        refined_probs = v2r.full_roll(r2m.refine(probs)).numpy()
        refined = (refined_probs >= r2m.threshold).astype(np.uint8)
        piece = {**test, "roll": torch.from_numpy(rig_roll(take, rig, look))}
        figures[look.performer] = {
            "zoom": round(look.zoom, 3), "shift": [round(v, 3) for v in look.shift],
            "crop_box": [round(v, 4) for v in box],
            "video2roll_thresholded": score([piece], [raw], keys, FPS),
            "roll2midi_thresholded": score([piece], [refined], keys, FPS),
            "video2roll_read": score([piece], [read_roll(v2r.full_roll(probs).numpy(), v2r)],
                                     keys, FPS),
            "roll2midi": score([piece], [read_roll(refined_probs, r2m)], keys, FPS),
        }  # fmt: skip
        print(look.performer, figures[look.performer], flush=True)
    looks = dict(figures)
    train = [m["name"] for m in read_manifest(root).performances if m["split"] == "train"]
    seen = {json.loads((root / name / "meta.json").read_text())["performer"] for name in train}
    for stage in ("video2roll_thresholded", "roll2midi_thresholded", "video2roll_read",
                  "roll2midi"):  # fmt: skip
        for what in ("frame_f1", "onset_f1"):
            groups = (("", list(looks)), ("_seen_in_training", sorted(seen & set(looks))),
                      ("_unseen", sorted(set(looks) - seen)))  # fmt: skip
            for group, names in groups:
                values = [looks[n][stage][what] for n in names]
                if values:
                    figures[f"mean{group}_{stage}_{what}"] = round(float(np.mean(values)), 4)
    figures["looks_seen_in_training"] = sorted(seen)
    figures["load_average_before"], figures["load_average_after"] = load_before, load()
    config = {"studio_root": str(root), "piece": test["name"], "frames": num_frames,
              "size": size, "looks": [f"p{i}" for i in range(args.other_looks)],
              "video2roll": args.video2roll, "roll2midi": args.roll2midi,
              "keyboard_box": v2r.keyboard_box, "loudness": "constant 0.5 (hands only)",
              "truth": "the rig's own key probes (PianoRig.pressed_from_pixels)"}  # fmt: skip
    return figures, config


def rig_roll(take: Any, rig: Any, look: Any) -> np.ndarray:
    """The keys down in each rendered frame, read back exactly from the rig's probes."""
    return np.asarray(rig.pressed_from_pixels(take.frames, look), np.float32)


def save_bytes(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def rate(fn: Any, items: int, seconds: float = 3.0) -> tuple[float, float]:
    """(items per wall second, items per process-CPU second) over about ``seconds``."""
    fn()
    wall, cpu, n = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - wall < seconds:
        fn()
        n += items
    return n / (time.perf_counter() - wall), n / max(time.process_time() - cpu, 1e-9)


def speed_model(config: dict[str, Any], batch: int = 64) -> dict[str, float]:
    from audiovis.models.audeo import Video2Roll

    model = Video2Roll(**config).eval()
    x = torch.rand(batch, model.net.in_frames, *model.input_size)
    out: dict[str, float] = {}
    with torch.inference_mode():
        fps, per_cpu = rate(lambda: model(x), batch)
        out.update(infer_frames_per_s_fp32=fps, infer_frames_per_cpu_s_fp32=per_cpu)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fps, per_cpu = rate(lambda: model(x), batch)
        out.update(infer_frames_per_s_bf16=fps, infer_frames_per_cpu_s_bf16=per_cpu)
    return {k: round(v, 1) for k, v in out.items()}


def speed_transcribe(root: Path, config: dict[str, Any], bf16: bool = False) -> dict[str, Any]:
    """``audiovis transcribe`` on the test piece's 20 s video (an untrained model of the
    default configuration: the speed does not depend on the weights)."""
    from audiovis.data.schema import read_manifest
    from audiovis.media import write_video
    from audiovis.models.audeo import Video2Roll
    from audiovis.tools.transcribe import main as transcribe_main

    name = next(p["name"] for p in read_manifest(root).performances if p["split"] == "test")
    frames = np.load(root / name / "frames.npy")
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / f"{name}.mp4", frames, FPS)
        ckpt = save_checkpoint(Video2Roll(**config), Path(tmp) / "v2r.ckpt",
                               dict(Video2Roll(**config).config))  # fmt: skip
        argv = [str(video), "--video2roll", str(ckpt), "--out", str(Path(tmp) / "out"), "--quiet"]
        argv += (["--bf16"] if bf16 else []) + ["--threads", str(torch.get_num_threads())]
        transcribe_main(argv)  # warm-up (imports, FluidSynth)
        load_before = load()
        wall, cpu = time.perf_counter(), time.process_time()
        transcribe_main(argv)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"video": f"{name} ({len(frames)} frames, {len(frames) / FPS:g} s, "
                     f"{frames.shape[2]}x{frames.shape[1]})",
            "frames_per_s": round(len(frames) / wall, 1),
            "frames_per_cpu_s": round(len(frames) / cpu, 1),
            "real_time_factor": round(len(frames) / FPS / wall, 2),
            "load_average": load_before}  # fmt: skip


def speed(args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    root = build_data(args.minutes)
    original = dict(key_offset=15, num_keys=51, input_size=(100, 900), width=64)
    figures: dict[str, Any] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        figures[f"threads_{threads}"] = {
            "load_average": load(),
            "default_config": speed_model(DEFAULT_V2R),
            "transcribe_end_to_end": speed_transcribe(root, DEFAULT_V2R),
            "transcribe_end_to_end_bf16": speed_transcribe(root, DEFAULT_V2R, bf16=True),
        }
        figures[f"threads_{threads}"]["original_config"] = speed_model(original, batch=8)
    torch.set_num_threads(1)
    config = {
        "default_config": {k: list(v) if isinstance(v, tuple) else v
                           for k, v in DEFAULT_V2R.items()},
        "original_config": original,
        "batch": {"default_config": 64, "original_config": 8},
        "timing": "3 s of repeated calls after one warm-up, inference_mode",
        "transcribe": "audiovis transcribe VIDEO --video2roll CKPT (decode, crops, Video2Roll, "
        "MIDI, FluidSynth, .wav/.png/.npy, re-encode .mp4 with audio); second run timed; "
        "_bf16: the same with --bf16 (Video2Roll under bfloat16 autocast)",
    }  # fmt: skip
    return figures, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="piano music to render")
    parser.add_argument("--v2r-budget", type=float, default=540.0, help="CPU s for Video2Roll")
    parser.add_argument("--r2m-budget", type=float, default=240.0, help="CPU s for Roll2Midi")
    parser.add_argument("--width", type=int, default=DEFAULT_V2R["width"])
    parser.add_argument("--input", type=int, nargs=2, default=list(DEFAULT_V2R["input_size"]))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--keyboard-box", choices=("fixed", "auto"), default="fixed",
                        help="Video2Roll's crop: the studio's fixed box, or the keyboard "
                        "located per performance (keyboard_box: auto)")  # fmt: skip
    parser.add_argument("--augment-shift", type=int, default=-1,
                        help="augment Video2Roll's inputs, shifting up to this many pixels "
                        "(-1: no augmentation)")  # fmt: skip
    parser.add_argument("--augment-looks", type=float, default=0.0,
                        help="augment Video2Roll's inputs as other performer looks: zoom and "
                        "shift up to this fraction, colour gains (0: off)")  # fmt: skip
    parser.add_argument("--key-mix", type=float, default=0.0,
                        help="chance that a Video2Roll training sample takes a band of keys "
                        "from another frame of its piece (key_mix; 0: off)")  # fmt: skip
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--r2m-base", type=int, default=4)
    parser.add_argument("--r2m-lr", type=float, default=5e-4)
    parser.add_argument("--r2m-batch", type=int, default=8)
    parser.add_argument(
        "--r2m-noise",
        type=float,
        default=1.0,
        help="std of the noise on Roll2Midi's training inputs' logits",
    )
    parser.add_argument(
        "--r2m-residual",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Roll2Midi learns corrections to its input (default) or not",
    )
    parser.add_argument("--video2roll", help="train only Roll2Midi, on this Video2Roll")
    parser.add_argument("--eval-every", type=float, default=60.0, help="CPU s between vals")
    parser.add_argument("--out", help="checkpoints folder (default <cache>/bench-audeo-runs)")
    parser.add_argument("--zoo", action="store_true", help="copy the checkpoints to the zoo")
    parser.add_argument("--result", help="the record's name (default learning[_auto])")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed figures")
    parser.add_argument("--speed-only", action="store_true", help="only the speed figures")
    parser.add_argument("--other-looks", type=int, default=0,
                        help="only score --video2roll/--roll2midi on the test piece rendered "
                        "under performer looks p0..p<N-1>")  # fmt: skip
    parser.add_argument(
        "--roll2midi",
        help="a Roll2Midi checkpoint (for --other-looks; with "
        "--video2roll and no --other-looks: score both, no training)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.other_looks:
        figures, config = other_looks(args)
        v2r_box = config["keyboard_box"]
        write_result("audeo", "looks_auto" if v2r_box == "auto" else "looks_fixed", config,
                     figures)  # fmt: skip
        return
    if not args.speed_only:
        figures, config = learning(args)
        auto = args.keyboard_box == "auto"  # kept apart from the fixed box's record
        what = args.result or ("learning_auto" if auto else "learning")
        write_result("audeo", what, config, figures)
    if not args.no_speed:
        figures, config = speed(args)
        write_result("audeo", "speed", config, figures)


if __name__ == "__main__":
    main()
