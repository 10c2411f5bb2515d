"""Dance WGANs on held-out studio music after a fixed CPU budget each: beat alignment of the
audio-conditioned model against the unconditioned sequence model and the L1-only baseline,
FID_k / FID_g / Div / jerk / PFC against the held-out real dances, the accuracy of a style
classifier (trained here on the real training dances) on each model's dances, training clips/s
and generation speed (seconds of dance per second of compute).

    python -m bench.bench_dance [--budget 150] [--classifier-budget 40] [--audio-lr 1e-3]
        [--audio-tv 2] [--audio-n-critic 2] [--audio-gp-on-audio 1] [--audio-share-fake 0]
        [--lookaheads 0.5] [--models audio,sequence,l1] [--seed 0] [--what learning]
    python -m bench.bench_dance --profile-steps   # CPU ms of the audio WGAN's step parts

``--lookaheads 0,0.25,0.5`` trains the audio WGAN and the L1 baseline once per look-ahead
(AudioToDanceWGAN's ``lookahead_seconds``), each on the same budget.

The budget is process CPU seconds (time.process_time) per model, one torch thread, so a busy
shared machine slows the wall clock but not the amount of training. Writes
bench/results/dance_WHAT.json (``learning`` by default), rewritten after each model.

``--audio-gp-on-audio 0 --audio-share-fake 1 --audio-n-critic 1``: the audio WGAN's cheaper
step (AudioToDanceWGAN's ``gp_on_audio: false`` and ``share_fake: true``), about 2.8 times
the generator steps per CPU second of the original's (bench/results/dance_step_profile.json).

Beat alignment is reported four ways (see ``BEAT_SCORES``): Bailando's BAS per music beat,
AIST++'s per kinematic beat, with AIST++'s ±4-frame kinematic beats, and the target's score,
``bas_gain``: BAS above its chance level at the music's tempo. Jittery motion has a speed
minimum near every music beat and so a high plain BAS whatever the music; it does not raise
``bas_gain``, which an unconditioned generator can only reach by luck (about 0).

``beat_lag_s_per_dance``: the lag (s) at the peak of the kinematic-beat / music-beat
cross-correlation within ± half a beat period (positive: the dance's kinematic beats come
after the music's), per held-out dance; ``beat_lag_s`` their mean.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch

from audiovis.data import AudioVisualDataModule
from audiovis.data.clips import ClipDataset, StreamFiles
from audiovis.metrics.dance import (
    dance_beat_alignment,
    dance_beat_lag,
    dance_fid_div,
    jerk,
    physical_foot_contact,
)
from audiovis.models.dance import (
    AudioToDanceWGAN,
    DanceSequenceWGAN,
    DanceStyleClassifier,
    _DanceGAN,
)
from bench.common import write_result

FPS, RATE, CLIP, SEGMENT = 25.0, 16000, 50, 120

AUDIO_ARGS: dict[str, Any] = dict(
    encoder_channels=8, encoder_out=64, latent=74, audio_layers=2, noise=10, noise_hidden=10,
    width=128, blocks=2, critic_channels=64, critic_blocks=2, code=64, critic_hidden=64,
    critic_audio_channels=8, clip_frames=CLIP, n_critic=5, num_styles=0,
)  # fmt: skip
SEQUENCE_ARGS: dict[str, Any] = dict(
    noise=32, hidden=64, layers=2, width=128, blocks=2, critic_channels=64, critic_blocks=2,
    clip_frames=CLIP, n_critic=5, tv_weight=50.0,
)  # fmt: skip


BEAT_SCORES: dict[str, dict[str, Any]] = {
    # Bailando's BAS: per music beat, kinematic beats = minima of the smoothed joint speed
    "bas": {},
    # AIST++/FACT's direction: per kinematic beat
    "bas_per_motion_beat": {"per": "motion"},
    # kinematic beats that are the least speed within ±4 frames (AIST++'s order 10 at 60 fps)
    "bas_order4": {"order": 4},
    # the target's score: BAS above its chance level at the music's tempo (the mean over the
    # music's beats shifted by eighths of a beat period); jitter raises both terms alike
    "bas_gain": {"above_chance": True},
}


def data(clip: int, context: tuple[int, int]) -> AudioVisualDataModule:
    dm = AudioVisualDataModule(
        streams=["pose3d", "audio", "style"], select={"instrument": ["dance"]}, sample_rate=RATE,
        clip_frames=clip, clip_stride=5, audio_context=context, batch_size=8,
    )  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    return dm


def performances(dm: AudioVisualDataModule, split: str) -> list[StreamFiles]:
    dataset = dm.datasets[split]
    assert isinstance(dataset, ClipDataset)
    return dataset.performances


def set_stats(module: Any, dm: AudioVisualDataModule) -> None:
    poses = np.concatenate([np.load(f.arrays["pose3d"]) for f in performances(dm, "train")])
    module.stats.mean.copy_(torch.from_numpy(poses.mean(0)).float())
    module.stats.std.copy_(torch.from_numpy(poses.std(0)).float().clamp(min=1e-3))
    module.stats.ready.fill_(True)


def train_gan(model: _DanceGAN, dm: AudioVisualDataModule, budget: float,
              adversarial: bool = True, lr_g: float = 2e-4) -> dict[str, Any]:  # fmt: skip
    """Critic steps each batch, a generator step every n_critic (only generator steps without
    the adversary), until ``budget`` process CPU seconds are spent."""
    set_stats(model, dm)
    model.train()
    load0 = os.getloadavg()[0]
    opt_g = torch.optim.Adam(model.generator.parameters(), lr_g, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), 2e-4, betas=(0.5, 0.9))
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    clips = steps = 0
    # AudioToDanceWGAN's share_fake: one generated batch for both steps
    sharing = model if isinstance(model, AudioToDanceWGAN) and model.share_fake else None
    while time.process_time() - start_cpu < budget:
        for batch in dm.train_dataloader():
            g_step = not adversarial or (steps + 1) % model.n_critic == 0
            out = sharing.generate_batch(batch) if sharing is not None and g_step else None
            if adversarial:
                opt_d.zero_grad(set_to_none=True)
                d_loss, _ = (model.discriminator_loss(batch) if sharing is None or out is None
                             else sharing.discriminator_loss(batch, out))  # fmt: skip
                d_loss.backward()
                opt_d.step()
            if g_step:
                # as Lightning's toggled optimizer: no gradients for the critic's weights
                model.discriminator.requires_grad_(False)
                opt_g.zero_grad(set_to_none=True)
                g_loss, _ = (model.generator_loss(batch) if sharing is None or out is None
                             else sharing.generator_loss(batch, out))  # fmt: skip
                g_loss.backward()
                opt_g.step()
                model.discriminator.requires_grad_(True)
            steps += 1
            clips += len(batch["pose3d"])
            if time.process_time() - start_cpu >= budget:
                break
    wall = time.perf_counter() - start_wall
    cpu = time.process_time() - start_cpu
    g_steps = steps if not adversarial else steps // model.n_critic
    return {"steps": steps, "generator_steps": g_steps, "clips": clips,
            "wall_s": round(wall, 1), "clips_per_s": round(clips / wall, 2),
            "clips_per_cpu_s": round(clips / cpu, 2), "cpu_s": round(cpu, 1),
            "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)]}  # fmt: skip


def profile_steps(dm: AudioVisualDataModule, lookahead: float, repeats: int = 10
                  ) -> dict[str, Any]:  # fmt: skip
    """CPU ms of the audio WGAN's parts on one training batch (1 thread): its generator
    forward, the critic's audio branch, the gradient penalty, a critic step and a generator
    step, with the gradient penalty on the audio and the poses (the original) or the poses
    only (``gp_on_audio: false``), and a generator step that reuses the critic step's dances
    (``share_fake``)."""
    from audiovis.models.dance import two_input_gradient_penalty

    batch = next(iter(dm.train_dataloader()))
    out: dict[str, Any] = {"loadavg_1min_start": round(os.getloadavg()[0], 2)}

    def ms(fn: Any) -> float:
        fn()
        start = time.process_time()
        for _ in range(repeats):
            fn()
        return round((time.process_time() - start) / repeats * 1000, 1)

    for on_audio in (True, False):
        torch.manual_seed(0)
        model = AudioToDanceWGAN(sample_rate=RATE, lookahead_seconds=lookahead,
                                 **{**AUDIO_ARGS, "gp_on_audio": on_audio})  # fmt: skip
        set_stats(model, dm)
        model.train()
        with torch.no_grad():
            gen = model.generate_batch(batch)
        critic = model.discriminator

        def d_step(m: AudioToDanceWGAN = model, o: Any = None) -> None:
            m.discriminator_loss(batch, o)[0].backward()

        def g_step(m: AudioToDanceWGAN = model, o: Any = None) -> None:
            m.discriminator.requires_grad_(False)
            m.generator_loss(batch, o)[0].backward()
            m.discriminator.requires_grad_(True)

        def shared(m: AudioToDanceWGAN = model) -> None:
            o = m.generate_batch(batch)
            d_step(m, o)
            g_step(m, o)

        def penalty(c: Any = critic, g: Any = gen, on: bool = on_audio) -> None:
            code = c.audio_code(g["audio"])
            two_input_gradient_penalty(c, g["real"], g["fake"], g["audio"], None, on,
                                       code).backward()  # fmt: skip

        key = "gp_on_audio" if on_audio else "gp_on_poses_only"
        out[key] = {
            "critic_step_ms": ms(d_step),
            "generator_step_ms": ms(g_step),
            "critic_and_generator_step_shared_fake_ms": ms(shared),
            "gradient_penalty_ms": ms(penalty),
        }
    with torch.no_grad():
        out["generator_forward_no_grad_ms"] = ms(lambda: model.generate_batch(batch))
        out["critic_audio_code_no_grad_ms"] = ms(lambda: critic.audio_code(gen["audio"]))
    out["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    print(out, flush=True)
    return out


def train_classifier(
    dm: AudioVisualDataModule, budget: float, classes: int
) -> DanceStyleClassifier:
    clf = DanceStyleClassifier(num_classes=classes, channels=32, hidden=32)
    set_stats(clf, dm)
    opt = torch.optim.Adam(clf.parameters(), 2e-3)
    start = time.process_time()
    clf.train()
    while time.process_time() - start < budget:
        for batch in dm.train_dataloader():
            loss = torch.nn.functional.cross_entropy(clf(batch["pose3d"]), batch["style"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if time.process_time() - start >= budget:
                break
    return clf


def segments(x: np.ndarray) -> list[np.ndarray]:
    return [x[i : i + SEGMENT] for i in range(0, len(x) - SEGMENT + 1, SEGMENT)]


def evaluate(name: str, model: _DanceGAN | None, dm: AudioVisualDataModule,
             clf: DanceStyleClassifier) -> dict[str, Any]:  # fmt: skip
    """Whole held-out (test) dances from their music; metrics against the real ones."""
    test = performances(dm, "test")
    real_all, fake_all, labels, generated = [], [], [], []
    beats: dict[str, list[float]] = {key: [] for key in BEAT_SCORES}
    lags: list[float] = []
    gen_wall = gen_seconds = 0.0
    torch.manual_seed(0)
    for files in test:
        assert files.audio is not None
        audio = np.load(files.audio)
        real = np.load(files.arrays["pose3d"]).astype(np.float64)
        if model is None:
            fake = real
        else:
            model.eval()
            start = time.perf_counter()
            with torch.no_grad():
                fake = model.generate_dance(torch.from_numpy(audio)).numpy().astype(np.float64)
            gen_wall += time.perf_counter() - start
            gen_seconds += len(fake) / FPS
        for key, kwargs in BEAT_SCORES.items():
            beats[key].append(dance_beat_alignment(fake, audio, RATE, FPS, **kwargs))
        lags.append(dance_beat_lag(fake, audio, RATE, FPS))
        real_all += segments(real)
        fake_all += segments(fake)
        labels += [files.labels["style"]] * len(segments(fake))
        generated.append(fake)
    out: dict[str, Any] = {k: round(float(np.nanmean(v)), 4) for k, v in beats.items()}
    out["bas_gain_per_dance"] = [round(float(v), 3) for v in beats["bas_gain"]]
    out["beat_lag_s"] = round(float(np.nanmean(lags)), 3)
    out["beat_lag_s_per_dance"] = [round(v, 3) for v in lags]
    if model is not None:
        out.update({k: round(v, 4) for k, v in dance_fid_div(real_all, fake_all, FPS).items()})
        out["generation_s_per_s"] = round(gen_seconds / gen_wall, 1)
        out["generation_loadavg_1min"] = round(os.getloadavg()[0], 2)
    else:
        feats = dance_fid_div(real_all, real_all, FPS)
        out.update({"div_k": round(feats["div_k"], 4), "div_g": round(feats["div_g"], 4)})
    out["jerk"] = round(float(np.mean([jerk(x, FPS) for x in generated])), 2)
    out["pfc"] = round(float(np.mean([physical_foot_contact(x, FPS) for x in generated])), 6)
    predicted = clf.classify(fake_all)
    out["style_accuracy"] = round(float((predicted == np.array(labels)).mean()), 3)
    print(f"{name}: {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=150.0, help="CPU s per model")
    parser.add_argument("--classifier-budget", type=float, default=40.0)
    parser.add_argument(
        "--audio-lr",
        type=float,
        default=1e-3,
        help="generator learning rate of the audio WGAN and the L1 baseline",
    )
    parser.add_argument(
        "--audio-tv",
        type=float,
        default=2.0,
        help="total-variation weight of the audio WGAN and the L1 baseline",
    )
    parser.add_argument("--audio-n-critic", type=int, default=2)
    parser.add_argument(
        "--audio-gp-on-audio",
        type=int,
        default=1,
        help="AudioToDanceWGAN gp_on_audio (1: the original; 0: poses only)",
    )
    parser.add_argument(
        "--audio-share-fake",
        type=int,
        default=0,
        help="AudioToDanceWGAN share_fake (1: one generated batch per step)",
    )
    parser.add_argument(
        "--audio-onsets",
        type=int,
        default=0,
        help="AudioToDanceWGAN onset_points of the audio WGAN and the L1 baseline",
    )
    parser.add_argument(
        "--lookaheads",
        default="0.5",
        help="comma-separated lookahead_seconds of the audio WGAN and the L1 baseline",
    )
    parser.add_argument("--models", default="audio,sequence,l1", help="of audio,sequence,l1")
    parser.add_argument("--seed", type=int, default=0, help="seed of the models' training")
    parser.add_argument("--what", default="learning", help="bench/results/dance_WHAT.json")
    parser.add_argument("--profile-steps", action="store_true",
                        help="only time the audio WGAN's training-step parts "
                        "(bench/results/dance_step_profile.json)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    AUDIO_ARGS.update(tv_weight=args.audio_tv, n_critic=args.audio_n_critic,
                      gp_on_audio=bool(args.audio_gp_on_audio),
                      share_fake=bool(args.audio_share_fake),
                      onset_points=args.audio_onsets)  # fmt: skip
    wall0, load0 = time.perf_counter(), os.getloadavg()[0]
    lookaheads = [float(v) for v in args.lookaheads.split(",")]
    context = max(
        AudioToDanceWGAN(sample_rate=RATE, lookahead_seconds=v, **AUDIO_ARGS).context_frames
        for v in lookaheads
    )
    dm = data(CLIP, (context, context))
    if args.profile_steps:
        config = {"audio_model": AUDIO_ARGS, "lookahead_seconds": lookaheads[0],
                  "batch_size": 8, "train_clip_frames": CLIP, "torch_threads": 1,
                  "measure": "process CPU ms per call, mean of 10 after one warm-up"}  # fmt: skip
        write_result("dance", "step_profile", config, profile_steps(dm, lookaheads[0]))
        return
    classes = len(dm.manifest.classes["style"]) if dm.manifest else 5
    clf_dm = data(SEGMENT, (0, 0))
    clf = train_classifier(clf_dm, args.classifier_budget, classes)
    results: dict[str, Any] = {"real (held-out)": evaluate("real", None, dm, clf)}
    training: dict[str, Any] = {}

    def audio_model(lookahead: float, adversarial: bool) -> Any:
        return lambda: AudioToDanceWGAN(sample_rate=RATE, adversarial=adversarial,
                                        lookahead_seconds=lookahead, **AUDIO_ARGS)  # fmt: skip

    def label(name: str, lookahead: float) -> str:
        return name if len(lookaheads) == 1 else f"{name} (look-ahead {lookahead:g} s)"

    runs: list[tuple[str, Any, bool, float]] = []
    for key in args.models.split(","):
        if key == "sequence":
            runs.append(("sequence WGAN-GP (no audio)",
                         lambda: DanceSequenceWGAN(sample_rate=RATE, **SEQUENCE_ARGS), True,
                         2e-4))  # fmt: skip
        elif key in ("audio", "l1"):
            name = "audio WGAN-GP" if key == "audio" else "L1 baseline"
            for v in lookaheads:
                runs.append((label(name, v), audio_model(v, key == "audio"), key == "audio",
                             args.audio_lr))  # fmt: skip
        else:
            raise SystemExit(f"unknown model {key!r}: use audio, sequence, l1")
    config = {
        "data": "embedded default studio, dance only: 8 train / 4 held-out test performances "
                "(20 s each, 4 styles)",
        "cpu_budget_s_per_model": args.budget,
        "classifier_cpu_budget_s": args.classifier_budget,
        "torch_threads": 1,
        "seed": args.seed,
        "train_clip_frames": CLIP,
        "eval_segment_frames": SEGMENT,
        "audio_model": AUDIO_ARGS,
        "audio_lookahead_seconds": lookaheads,
        "audio_context_frames": context,
        "sequence_model": SEQUENCE_ARGS,
        "optimizer": f"Adam betas (0.5, 0.9); lr 2e-4 (critics, sequence generator), "
                     f"{args.audio_lr:g} (audio generators: WGAN and L1 baseline)",
        "fid": "features standardised by the real segments' statistics; 16 vs 16 segments of "
               "4.8 s, so the covariances are regularised (small samples: compare, do not "
               "read as AIST++ numbers)",
        "beat_scores": {k: v or "defaults" for k, v in BEAT_SCORES.items()},
        "beat_target": "bas_gain (BAS per music beat minus its mean over the music beats "
                       "shifted by k/8 of the beat period)",
        "loadavg_1min_start": round(load0, 2),
        "wall_s_total": None,
    }  # fmt: skip
    for name, make, adversarial, lr_g in runs:
        torch.manual_seed(args.seed)
        model = make()
        training[name] = train_gan(model, dm, args.budget, adversarial, lr_g)
        print(f"{name}: trained {training[name]}", flush=True)
        results[name] = evaluate(name, model, dm, clf)
        # after each model, so that a run cut short keeps what it finished
        config["wall_s_total"] = round(time.perf_counter() - wall0, 1)
        write_result("dance", args.what, config, {"evaluation": results, "training": training})


if __name__ == "__main__":
    main()
