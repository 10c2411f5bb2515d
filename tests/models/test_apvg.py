"""APVG: the CLI round trip on the fixture, the ablation switches, windowed generation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from audiovis.audio import LogMel, frames_to_video_rate
from audiovis.errors import AudiovisError, FileProblem
from audiovis.media import probe, write_audio
from audiovis.models import APVG
from audiovis.networks.keyboard import KeyLogits, key_rects
from tests.conftest import CONF, run_cli

TINY = str(CONF / "apvg.yaml")


def tiny(**flags: Any) -> APVG:
    torch.manual_seed(0)
    frontend = LogMel(8000, n_fft=256, hop_length=80, n_mels=32)
    return APVG(frontend, image_size=32, sample_rate=8000, cvg_channels=16, stu_base=8,
                stu_depth=3, w_perceptual=0.0, **flags)  # fmt: skip


def piano(**flags: Any) -> APVG:
    """A small APVG with a key-press head at 64 px, for the studio's piano clips."""
    torch.manual_seed(0)
    frontend = LogMel(8000, n_fft=256, hop_length=80, n_mels=32)
    return APVG(frontend, image_size=64, sample_rate=8000, cvg_channels=16, stu_base=8,
                stu_depth=3, w_perceptual=0.0, key_presses=True, **flags)  # fmt: skip


def batch(t: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    kp = torch.rand(2, t, 67, 3, generator=g)
    kp[..., 2] = 1.0
    return {
        "audio": torch.randn(2, t * 320, generator=g) * 0.1,
        "video": torch.rand(2, t, 3, 32, 32, generator=g) * 2 - 1,
        "keypoints": kp,
    }


def test_fit_then_predict_writes_video_with_sound(fixture_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_cli(
        "fit",
        "--config",
        TINY,
        "--data.root",
        str(fixture_root),
        "--trainer.default_root_dir",
        str(run),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    t = np.arange(8000 * 3) / 8000
    song = write_audio(tmp_path / "song.wav", 0.4 * np.sin(2 * np.pi * 330 * t), 8000)
    result = run_cli(
        "predict",
        "--config",
        TINY,
        "--data.root",
        str(fixture_root),
        "--trainer.default_root_dir",
        str(run),
        "--ckpt_path",
        "last",
        "--data.predict_audio",
        str(song),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = probe(run / "predictions" / "song.mp4")
    assert info["video"]["frames"] == 75 and info["audio"]["sample_rate"] == 8000
    keypoints = np.load(run / "predictions" / "song.keypoints.npy")
    assert keypoints.shape == (75, 67, 3) and keypoints[..., :2].min() >= 0
    # a checkpoint of another zoo model is refused, not silently run as APVG
    result = run_cli("predict", "--config", str(CONF / "tiny.yaml"), "--data.root",
                     str(fixture_root), "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
                     "--data.predict_audio", str(song),
                     "--trainer.default_root_dir", str(tmp_path / "other"))  # fmt: skip
    assert result.returncode == 2
    assert "a checkpoint of APVG, but the config builds TinyAudioToFrame" in result.stderr


@pytest.mark.parametrize(
    "flag", ["use_khp", "use_cvg", "use_stu", "use_gcn", "use_gru", "use_average", "use_dlt"]
)
def test_each_ablation_switches_its_component_off(flag: str) -> None:
    full, ablated = tiny(), tiny(**{flag: False})
    b = batch()
    with torch.no_grad():
        out = ablated(b["audio"], 4, b["video"][:, 0])
    losses = ablated.reconstruction_losses(out, b)
    assert all(torch.isfinite(v) for v in losses.values())
    assert out["frames"].shape == (2, 4, 3, 32, 32)
    n_full = sum(p.numel() for p in full.parameters())
    n_ablated = sum(p.numel() for p in ablated.parameters())
    if flag == "use_khp":  # the average pose stands in for predicted keypoints
        assert torch.allclose(out["keypoints"][0, 0], ablated.average_keypoints[:, :2])
    if flag == "use_cvg":  # the reference frame stands in for the coarse video
        assert torch.equal(out["coarse"][:, 2], b["video"][:, 0])
    if flag == "use_stu":  # no refinement: the coarse video is the output
        assert torch.equal(out["frames"], out["coarse"])
    if flag in ("use_khp", "use_cvg", "use_stu", "use_gcn", "use_gru", "use_average"):
        assert n_ablated < n_full
    if flag == "use_dlt":  # the heatmap no longer carries gradients to the keypoint predictor
        assert full(b["audio"], 4, b["video"][:, 0])["heatmap"].requires_grad
        assert not ablated(b["audio"], 4, b["video"][:, 0])["heatmap"].requires_grad


def test_generate_chains_windows_over_any_length() -> None:
    model = tiny().eval()
    audio = torch.randn(int(8000 * 1.5)) * 0.1  # 37 frames: 2 full windows of 16 and one of 5
    with torch.no_grad():
        out = model.generate(audio, window=16)
    assert out["frames"].shape == (37, 3, 32, 32)
    assert out["keypoints"].shape == (37, 67, 2)
    with pytest.raises(AudiovisError, match="margin -1"):
        model.generate(audio, window=16, margin=-1)


def test_a_window_with_margin_hears_the_music_across_its_edges() -> None:
    model = tiny().eval()
    per_frame = 8000 // 25
    audio = torch.randn(48 * per_frame) * 0.1
    with torch.no_grad():
        whole = model(audio[None], 48)["audio_feat"][0, 16:32]  # frames 16-31 of the piece
        alone = model(audio[None, 16 * per_frame : 32 * per_frame], 16)["audio_feat"][0]
        around = model(audio[None, 8 * per_frame : 40 * per_frame], 16, margin=8)["audio_feat"]
    # cut out of its piece, a window's edge frames hear the padding; with 8 frames of the
    # music around it, what the whole piece gives
    assert (alone - whole)[[0, -1]].abs().max() > 0.1
    torch.testing.assert_close(around[0], whole, atol=1e-5, rtol=1e-5)


def test_training_steps_lower_the_reconstruction_loss() -> None:
    model = tiny()
    b = batch()
    # a learnable target: the same smooth image in every frame, a fixed pose, generated from
    # a first frame that differs (the residual CVG and STU start by repeating the first frame)
    ramp = torch.linspace(-1, 1, 32)
    b["video"] = (ramp[None, :] * ramp[:, None]).expand(2, 4, 3, 32, 32).clone()
    b["keypoints"] = b["keypoints"][:, :1].expand(-1, 4, -1, -1).clone()
    start = torch.zeros(2, 3, 32, 32)
    opt = torch.optim.Adam(model.generator.parameters(), 2e-3)
    first = last = 0.0
    for step in range(20):
        losses = model.reconstruction_losses(model(b["audio"], 4, start), b)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()  # type: ignore[union-attr]
        opt.step()
        first = float(total) if step == 0 else first
        last = float(total)
    assert last < 0.6 * first


def test_stage_khp_trains_the_keypoint_predictor_alone() -> None:
    model = tiny(stage="khp")
    model.configure_optimizers()
    loss, logs = model._stage_loss(batch())
    loss.backward()
    assert set(logs) == {"train/coord", "train/heatmap"}
    grads = {name: p.grad is not None for name, p in model.generator.named_parameters()}
    assert any(g for n, g in grads.items() if n.startswith("khp."))
    assert not any(g for n, g in grads.items() if not n.startswith("khp."))


def test_stage_cvg_uses_teacher_forcing_on_the_coarse_frames() -> None:
    model = tiny(stage="cvg")
    model.configure_optimizers()
    loss, logs = model._stage_loss(batch())
    loss.backward()
    assert set(logs) == {"train/coarse"}
    assert all(p.grad is None for p in model.generator.khp.parameters())  # type: ignore[union-attr]
    assert any(p.grad is not None for p in model.generator.cvg.parameters())  # type: ignore[union-attr]


def test_final_stage_loads_khp_and_cvg_from_checkpoints_and_freezes_them(tmp_path: Path) -> None:
    early = tiny()
    early.average_keypoints.fill_(0.25)
    path = tmp_path / "stage.ckpt"
    torch.save({"state_dict": early.state_dict()}, path)
    final = tiny(stage="final", init_from={"khp": str(path), "cvg": str(path)})
    for part in ("khp", "cvg"):
        mine, theirs = getattr(final.generator, part), getattr(early.generator, part)
        pairs = zip(mine.state_dict().values(), theirs.state_dict().values(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    assert torch.all(final.average_keypoints == 0.25)  # the KHP's condition came with it
    final.configure_optimizers()
    assert not any(p.requires_grad for p in final.generator.khp.parameters())  # type: ignore[union-attr]
    assert all(p.requires_grad for p in final.generator.stu.parameters())  # type: ignore[union-attr]
    losses = final.reconstruction_losses(
        final(batch()["audio"], 4, batch()["video"][:, 0]), batch()
    )
    assert set(losses) == {"l1"}


def test_a_loaded_key_head_reads_the_keys_as_loaded_while_its_paint_learns(
    tmp_path: Path,
) -> None:
    early = tiny(key_presses=True, key_onsets=True, stage="khp")
    path = tmp_path / "khp.ckpt"
    torch.save({"state_dict": early.state_dict()}, path)
    for freeze in (False, True):
        model = tiny(key_presses=True, key_onsets=True, init_from={"keys": str(path)},
                     freeze_loaded_keys=freeze)  # fmt: skip
        model.configure_optimizers()
        keys = model.generator.keys
        assert keys is not None
        trained = {name for name, p in keys.named_parameters() if p.requires_grad}
        assert trained == ({"colour.weight"} if freeze else set(dict(keys.named_parameters())))
    # a head trained from scratch trains, frozen or not
    model = tiny(key_presses=True, freeze_loaded_keys=True, stage="khp")
    model.configure_optimizers()
    assert all(p.requires_grad for p in model.generator.keys.parameters())  # type: ignore[union-attr]


def test_a_key_head_of_another_kind_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plain_head.ckpt"
    torch.save({"state_dict": tiny(key_presses=True).state_dict()}, path)
    with pytest.raises(FileProblem, match="plain_head.ckpt.*key_onsets must be the checkpoint's"):
        tiny(key_presses=True, key_onsets=True, init_from={"keys": str(path)})


def test_paint_keys_draws_the_keys_down_on_a_still_frame_and_nothing_else() -> None:
    model = piano()
    data = _piano_batch()
    head = model.generator.keys
    assert head is not None
    with torch.no_grad():
        head.colour.weight.fill_(-0.5)
    frame, none = data["video"][:, 0], torch.zeros(2, 88)
    still = model.paint_keys(frame, torch.zeros(2, 3, 88), none)
    torch.testing.assert_close(still, frame[:, None].expand(-1, 3, -1, -1, -1))
    keys = torch.zeros(2, 3, 88)
    keys[:, 1, 39] = 1  # C4 down in the second frame
    painted = model.paint_keys(frame, keys, none)
    torch.testing.assert_close(painted[:, [0, 2]], still[:, [0, 2]])
    x0, y0, x1, y1 = (key_rects(model.locate_keys(frame))[0, 39] * 64).tolist()
    change = (painted - still)[0, 1].abs().sum(0)  # (H, W)
    # the change lies on C4's key (its soft edges within a pixel around it)
    inside = change[int(y0) - 1 : int(y1) + 2, int(x0) - 1 : int(x1) + 2].sum()
    assert inside > 0.99 * change.sum() > 0
    with pytest.raises(AudiovisError, match="no key-press head"):
        tiny().paint_keys(frame, keys, none)
    with pytest.raises(AudiovisError, match="no key-press head"):
        tiny().drawn_keys(torch.zeros(2, 3, 32))


def test_init_from_names_the_file_and_the_problem(tmp_path: Path) -> None:
    from audiovis.errors import AudiovisError, FileProblem

    with pytest.raises(FileProblem, match="missing"):
        tiny(init_from={"khp": str(tmp_path / "nope.ckpt")})
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"net.weight": torch.zeros(3)}}, other)
    with pytest.raises(FileProblem, match="holds no APVG khp weights"):
        tiny(init_from={"khp": str(other)})
    wider = tmp_path / "wider.ckpt"
    big = APVG(LogMel(8000, n_fft=256, hop_length=80, n_mels=32), image_size=32,
               sample_rate=8000, cvg_channels=32, w_perceptual=0.0)  # fmt: skip
    torch.save({"state_dict": big.state_dict()}, wider)
    with pytest.raises(FileProblem, match="cvg weights do not fit"):
        tiny(init_from={"cvg": str(wider)})
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(FileProblem, match="not a readable checkpoint"):
        tiny(init_from={"cvg": str(garbage)})
    with pytest.raises(AudiovisError, match="unknown components"):
        tiny(init_from={"vgg": str(wider)})
    with pytest.raises(AudiovisError, match="switched off"):
        tiny(stage="cvg", use_cvg=False)


def test_predict_handles_odd_audio_and_refuses_unusable_audio(
    fixture_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import soundfile as sf

    from audiovis.cli import main

    def predict(song: Path) -> int:
        return main(["predict", "--config", TINY, "--data.root", str(fixture_root),
                     "--trainer.default_root_dir", str(tmp_path / "run"),
                     "--data.predict_audio", str(song)])  # fmt: skip

    # stereo, 8-bit, 11.025 kHz: downmixed and resampled to the model's 8 kHz
    t = np.arange(int(11025 * 1.2)) / 11025
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    odd = tmp_path / "odd.wav"
    sf.write(odd, np.stack([tone, -tone * 0.5], 1), 11025, subtype="PCM_U8")
    assert predict(odd) == 0
    info = probe(tmp_path / "run" / "predictions" / "odd.mp4")
    assert info["video"]["frames"] == 30 and info["audio"]["sample_rate"] == 8000
    # silent, and shorter than one 8-frame window: one clear line each, nothing written
    silent = write_audio(tmp_path / "silent.wav", np.zeros(8000 * 2), 8000)
    short = write_audio(tmp_path / "short.wav", tone[:1000], 11025)
    capsys.readouterr()
    for song, problem in ((silent, "silent"), (short, "shorter than one clip")):
        assert predict(song) == 2
        err = capsys.readouterr().err
        assert f"error: {song}" in err and problem in err and "Traceback" not in err
        assert not (tmp_path / "run" / "predictions" / f"{song.stem}.mp4").exists()


def test_keypoint_predictor_starts_at_the_average_pose() -> None:
    model = tiny()
    average = torch.rand(67, 3) * 0.8 + 0.1
    model.generator.khp.start_at(average)  # type: ignore[union-attr]
    audio = batch()["audio"]
    feats = model.frontend(audio)
    predicted = model.generator.khp(feats, 4, average[:, :2])  # type: ignore[union-attr]
    # within a few hundredths of the frame side everywhere, before any training
    assert (predicted - average[:, :2]).abs().max() < 0.05


def test_load_apvg_rebuilds_the_model_with_its_front_end(tmp_path: Path) -> None:
    from audiovis.errors import FileProblem
    from audiovis.models.apvg import load_apvg

    model = tiny(init_from=None)
    model.average_keypoints.fill_(0.3)
    ckpt: dict[str, Any] = {"state_dict": model.state_dict(),
                            "hyper_parameters": dict(model.hparams)}  # fmt: skip
    model.on_save_checkpoint(ckpt)  # what the Trainer adds when it saves
    path = tmp_path / "apvg.ckpt"
    torch.save(ckpt, path)
    back = load_apvg(path)
    assert isinstance(back.frontend, LogMel) and back.frontend.num_features == 32
    assert not back.training and torch.all(back.average_keypoints == 0.3)
    audio = batch()["audio"]
    torch.manual_seed(3)
    mine = back.generate(audio[0])["frames"]
    torch.manual_seed(3)
    torch.testing.assert_close(mine, model.eval().generate(audio[0])["frames"])
    # a front-end spec written among the hyperparameters (by hand) is read too
    spec = ckpt.pop("audiovis_frontend")
    torch.save({**ckpt, "hyper_parameters": {**ckpt["hyper_parameters"], "frontend": spec}}, path)
    assert isinstance(load_apvg(path).frontend, LogMel)
    with pytest.raises(FileProblem, match="no such APVG checkpoint"):
        load_apvg(tmp_path / "nope.ckpt")
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"net.weight": torch.zeros(3)}}, other)
    with pytest.raises(FileProblem, match="is not an APVG checkpoint"):
        load_apvg(other)


def test_first_pose_condition_starts_by_holding_the_given_pose_and_chains_it() -> None:
    model = tiny(khp_condition="first_pose").eval()
    b = batch()
    first = b["keypoints"][:, 0, :, :2].clamp(0.05, 0.95)
    with torch.no_grad():
        out = model(b["audio"], 4, b["video"][:, 0], first_pose=first)
        # untrained, every frame holds the performer's own first pose (not the average)
        assert torch.allclose(out["keypoints"], first[:, None].expand(-1, 4, -1, -1), atol=1e-4)
        # the next window continues from this window's last pose, whatever is passed
        moved = out["state"]["pose"] + 0.01
        nxt = model(b["audio"], 4, state={**out["state"], "pose": moved}, first_pose=first)
        assert torch.allclose(nxt["keypoints"][:, 0], moved, atol=1e-4)
    # a KHP step moves it off the first pose with the audio
    model.train()
    model.stage = "khp"
    loss, _ = model._stage_loss(b)
    loss.backward()
    assert model.generator.khp.head.weight.grad.abs().sum() > 0  # type: ignore[union-attr]


def test_unknown_khp_condition_is_refused() -> None:
    from audiovis.errors import AudiovisError

    with pytest.raises(AudiovisError, match="khp_condition"):
        tiny(khp_condition="median")


def test_warp_carries_the_coarse_frame_with_the_predicted_keypoints() -> None:
    from audiovis.errors import AudiovisError

    b = batch()
    first = b["keypoints"][:, 0, :, :2].clamp(0.1, 0.9)
    plain = tiny(khp_condition="first_pose", use_stu=False).eval()
    warped = tiny(khp_condition="first_pose", use_stu=False, warp_sigma=0.05).eval()
    with torch.no_grad():
        # untrained, the KHP holds the first pose: nothing to warp by
        out = warped(b["audio"], 4, b["video"][:, 0], first_pose=first)
        ref = plain(b["audio"], 4, b["video"][:, 0], first_pose=first)
        assert torch.allclose(out["frames"], ref["frames"], atol=1e-5)
        # the generation's first pose is the anchor of every chained window
        assert torch.equal(out["state"]["anchor"], first)
        # keypoints that move carry the frame's pixels with them
        warped.generator.khp.head.bias.add_(0.5)  # type: ignore[union-attr]
        moved = warped(b["audio"], 4, b["video"][:, 0], first_pose=first)
        assert (moved["frames"] - ref["frames"]).abs().mean() > 0.01
        nxt = warped(b["audio"], 4, state=moved["state"])
        assert torch.equal(nxt["state"]["anchor"], first)
    with pytest.raises(AudiovisError, match="warp_sigma"):
        tiny(warp_sigma=-0.1)


def _piano_batch(t: int = 6, size: int = 64) -> dict[str, torch.Tensor]:
    """Two clips of the studio's piano (hands playing a scale), their audio and exact roll."""
    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig
    from audiovis.data.studio.score import Note, Score

    notes = [Note(48 + 2 * i, 0.08 * i, 0.08 * i + 0.08) for i in range(t)]
    score = Score(name="scale", notes=notes, beats=np.arange(0.0, 1.0, 0.5))
    clips, rolls = [], []
    for performer in (0, 1):
        take = PianoRig().render(score, np.full(t, 0.5), Look.performer_look(performer), size,
                                 25.0, t)  # fmt: skip
        clips.append(torch.from_numpy(take.frames).permute(0, 3, 1, 2).float() / 127.5 - 1)
        roll = torch.zeros(t, 88)
        for i, n in enumerate(notes):  # note i sounds in frames 2i and 2i + 1
            roll[2 * i : 2 * i + 2, n.pitch - 21] = 1
        rolls.append(roll)
    g = torch.Generator().manual_seed(3)
    return {
        "audio": torch.randn(2, t * 320, generator=g) * 0.1,
        "video": torch.stack(clips),
        "keypoints": torch.rand(2, t, 67, 3, generator=g),
        "roll": torch.stack(rolls),
    }


def test_key_presses_draw_the_predicted_keys_where_the_keyboard_is() -> None:
    model = piano()
    assert "roll" in model.streams and "roll" not in APVG.streams  # the data must load the roll
    data = _piano_batch()
    out = model._generate(data)
    assert out["key_logits"].shape == (2, 6, 88) and out["presses"].shape == (2, 6, 2, 64, 64)
    # the press map lies on the keyboard the first frame shows, nowhere above or below it
    from audiovis.data.studio.rigs.base import Look
    from audiovis.data.studio.rigs.piano import PianoRig

    boxes = PianoRig().key_boxes(64, Look.performer_look(0))  # the keys the rig drew, pixels
    rows = out["presses"][0].sum(dim=(0, 1, 3))
    keyboard = torch.zeros(64, dtype=torch.bool)
    keyboard[boxes[:, 1].min() - 1 : boxes[:, 3].max() + 1] = True
    assert rows[~keyboard].sum() < 0.02 * rows.sum()
    losses = model.reconstruction_losses(out, data)
    assert losses["keys"] > 0
    # the key-press head learns the roll: a few steps lower its cross-entropy
    keys = model.generator.keys
    assert keys is not None
    opt = torch.optim.Adam(keys.parameters(), lr=3e-3)
    audio_feat = frames_to_video_rate(model.frontend(data["audio"]), 6)
    first = None
    for _ in range(30):
        loss = model.key_losses({"key_logits": keys(audio_feat).down}, data)["keys"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    # a batch without the roll, or frames with no keyboard in them: one clear error each
    with pytest.raises(AudiovisError, match="no piano roll"):
        model.key_losses(out, {k: v for k, v in data.items() if k != "roll"})
    blank = {**data, "video": torch.zeros_like(data["video"])}
    with pytest.raises(AudiovisError, match="no piano keyboard"):
        model._generate(blank)


def test_key_presses_paint_the_pressed_keys_onto_the_coarse_frame() -> None:
    model = piano()
    data = _piano_batch()
    keys = model.generator.keys
    assert keys is not None
    plain = model._generate(data)["coarse"]  # the colour change starts at zero
    keys.forward = lambda feat: KeyLogits(data["roll"] * 20 - 10, None)  # type: ignore[method-assign]
    assert torch.equal(model._generate(data)["coarse"], plain)
    with torch.no_grad():
        keys.colour.weight.fill_(-0.5)  # pressed keys darken by half the range
    out = model._generate(data)
    change = (out["coarse"] - plain)[0]  # (T, 3, H, W)
    rects = key_rects(model.locate_keys(data["video"][:, 0]))[0] * 64
    x0, y0, x1, y1 = rects[52 - 21].round().long().tolist()  # E3, pressed in frames 4-5 only
    inside = change[:, :, (y0 + y1) // 2, (x0 + x1) // 2]  # (T, 3) at the key's middle
    # drawn down: the key is about a pixel wide at 64 px, so its middle pixel is mostly key
    assert (inside[4:] < -0.25).all() and (inside[4:] >= -0.5).all()
    assert inside[:4].abs().max() < 0.05  # up before it is played
    assert change[:, :, : y0 - 2].abs().max() < 1e-3  # nothing above the keyboard changes
    # C3, down in the first frame until frame 2: not painted while held (the frame shows it
    # down already), painted back up when the music releases it
    x0, y0, x1, y1 = rects[48 - 21].tolist()
    front = int(y0 + 0.85 * (y1 - y0)), int((x0 + x1) / 2)  # in front of the black keys
    held = change[:, :, front[0], front[1]]
    assert held[:2].abs().max() < 0.05 and (held[2:] > 0.25).all()
    # from the reference frame, the keys its roll row holds down are where the paint starts
    first = data["video"][:1, 0].expand(2, -1, -1, -1)
    with torch.no_grad():
        model.reference_frame.copy_(first[0])
        model.reference_keys.copy_(data["roll"][0, 0])
        own = model(data["audio"], 6)["coarse"]
        given = model(data["audio"], 6, first, first_keys=data["roll"][:1, 0].expand(2, -1))
        torch.testing.assert_close(own, given["coarse"])
        model.reference_keys.zero_()  # a reference frame with every key up: C3 is painted down
        unpressed = model(data["audio"], 6)["coarse"]
    assert (unpressed - own)[0, :2, :, front[0], front[1]].max() < -0.25


def test_key_threshold_draws_an_unsure_key_fully_down() -> None:
    data = _piano_batch()
    changes = []
    # the head 70 % sure of the roll's keys and 20 % of the others, with and without the
    # threshold; and certain of every key
    for threshold, sure, unsure in ((None, 0.7, 0.2), (0.5, 0.7, 0.2), (None, 1.0, 0.0)):
        model = piano(key_threshold=threshold)
        keys = model.generator.keys
        assert keys is not None
        logits = torch.logit(torch.where(data["roll"] > 0, sure, unsure), eps=1e-6)
        keys.forward = lambda feat, logits=logits: KeyLogits(logits, None)  # type: ignore[method-assign]
        with torch.no_grad():
            plain = model._generate(data)["coarse"]
            keys.colour.weight.fill_(-0.5)
            changes.append(model._generate(data)["coarse"] - plain)
    soft, hard, certain = changes
    torch.testing.assert_close(hard, certain, atol=1e-3, rtol=0)  # unsure keys: fully down
    rects = key_rects(model.locate_keys(data["video"][:, 0]))[0] * 64
    x0, y0, x1, y1 = rects[52 - 21].round().long().tolist()  # E3, pressed in frames 4-5
    assert (hard - soft)[0, 4:, :, (y0 + y1) // 2, (x0 + x1) // 2].max() < -0.02  # darker
    with pytest.raises(AudiovisError, match="key_threshold"):
        piano(key_threshold=1.5)


def test_key_loss_weighs_the_frames_where_a_key_changes() -> None:
    roll = torch.zeros(1, 6, 88)
    roll[0, [0, 1, 3, 4, 5], 40] = 1  # a key struck, up on frame 2, struck again
    logits = torch.where(roll > 0, 3.0, -3.0)
    logits[0, 2, 40] = 3.0  # the head misses the gap
    out, data = {"key_logits": logits}, {"roll": roll}
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, roll, reduction="none")
    plain = tiny(key_presses=True).key_losses(out, data)["keys"]
    torch.testing.assert_close(plain, bce.mean())
    weighted = tiny(key_presses=True, w_key_changes=9.0).key_losses(out, data)["keys"]
    weight = torch.ones_like(roll)
    weight[0, 1:4, 40] = 10.0  # frames 1-3 border a change (between 1 and 2, 2 and 3)
    torch.testing.assert_close(weighted, (weight * bce).sum() / weight.sum())
    assert weighted > 1.5 * plain  # the missed gap weighs more
    with pytest.raises(AudiovisError, match="w_key_changes"):
        tiny(key_presses=True, w_key_changes=-1.0)


def test_key_onsets_learn_the_strokes_and_draw_a_re_struck_key_up_before_it() -> None:
    roll = torch.zeros(1, 6, 88)
    roll[0, [0, 1, 3, 4, 5], 40] = 1  # a key struck, up on frame 2, struck again at 3
    down = torch.where(roll > 0, 3.0, -3.0)
    onset = torch.full_like(roll, -4.0)
    onset[0, 3, 40] = 2.0
    model = tiny(key_presses=True, key_onsets=True, w_key_onsets=2.0)
    losses = model.key_losses({"key_logits": down, "onset_logits": onset}, {"roll": roll})
    target = torch.zeros(1, 5, 88)
    target[0, 2, 40] = 1  # frames 1..5: the stroke at 3 (frame 0's is not told)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(onset[:, 1:], target)
    torch.testing.assert_close(losses["key_onsets"], bce)
    assert model.weights["key_onsets"] == 2.0
    with pytest.raises(AudiovisError, match="w_key_onsets"):
        tiny(key_presses=True, key_onsets=True, w_key_onsets=-1.0)

    # drawing: a head sure the key is down throughout, its stroke at frame 3
    data = _piano_batch()
    data["roll"] = torch.zeros(2, 6, 88)
    drawn = []
    for onsets in (False, True):
        model = piano(key_threshold=0.5, key_onsets=onsets)
        keys = model.generator.keys
        assert keys is not None
        held = torch.full((2, 6, 88), -6.0)
        held[:, :, 39] = 4.0  # C4, a white key
        strokes = torch.full((2, 6, 88), -6.0)
        strokes[:, 3, 39] = 3.0
        fake = KeyLogits(held, strokes if onsets else None)
        keys.forward = lambda feat, fake=fake: fake  # type: ignore[method-assign]
        with torch.no_grad():
            out = model._generate(data)
        assert ("onset_logits" in out) == onsets
        drawn.append(out["presses"].flatten(3).amax(-1).sum(2))  # (B, T): any key drawn
    # without strokes the key stays down (as deep as a 1-px key at 64 px draws); with them
    # it rises on frame 2 alone
    assert drawn[0].min() > 0.5 and torch.equal(drawn[0], drawn[0][:, :1].expand(-1, 6))
    assert drawn[1][:, 2].max() < 1e-3
    torch.testing.assert_close(drawn[1][:, [0, 1, 3, 4, 5]], drawn[0][:, :5])


def test_key_paint_starts_at_the_colour_pressed_keys_take_in_the_training_videos(
    tmp_path: Path,
) -> None:
    from types import SimpleNamespace

    model = APVG(LogMel(8000, n_fft=256, hop_length=80, n_mels=32), image_size=128,
                 sample_rate=8000, cvg_channels=16, stu_base=8, stu_depth=3,
                 w_perceptual=0.0, key_presses=True)  # fmt: skip
    data = _piano_batch(t=12, size=128)
    performances = []
    for i in range(2):
        frames = ((data["video"][i].permute(0, 2, 3, 1) + 1) * 127.5).round().byte().numpy()
        np.save(tmp_path / f"video{i}.npy", frames)
        np.save(tmp_path / f"roll{i}.npy", data["roll"][i].byte().numpy())
        arrays = {"video": tmp_path / f"video{i}.npy", "roll": tmp_path / f"roll{i}.npy"}
        performances.append(SimpleNamespace(arrays=arrays))
    model.fit_key_colours(performances)
    keys = model.generator.keys
    assert keys is not None
    fitted = keys.colour.weight[:, :, 0, 0].T  # (2, 3): RGB change of a white, a black key
    # the studio's colours (rigs/piano.py): ivory (240, 235, 222) → (168, 182, 212) pressed,
    # ebony (22, 21, 24) → (62, 78, 122), in the frame's [-1, 1] units (÷ 127.5)
    studio = torch.tensor([[-72.0, -53.0, -10.0], [40.0, 57.0, 98.0]]) / 127.5
    for got, want in zip(fitted, studio, strict=True):
        # the same colour change; a little weaker, as the key edges' pixels (antialiased,
        # 2-3 px keys at 128 px) carry part of it
        assert torch.cosine_similarity(got, want, dim=0) > 0.98
        assert 0.6 < got.norm() / want.norm() < 1.1
    # a roll-less performance is skipped; with none left, the paint stays as it was
    before = keys.colour.weight.clone()
    model.fit_key_colours([SimpleNamespace(arrays={"video": tmp_path / "video0.npy"})])
    assert torch.equal(keys.colour.weight, before)
    # a training video without a keyboard: one error naming its file
    np.save(tmp_path / "blank.npy", np.zeros((12, 128, 128, 3), np.uint8))
    blank = {"video": tmp_path / "blank.npy", "roll": tmp_path / "roll0.npy"}
    with pytest.raises(AudiovisError, match=r"blank\.npy: its first frame shows no piano keyboard"):
        model.fit_key_colours([SimpleNamespace(arrays=blank)])


def test_channels_last_changes_the_memory_layout_not_the_frames() -> None:
    models = [tiny(channels_last=False), tiny()]
    for model in models:  # the same random weights in both, none zero (no identity start)
        torch.manual_seed(5)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape) * 0.1)  # randn_like would follow the layout
    plain, fast = models
    weights = [p for p in fast.generator.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    audio = torch.randn(8000) * 0.1
    frames = []
    for model in models:
        torch.manual_seed(6)  # the same noise z
        with torch.no_grad():
            frames.append(model.eval().generate(audio)["frames"])
    a, b = frames
    assert a.shape == (25, 3, 32, 32) and a.std() > 0.01
    torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_pitch_key_head_needs_a_semitone_cqt() -> None:
    from audiovis.audio import CQT

    model = APVG(CQT(16000, hop_length=256, n_bins=84), image_size=32, cvg_channels=16,
                 stu_base=8, stu_depth=3, w_perceptual=0.0, key_presses=True,
                 key_head="pitch")  # fmt: skip
    keys = model.generator.keys
    assert keys is not None and keys.first_key == 3  # C1 = MIDI 24 = key 3 (A0 = 0)
    with pytest.raises(AudiovisError, match="needs a CQT front-end at 12 bins per octave"):
        tiny(key_presses=True, key_head="pitch")  # a log-mel front-end
    with pytest.raises(AudiovisError, match="fmin on a semitone"):
        APVG(CQT(16000, hop_length=256, n_bins=84, fmin=34.0), image_size=32,
             key_presses=True, key_head="pitch", w_perceptual=0.0)  # fmt: skip


def test_generate_plays_in_the_scene_it_is_given() -> None:
    model = piano().eval()
    data = _piano_batch()
    audio = torch.randn(8000) * 0.1  # 25 frames: two windows, the state carried between them
    scene, other = data["video"][0, 0], data["video"][1, 0]  # performers 0 and 1's keyboards
    model.reference_frame.copy_(scene)
    model.reference_keys.copy_(data["roll"][0, 0])
    runs = []
    for first, keys in ((None, None), (scene, data["roll"][0, 0]), (other, None)):
        torch.manual_seed(7)  # the same noise z
        with torch.no_grad():
            runs.append(model.generate(audio, first_frame=first, first_keys=keys)["frames"])
    default, given, elsewhere = runs
    assert default.shape == (25, 3, 64, 64)
    # the reference frame given explicitly is the default; another scene changes every window
    torch.testing.assert_close(given, default)
    change = (elsewhere - default).abs().flatten(1).mean(1)
    assert (change > 0.01).all()
    with pytest.raises(AudiovisError, match=r"first_frame of shape \(1, 3, 64, 64\)"):
        model.generate(audio, first_frame=scene[None])
    with pytest.raises(AudiovisError, match=r"first_keys of shape \(1, 88\)"):
        model.generate(audio, first_frame=scene, first_keys=data["roll"][0, :1])


def test_a_coarse_stage_at_half_size_draws_full_size_frames_for_a_third_of_the_work() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    def half(scale: int) -> APVG:
        torch.manual_seed(0)
        frontend = LogMel(8000, n_fft=256, hop_length=80, n_mels=32)
        return APVG(frontend, image_size=64, sample_rate=8000, cvg_channels=16, stu_base=8,
                    stu_depth=3, w_perceptual=0.0, cvg_scale=scale).eval()  # fmt: skip

    audio = torch.randn(8000) * 0.1  # 25 frames
    flops = {}
    for scale in (1, 2):
        model = half(scale)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            out = model.generate(audio)
        assert out["frames"].shape == (25, 3, 64, 64)
        flops[scale] = sum(counter.get_flop_counts()["APVG.generator.cvg"].values())
    assert flops[2] < 0.3 * flops[1]  # the decoder and the image encoder at a quarter's pixels
    for scale in (3, 4):  # not a power of two; 16 px, under the coarse stage's 32
        with pytest.raises(AudiovisError, match=f"APVG.cvg_scale: {scale}"):
            half(scale)
