"""Audio2Guitarist: each stage through the real CLI, the audio → video pipeline, bad inputs,
and the networks' shapes and drawn conditions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from audiovis.errors import AudiovisError, FileProblem
from audiovis.media import probe, write_audio
from audiovis.models.guitarist import (
    STAGE_KEY,
    AudioToMaskGAN,
    MaskToImageGAN,
    PoseToImageGAN,
    WrongCheckpointError,
    load_stage,
    write_guitarist_video,
)
from audiovis.networks.guitarist import (
    AudioMaskDiscriminator,
    AudioToMaskNet,
    GuitaristFeatures,
    PoseGuidedGenerator,
    instrument_region,
    joint_heatmaps,
    pose_points,
)
from audiovis.skeleton import NUM_KEYPOINTS
from tests.conftest import CONF, assert_ok, run_cli

SR = 8000  # the fixture's rate and the tiny configs'


def tiny_mask() -> AudioToMaskGAN:
    torch.manual_seed(0)
    return AudioToMaskGAN(image_size=32, sample_rate=SR, hop_length=80, n_cqt=60, n_mels=32,
                          audio_dim=32, code_dim=32, base=8, depth=3, d_base=8, d_layers=3,
                          window=8)  # fmt: skip


def tiny_image(cls: type[MaskToImageGAN] | type[PoseToImageGAN] = MaskToImageGAN) -> Any:
    torch.manual_seed(0)
    return cls(image_size=32, sample_rate=SR, base=8, depth=3, refine_base=8, refine_depth=2,
               d_base=8, d_layers=2)  # fmt: skip


def keypoints(b: int, t: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    kp = torch.rand(b, t, NUM_KEYPOINTS, 3, generator=g) * 0.6 + 0.2
    kp[..., 2] = 1.0
    return kp


def batch(t: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "audio": torch.randn(2, t * 320, generator=g) * 0.1,
        "video": torch.rand(2, t, 3, 32, 32, generator=g) * 2 - 1,
        "mask": (torch.rand(2, t, 1, 32, 32, generator=g) > 0.7).float(),
        "keypoints": keypoints(2, t),
    }


def save(model: pl.LightningModule, path: Path) -> Path:
    """A checkpoint as Lightning writes it (state, hyper-parameters, the stage's own keys)."""
    cls = type(model)
    checkpoint: dict[str, Any] = {
        "state_dict": model.state_dict(),
        # what LightningCLI records, so `--ckpt_path` reads the model's settings back
        "hyper_parameters": {**model.hparams, "_class_path": f"{cls.__module__}.{cls.__name__}"},
        "pytorch-lightning_version": pl.__version__,
    }
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def tone(path: Path, seconds: float = 1.0, rate: int = SR, amplitude: float = 0.4) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    return write_audio(path, amplitude * np.sin(2 * np.pi * 196 * t), rate)


# ------------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("stage", ["mask", "image", "pose"])
def test_each_stage_fits_from_yaml(stage: str, fixture_root: Path, tmp_path: Path) -> None:
    assert_ok(run_cli("fit", "--config", str(CONF / f"guitarist_{stage}.yaml"), "--data.root",
                      str(fixture_root), "--trainer.default_root_dir", str(tmp_path),
                      "--trainer.fast_dev_run", "1"))  # fmt: skip


def test_predict_writes_guitarist_video_with_sound(fixture_root: Path, tmp_path: Path) -> None:
    mask_ckpt = save(tiny_mask(), tmp_path / "mask.ckpt")
    image_ckpt = save(tiny_image(), tmp_path / "image.ckpt")
    song = tone(tmp_path / "song.wav", seconds=1.5)
    out = tmp_path / "out"
    result = run_cli("predict", "--config", str(CONF / "guitarist_mask.yaml"), "--data.root",
                     str(fixture_root), "--ckpt_path", str(mask_ckpt), "--data.predict_audio",
                     str(song), "--model.init_args.image_checkpoint", str(image_ckpt),
                     "--media_writer.output_dir", str(out),
                     "--trainer.default_root_dir", str(tmp_path / "run"))  # fmt: skip
    assert_ok(result)
    info = probe(out / "song.mp4")
    assert info["video"]["frames"] == 37 and info["video"]["width"] == 32
    assert info["audio"]["sample_rate"] == SR
    masks = np.load(out / "song.mask.npy")
    assert masks.shape == (37, 1, 32, 32) and masks.min() >= 0 and masks.max() <= 1
    assert np.load(out / "song.frames.npy").shape == (37, 32, 32, 3)  # stage 2 ran


# --------------------------------------------------------------------------- the pipeline


def test_pipeline_music_to_video_and_comparison(fixture_root: Path, tmp_path: Path) -> None:
    mask_ckpt = save(tiny_mask(), tmp_path / "mask.ckpt")
    image_ckpt = save(tiny_image(), tmp_path / "image.ckpt")
    song = tone(tmp_path / "song.wav", seconds=1.0)
    plain = write_guitarist_video(song, mask_ckpt, tmp_path / "plain.mp4", image_ckpt)
    info = probe(plain)
    assert info["video"]["frames"] == 25 and info["video"]["height"] == 32
    assert info["audio"]["sample_rate"] == SR
    # with ground truth: four rows (audio, stage 1, stage 2, truth), cut to the truth's length
    rows = write_guitarist_video(song, mask_ckpt, tmp_path / "rows.mp4", image_ckpt,
                                 ground_truth=fixture_root / "perf00")  # fmt: skip
    info = probe(rows)
    assert (info["video"]["height"], info["video"]["width"]) == (4 * 32, 32)
    assert info["audio"]["seconds"] == pytest.approx(1.0, abs=0.1)
    masks_only = write_guitarist_video(song, mask_ckpt, tmp_path / "masks.mp4")
    assert probe(masks_only)["video"]["frames"] == 25


def test_pose_guided_path_renders_a_keypoint_sequence() -> None:
    model = tiny_image(PoseToImageGAN).eval()
    with torch.no_grad():
        frames = model.render_keypoints(keypoints(1, 5)[0])
    assert frames.shape == (5, 3, 32, 32) and frames.abs().max() <= 1


def test_bad_inputs_each_give_one_clear_error(tmp_path: Path) -> None:
    mask_ckpt = save(tiny_mask(), tmp_path / "mask.ckpt")
    image_ckpt = save(tiny_image(), tmp_path / "image.ckpt")
    out = tmp_path / "out.mp4"
    cases: list[tuple[Path, str]] = [
        (tone(tmp_path / "short.wav", seconds=0.1), "shorter than"),
        (tone(tmp_path / "silent.wav", amplitude=0.0), "silent"),
        (tone(tmp_path / "odd.wav", rate=4000), "below the model's 8000 Hz"),
    ]
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 64)
    cases.append((junk, "not a readable"))
    for path, message in cases:
        with pytest.raises(FileProblem, match=message):
            write_guitarist_video(path, mask_ckpt, out, image_ckpt)
    song = tone(tmp_path / "song.wav")
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(big)
    with pytest.raises(FileProblem, match="reference image is 48x64, the model generates 32x32"):
        write_guitarist_video(song, mask_ckpt, out, image_ckpt, reference_image=big)
    with pytest.raises(WrongCheckpointError, match="checkpoint of MaskToImageGAN, not of Audio"):
        write_guitarist_video(song, image_ckpt, out)
    with pytest.raises(WrongCheckpointError, match="checkpoint of AudioToMaskGAN, not of Mask"):
        write_guitarist_video(song, mask_ckpt, out, mask_ckpt)
    with pytest.raises(FileProblem, match="not a readable checkpoint"):
        load_stage(song, AudioToMaskGAN)
    assert not out.exists()


def test_a_checkpoint_of_another_stage_is_refused_on_load(tmp_path: Path) -> None:
    checkpoint = torch.load(save(tiny_image(PoseToImageGAN), tmp_path / "pose.ckpt"),
                            weights_only=True)  # fmt: skip
    assert checkpoint[STAGE_KEY] == "pose"
    with pytest.raises(WrongCheckpointError, match="PoseToImageGAN, not of MaskToImageGAN"):
        tiny_image().on_load_checkpoint(checkpoint)
    with pytest.raises(WrongCheckpointError, match="not an Audio2Guitarist checkpoint"):
        tiny_mask().on_load_checkpoint({"state_dict": {}})
    assert isinstance(WrongCheckpointError("x"), AudiovisError)  # the CLI prints one line


@pytest.mark.slow
def test_cli_refuses_a_checkpoint_of_another_stage(fixture_root: Path, tmp_path: Path) -> None:
    mask_ckpt = save(tiny_mask(), tmp_path / "mask.ckpt")
    result = run_cli("validate", "--config", str(CONF / "guitarist_image.yaml"), "--data.root",
                     str(fixture_root), "--ckpt_path", str(mask_ckpt),
                     "--trainer.default_root_dir", str(tmp_path / "run"))  # fmt: skip
    assert result.returncode == 2
    assert "error:" in result.stderr and "checkpoint of AudioToMaskGAN" in result.stderr


# ----------------------------------------------------------------------- models, networks


def test_stage1_training_steps_lower_the_loss_and_generation_chains_windows() -> None:
    model = tiny_mask()
    b = batch()
    b["mask"] = b["mask"][:, :1].expand(-1, 8, -1, -1, -1).clone()  # a still performer
    b["keypoints"] = b["keypoints"][:, :1].expand(-1, 8, -1, -1).clone()
    opt = torch.optim.Adam(model.generator.parameters(), 3e-3)
    losses = []
    for _ in range(15):
        parts = model.reconstruction_losses(model._generate(b), b)
        total = sum(parts.values())
        opt.zero_grad()
        total.backward()  # type: ignore[union-attr]
        opt.step()
        losses.append(float(total))
    assert set(parts) == {"mask", "dice", "heatmap", "temporal", "pose"}
    assert losses[-1] < 0.7 * losses[0]
    with torch.no_grad():
        out = model.eval().generate(torch.randn(int(SR * 0.84)) * 0.1)  # 21 frames: 8 + 8 + 5
    assert out["mask"].shape == (21, 1, 32, 32) and out["heatmaps"].shape == (21, 9, 32, 32)


def test_stage1_uses_a_reference_from_the_batch_when_one_is_given() -> None:
    model = tiny_mask().eval()
    b = batch()
    with torch.no_grad():
        own = model._generate(b)["mask"]
        b["reference_keypoints"] = keypoints(2, 1)[:, 0].flip(-2)
        b["reference_mask"] = torch.ones(2, 1, 32, 32)
        given = model._generate(b)["mask"]
        direct = model(b["audio"], 8, b["reference_keypoints"], b["reference_mask"])["mask"]
    assert torch.equal(given, direct) and not torch.allclose(given, own)


@pytest.mark.parametrize("cls", [MaskToImageGAN, PoseToImageGAN])
def test_untrained_stage2_copies_its_reference_frame_then_learns(cls: type) -> None:
    model = tiny_image(cls)
    b = batch(4)
    cond = model.condition(b["keypoints"], b["mask"]).flatten(0, 1)
    reference = b["video"][:, :1].expand(-1, 4, -1, -1, -1).flatten(0, 1)
    ref_cond = model.condition(b["keypoints"][:, :1], b["mask"][:, :1])
    ref_cond = ref_cond.expand(-1, 4, -1, -1, -1).flatten(0, 1)
    coarse, frame = model(cond, reference, ref_cond)
    assert torch.equal(coarse, reference) and torch.equal(frame, reference)
    # the zero output layers still let training move the frames away from the copy
    opt = torch.optim.Adam(model.generator.parameters(), 1e-2)
    for _ in range(3):
        loss, _ = model.generator_loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, frame = model(cond, reference, ref_cond)
    assert (frame - reference).abs().max() > 1e-3
    plain = cls(image_size=32, base=8, depth=3, refine_base=8, refine_depth=2, d_base=8,
                d_layers=2, residual=False)  # fmt: skip
    assert not torch.allclose(plain(cond, reference, ref_cond)[1], reference)


def test_stage2_changes_only_the_performer_and_its_margin() -> None:
    model = tiny_image()  # change_margin 0.03 of 32 pixels: 1 pixel
    b = batch(4)
    b["mask"] = torch.zeros(2, 4, 1, 32, 32)
    b["mask"][:, :, :, 10:20, 12:18] = 1.0  # the performer: a block; the rest stays still
    b["mask"][:, 1:, :, 20:24, 12:18] = 1.0  # in later frames it reaches lower
    opt = torch.optim.Adam(model.generator.parameters(), 1e-2)
    for _ in range(3):
        loss, _ = model.generator_loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, frames, _ = model._generate(b)
    change = (frames - b["video"][:, :1].expand(-1, 4, -1, -1, -1).flatten(0, 1)).abs()
    change = change.amax(1).view(2, 4, 32, 32)
    assert change[:, 1:, 9:25, 11:19].max() > 1e-3  # the performer and its margin move
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[9:25, 11:19] = False
    assert change[:, :, outside].max() == 0  # the rest is the reference frame exactly


def test_stage1_pose_task_reads_the_audio_and_can_be_dropped() -> None:
    model = tiny_mask()
    b = batch()
    ref = pose_points(b["keypoints"][:, 0])  # 7 joints and 2 hand centres
    change = model.generator.pose_change(model.frontend(b["audio"]), ref, 8)
    quiet = model.generator.pose_change(model.frontend(torch.zeros_like(b["audio"])), ref, 8)
    assert ref.shape == (2, 9, 2) and change.shape == (2, 8, 9, 2)
    assert not torch.allclose(change, quiet)
    off = AudioToMaskGAN(image_size=32, sample_rate=SR, hop_length=80, n_cqt=60, n_mels=32,
                         audio_dim=32, code_dim=32, base=8, depth=3, window=8,
                         w_pose=0.0)  # fmt: skip
    assert off.generator.pose_head is None
    assert "pose" not in off.reconstruction_losses(off._generate(b), b)


def test_gan_losses_are_finite_for_every_stage() -> None:
    for model in (tiny_mask(), tiny_image(), tiny_image(PoseToImageGAN)):
        b = batch(4)
        d_loss, _ = model.discriminator_loss(b)
        g_loss, logs = model.generator_loss(b)
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
        assert "train/adv" in logs


def test_joint_heatmaps_and_instrument_region_hand_cases() -> None:
    kp = torch.zeros(NUM_KEYPOINTS, 3)
    kp[1] = torch.tensor([(3 + 0.5) / 8, (2 + 0.5) / 8, 1.0])  # the neck at pixel (row 2, col 3)
    heat = joint_heatmaps(kp, 8, joints=(1, 4), radius=1.0)
    assert heat.shape == (4, 8, 8)  # two joints, two hands
    assert heat[0, 2, 3] == 1.0 and heat[0].sum() == pytest.approx(1.0)
    assert heat[1].sum() == 0  # the right wrist has confidence 0: nothing drawn
    # hands on a horizontal line at y = 0.5: the band is the rows around it, from the picking
    # hand (x = 0.25) to half the hands' distance past the fretting hand (x = 0.75 + 0.25)
    kp[25:46] = torch.tensor([0.75, 0.5, 1.0])  # left hand (frets)
    kp[46:67] = torch.tensor([0.25, 0.5, 1.0])  # right hand (picks)
    region = instrument_region(kp, 16, width=0.25, reach=0.5)[0]
    assert region[8, 4:16].all() and region[7, 4:16].all()
    assert not region[8, :2].any() and not region[2].any() and not region[13].any()


def test_network_shapes() -> None:
    feats = GuitaristFeatures(SR, 80, n_cqt=60, n_mels=32, n_chroma=12)
    f = feats(torch.randn(2, 2560) * 0.1)
    assert f.shape == (2, 60 + 2 * 44 + 2, 33) and f.min() >= 0 and f.max() <= 1
    assert (feats(torch.zeros(1, 2560))[:, :60] == 0).all()  # silence scales to zeros
    disc = AudioMaskDiscriminator(f.shape[1], 10, base=8, layers=3, audio_dim=16)
    scores, patches = disc(torch.rand(2, 8, 10, 32, 32), f)
    assert scores.shape == (2, 8) and patches.shape == (2, 8, 1, 4, 4)
    gen = PoseGuidedGenerator(10, base=8, depth=3, refine_base=8, refine_depth=2)
    coarse, frame = gen(
        torch.rand(3, 10, 32, 32), torch.rand(3, 3, 32, 32), torch.rand(3, 10, 32, 32)
    )
    assert coarse.shape == frame.shape == (3, 3, 32, 32) and frame.abs().max() <= 1
    net = AudioToMaskNet(f.shape[1], 11, 9, size=32, audio_dim=16, code_dim=16, base=8,
                         depth=3, audio_skips=True)  # fmt: skip
    cond = torch.rand(2, 11, 32, 32)
    logits, _ = net(f, cond, 8)
    assert logits.shape == (2, 8, 10, 32, 32)
    bottleneck = net.fc[0]
    assert isinstance(bottleneck, torch.nn.Linear)
    torch.nn.init.zeros_(bottleneck.weight)  # the bottleneck cut: the skips still carry audio
    assert not torch.allclose(net(torch.zeros_like(f), cond, 8)[0], net(f, cond, 8)[0])
    plain = PoseGuidedGenerator(10, base=8, depth=3, refine=False)
    coarse, frame = plain(
        torch.rand(1, 10, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(1, 10, 32, 32)
    )
    assert torch.equal(coarse, frame)
