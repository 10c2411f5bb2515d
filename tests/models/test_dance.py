"""Dance WGANs: the CLI on the Music-to-Dance importer fixture, predict to a video with the
music, the networks' parts, the two-input gradient penalty, bad inputs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from audiovis.data.importers.music2dance import import_music2dance
from audiovis.errors import AudiovisError
from audiovis.media import probe, write_audio
from audiovis.models.dance import (
    AudioToDanceWGAN,
    DanceSequenceWGAN,
    DanceStyleClassifier,
    PoseWGAN,
    render_dance,
    two_input_gradient_penalty,
)
from audiovis.networks.dance import (
    AudioDanceCritic,
    CriticAudioEncoder,
    ResidualLinearBlock,
    WindowOnsets,
    audio_encoder,
)
from tests.conftest import CONF, run_cli
from tests.importers.test_music2dance import write_original_layout


@pytest.fixture(scope="module")
def dance_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The importer's fixture (original layout, with its defects) imported at 8 kHz."""
    src = write_original_layout(tmp_path_factory.mktemp("m2d") / "src", seconds=4.0)
    out = src.parent / "dataset"
    import_music2dance(src, out, sample_rate=8000)
    return out


def _song(path: Path, seconds: float = 3.0, rate: int = 8000) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    clicks = (np.sin(2 * np.pi * 2 * t) > 0.95).astype(np.float64)
    return write_audio(path, 0.3 * np.sin(2 * np.pi * 330 * t) + 0.5 * clicks, rate)


@pytest.mark.parametrize("name", ["dance_pose", "dance_sequence"])
def test_fast_dev_run_through_the_cli(name: str, dance_root: Path, tmp_path: Path) -> None:
    result = run_cli("fit", "--config", str(CONF / f"{name}.yaml"), "--data.root",
                     str(dance_root), "--trainer.fast_dev_run", "1",
                     "--trainer.default_root_dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_audio_model_fits_then_predicts_a_video_with_the_music(
    dance_root: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    common = ["--config", str(CONF / "dance_audio.yaml"), "--data.root", str(dance_root),
              "--trainer.default_root_dir", str(run)]  # fmt: skip
    result = run_cli("fit", *common, "--trainer.limit_train_batches", "2",
                     "--trainer.limit_val_batches", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    song = _song(tmp_path / "song.wav")
    result = run_cli("predict", *common, "--ckpt_path", "last", "--data.predict_audio", str(song))
    assert result.returncode == 0, result.stderr[-3000:]
    info = probe(run / "predictions" / "song.mp4")
    assert info["video"]["frames"] == 75 and info["audio"]["sample_rate"] == 8000
    joints = np.load(run / "predictions" / "song.joints.npy")
    assert joints.shape == (75, 23, 3) and np.isfinite(joints).all()


@pytest.mark.slow
def test_bad_inputs_through_the_cli(dance_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ["--config", str(CONF / "dance_sequence.yaml"), "--data.root", str(dance_root),
              "--trainer.default_root_dir", str(run)]  # fmt: skip
    assert run_cli("fit", *common, "--trainer.max_steps", "1").returncode == 0
    silent = write_audio(tmp_path / "silent.wav", np.zeros(8000 * 2), 8000)
    result = run_cli("predict", *common, "--ckpt_path", "last", "--data.predict_audio",
                     str(silent))  # fmt: skip
    assert result.returncode != 0 and "silent" in result.stderr.strip().splitlines()[-1]
    result = run_cli(
        "predict",
        *common,
        "--ckpt_path",
        "last",
        "--data.predict_audio",
        str(_song(tmp_path / "s.wav")),
        "--model.init_args.num_joints",
        "15",
    )
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "trained on 23 joints" in last, last


# ------------------------------------------------------------------------------ in-process


def tiny_audio(**kw: object) -> AudioToDanceWGAN:
    torch.manual_seed(0)
    args: dict = dict(sample_rate=8000, clip_frames=8, encoder_channels=4, encoder_out=16,
                      latent=20, audio_layers=1, noise=4, noise_hidden=4, width=32, blocks=1,
                      critic_channels=16, critic_blocks=1, code=8, critic_hidden=16,
                      critic_audio_channels=4, render_size=32)  # fmt: skip
    args.update(kw)
    return AudioToDanceWGAN(**args)


def dance_batch(b: int = 2, t: int = 8, context: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "pose3d": torch.randn(b, t, 23, 3, generator=g) * 0.3,
        "audio": torch.randn(b, (t + 2 * context) * 320, generator=g) * 0.1,
        "style": torch.zeros(b, dtype=torch.long),
    }


def test_residual_block_feeds_its_first_layer_into_its_second() -> None:
    torch.manual_seed(0)
    block = ResidualLinearBlock(8, norm="none")
    x = torch.randn(4, 8)
    before = block(x)
    with torch.no_grad():
        block.fc1.weight.mul_(2.0)  # the original's bug made fc1 irrelevant
    assert not torch.allclose(before, block(x))
    with torch.no_grad():
        block.fc2.weight.zero_()
        block.fc2.bias.zero_()
    assert torch.allclose(block(x), torch.relu(x))  # zero branch: the identity, activated


def test_audio_encoders_match_the_originals_sizes_at_16khz() -> None:
    # the last conv spans what is left of a 0.2 s window: kernel 2, 200 and 5 in the original
    kernels = {"default": 2, "unet": 200, "wavegan": 5}
    for kind, k in kernels.items():
        enc = audio_encoder(kind, 3200, 250, channels=4)  # the lengths do not depend on widths
        assert isinstance(enc.head, torch.nn.Conv1d) and enc.head.kernel_size == (k,)
        assert enc(torch.randn(3, 3200)).shape == (3, 250)
    assert CriticAudioEncoder(76800, 100).head.kernel_size == (75,)  # 4.8 s


def test_window_onsets_find_where_in_the_window_a_note_starts() -> None:
    onsets = WindowOnsets(3200, points=4)
    t = torch.arange(3200) / 16000
    windows = torch.zeros(3, 3200)
    for row, start in ((1, 400), (2, 2400)):  # a 440 Hz tone starting at this sample
        windows[row, start:] = 0.5 * torch.sin(2 * torch.pi * 440 * t[start:])
    strength = onsets(windows)
    assert strength.shape == (3, 4)
    assert torch.equal(strength[0], torch.zeros(4))  # silence has no onset
    assert strength[1].argmax() == 0 and strength[2].argmax() == 3  # first / last quarter
    assert strength[1, 0] > 5 * strength[1, 2:].max()  # a held tone adds no flux after it starts
    model = AudioToDanceWGAN(clip_frames=8, onset_points=4, encoder_channels=4)
    assert model.generator.audio_rnn.input_size == 250 + 4
    assert model(torch.randn(2, 8, 3200) * 0.1)[0].shape == (2, 8, 23, 3)
    assert WindowOnsets(320, points=2)(torch.randn(3, 320)).shape == (3, 2)  # 20 ms windows
    with pytest.raises(AudiovisError, match="onset_points must be >= 0"):
        AudioToDanceWGAN(clip_frames=8, onset_points=-1)


def test_frame_windows_are_centred_on_their_frames() -> None:
    model = tiny_audio(window_seconds=0.2)  # 1600 samples = 5 frames of 320
    t = 6
    audio = torch.arange((t + 4) * 320, dtype=torch.float32)[None]  # context of 2 frames
    win = model.frame_windows(audio, t)
    assert win.shape == (1, t, 1600)
    # frame k's samples start at (k + 2)·320 in the padded audio; its window starts 2 frames
    # earlier and its centre is the frame's centre
    for k in range(t):
        assert win[0, k, 0] == k * 320
        assert win[0, k, 800] == (k + 2) * 320 + 160
    whole = model.frame_windows(torch.arange(t * 320, dtype=torch.float32)[None], t)
    assert whole[0, 0, :640].abs().sum() == 0 and whole[0, 0, 640] == 0  # zero-padded start


def test_lookahead_moves_the_windows_later_and_needs_more_context() -> None:
    model = tiny_audio(window_seconds=0.2, lookahead_seconds=0.2)  # 5 frames of 320 ahead
    assert model.context_frames == 7 and tiny_audio().context_frames == 2
    t = 6
    audio = torch.arange((t + 14) * 320, dtype=torch.float32)[None] + 1  # 7 frames of context
    win = model.frame_windows(audio, t)
    for k in range(t):  # centred 5 frames after frame k's centre, (k + 7)·320 + 160
        assert win[0, k, 800] == (k + 12) * 320 + 160 + 1
    # a whole file: the last frames' windows run past the music into zeros
    whole = model.frame_windows(torch.ones(1, t * 320), t)
    assert whole[0, 0].sum() == t * 320 - (1600 - 640) and whole[0, -1].abs().sum() == 0
    # fit refuses data whose audio context is too short, or lopsided
    for context in ((2, 2), (7, 9)):
        model._trainer = SimpleNamespace(datamodule=SimpleNamespace(audio_context=context))
        with pytest.raises(AudiovisError, match=r"audio_context: \[7, 7\]"):
            model._check_audio_context()
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(audio_context=(7, 7)))
    model._check_audio_context()


def test_checkpoint_without_lookahead_loads_without_it(tmp_path: Path) -> None:
    model = tiny_audio()
    hparams = {k: v for k, v in model.hparams.items() if k != "lookahead_seconds"}
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams,
                "pytorch-lightning_version": "2.0.0"}, path)  # fmt: skip
    loaded = AudioToDanceWGAN.load_from_checkpoint(path, weights_only=False)
    assert loaded.lookahead == 0
    audio = torch.randn(1, 12 * 320)
    assert torch.equal(loaded.frame_windows(audio, 8), model.frame_windows(audio, 8))


def test_two_input_gradient_penalty_on_a_linear_critic() -> None:
    class Linear(torch.nn.Module):
        def forward(self, x: torch.Tensor, a: torch.Tensor, style: object = None) -> torch.Tensor:
            return 3 * x.flatten(1)[:, 0] + 4 * a[:, 0]  # ‖∇‖ = √(3² + 4²) = 5

    x = torch.randn(2, 3, 2)
    gp = two_input_gradient_penalty(Linear(), x, torch.randn_like(x), torch.randn(2, 5))
    assert torch.isclose(gp, torch.tensor(16.0))  # (5 − 1)²


def test_critic_without_audio_branch_and_penalty_still_work() -> None:
    critic = AudioDanceCritic(23, 8, 2560, 16, 1, 8, 16, 4, use_audio=False)
    x = torch.randn(2, 8, 23, 3)
    gp = two_input_gradient_penalty(critic, x, torch.randn_like(x), torch.randn(2, 2560))
    assert torch.isfinite(gp)


def test_critic_scores_the_same_with_its_audio_code_computed_once() -> None:
    torch.manual_seed(0)
    critic = AudioDanceCritic(23, 8, 2560, 16, 1, 8, 16, 4)
    real, fake, audio = torch.randn(3, 8, 23, 3), torch.randn(3, 8, 23, 3), torch.randn(3, 2560)
    code = critic.audio_code(audio)
    assert code is not None
    together = critic(torch.cat([real, fake]), audio, audio_code=code)
    apart = torch.cat([critic(real, audio), critic(fake, audio)])
    assert torch.allclose(together, apart, atol=1e-5)
    with pytest.raises(ValueError, match="audio codes"):
        critic(torch.randn(4, 8, 23, 3), audio, audio_code=code)
    assert AudioDanceCritic(23, 8, 2560, 16, 1, 8, 16, 4, use_audio=False).audio_code(audio) is None


def test_l1_baseline_has_no_adversarial_term_and_learns() -> None:
    model = tiny_audio(adversarial=False)
    batch = dance_batch()
    batch["pose3d"] = batch["pose3d"][:, :1].expand(-1, 8, -1, -1).clone()  # a fixed pose
    opt = torch.optim.Adam(model.generator.parameters(), 1e-2)
    losses = []
    for _ in range(12):
        loss, logs = model.generator_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert "train/adv" not in logs
    assert losses[-1] < 0.5 * losses[0]


def test_generation_of_any_length_and_conditioning() -> None:
    audio = torch.randn(int(8000 * 1.3)) * 0.1  # 32 frames
    model = tiny_audio().eval()
    with torch.no_grad():
        assert model.generate_dance(audio, chunk=7).shape == (32, 23, 3)
    seq = DanceSequenceWGAN(
        noise=4,
        hidden=4,
        layers=1,
        width=16,
        blocks=1,
        critic_channels=8,
        critic_blocks=1,
        clip_frames=8,
        num_styles=3,
        sample_rate=8000,
    )
    with torch.no_grad():
        out = seq.eval().generate_dance(audio, style=2, chunk=5)
    assert out.shape == (32, 23, 3)
    pose = PoseWGAN(latent=4, width=16, blocks=1, num_styles=3, sample_rate=8000).eval()
    with torch.no_grad():
        assert pose.generate_dance(audio, style=1).shape == (32, 23, 3)
    loss, _ = seq.train().discriminator_loss({"pose3d": torch.randn(2, 8, 23, 3),
                                              "style": torch.tensor([0, 2])})  # fmt: skip
    assert torch.isfinite(loss)


def test_bad_inputs_in_process() -> None:
    model = tiny_audio()
    ckpt = {"state_dict": {"stats.mean": torch.zeros(15, 3)}}
    with pytest.raises(AudiovisError, match="trained on 15 joints"):
        model.on_load_checkpoint(ckpt)
    with pytest.raises(AudiovisError, match="silent"):
        model.predict_step({"audio": torch.zeros(1, 8000), "name": ["quiet"]}, 0)
    with pytest.raises(AudiovisError, match="too short"):
        model.generate_dance(torch.randn(500))
    with pytest.raises(AudiovisError, match="num_styles"):
        tiny_audio(num_styles=2)._style({"style": torch.tensor([3])})
    seq = DanceSequenceWGAN(noise=4, hidden=4, layers=1, width=16, blocks=1, critic_channels=8,
                            critic_blocks=1, clip_frames=8, sample_rate=8000)  # fmt: skip
    with pytest.raises(AudiovisError, match="predict_audio"):
        seq.predict_step({"pose3d": torch.zeros(1, 8, 23, 3)}, 0)


def test_bce_variant_of_the_sequence_gan() -> None:
    seq = DanceSequenceWGAN(
        noise=4,
        hidden=4,
        layers=1,
        width=16,
        blocks=1,
        critic_channels=8,
        critic_blocks=1,
        clip_frames=8,
        sample_rate=8000,
        adversarial="bce",
    )
    batch = {"pose3d": torch.randn(2, 8, 23, 3), "style": torch.zeros(2, dtype=torch.long)}
    d_loss, d_logs = seq.discriminator_loss(batch)
    g_loss, g_logs = seq.generator_loss(batch)
    assert "train/gp" not in d_logs and torch.isfinite(d_loss) and d_loss > 0
    assert "train/tv" in g_logs and torch.isfinite(g_loss)
    with pytest.raises(AudiovisError, match="adversarial"):
        DanceSequenceWGAN(adversarial="hinge")


def test_render_shows_front_and_side() -> None:
    joints = np.zeros((3, 23, 3), np.float32)
    joints[:, 4, 1] = 0.6  # head above the pelvis
    video = render_dance(joints, size=32)
    assert video.shape == (3, 32, 64, 3) and video.max() > 0


def test_style_classifier_learns_two_separable_styles() -> None:
    torch.manual_seed(0)
    clf = DanceStyleClassifier(num_classes=2, channels=8, hidden=8)
    t = torch.arange(16) / 25
    slow = torch.sin(2 * torch.pi * 1 * t)[None, :, None, None].expand(8, 16, 23, 3)
    fast = torch.sin(2 * torch.pi * 4 * t)[None, :, None, None].expand(8, 16, 23, 3)
    batch = {"pose3d": torch.cat([slow, fast]) * 0.1 + 0.01 * torch.randn(16, 16, 23, 3),
             "style": torch.tensor([0] * 8 + [1] * 8)}  # fmt: skip
    opt = torch.optim.Adam(clf.parameters(), 2e-2)
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(clf(batch["pose3d"]), batch["style"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    predicted = clf.classify(batch["pose3d"].numpy())
    assert (predicted == batch["style"].numpy()).mean() == 1.0


def test_penalty_on_the_poses_only_leaves_out_the_audio_gradient() -> None:
    class Linear(torch.nn.Module):
        def forward(self, x: torch.Tensor, a: torch.Tensor, style: object = None,
                    audio_code: object = None) -> torch.Tensor:  # fmt: skip
            return 3 * x.flatten(1)[:, 0] + 4 * a[:, 0]

    x = torch.randn(2, 3, 2)
    gp = two_input_gradient_penalty(Linear(), x, torch.randn_like(x), torch.randn(2, 5),
                                    on_audio=False)  # fmt: skip
    assert torch.isclose(gp, torch.tensor(4.0))  # (3 − 1)², the audio's 4 left out
    # with the critic's audio code given: the same penalty, and its gradient still reaches
    # the audio branch's weights
    torch.manual_seed(0)
    critic = AudioDanceCritic(23, 8, 2560, 16, 1, 8, 16, 4)
    real, fake, audio = torch.randn(2, 8, 23, 3), torch.randn(2, 8, 23, 3), torch.randn(2, 2560)
    torch.manual_seed(1)
    plain = two_input_gradient_penalty(critic, real, fake, audio, on_audio=False)
    torch.manual_seed(1)
    shared = two_input_gradient_penalty(critic, real, fake, audio, None, False,
                                        critic.audio_code(audio))  # fmt: skip
    assert torch.allclose(plain, shared, atol=1e-5)
    shared.backward()
    assert critic.audio is not None and critic.audio.head.weight.grad is not None


def test_shared_dances_and_pose_only_penalty_train_through_lightning(
    dance_root: Path, tmp_path: Path
) -> None:
    import pytorch_lightning as pl

    from audiovis.data import AudioVisualDataModule

    model = tiny_audio(share_fake=True, gp_on_audio=False, n_critic=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dm = AudioVisualDataModule(root=dance_root, streams=["pose3d", "audio", "style"],
                               sample_rate=8000, clip_frames=8, batch_size=4,
                               audio_context=(2, 2))  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=3,
                         limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, dm)
    after = model.state_dict()
    for net in ("generator.decoder.out.weight", "discriminator.fuse.2.weight",
                "discriminator.audio.head.weight"):  # fmt: skip
        assert torch.isfinite(after[net]).all()
        assert not torch.equal(before[net], after[net]), f"{net} did not train"
    logged = trainer.callback_metrics
    assert "train/g_loss" in logged and "train/gp" in logged
