"""GANterpretation: the change curve and inflection points on hand-built cases, the walk (frame
count, classes, a new z per inflection, images that change where the audio changes), bad input
(silence, a threshold nothing crosses, unknown classes, other models' files), the
ClassConditionalGAN through the real CLI, and the sliced Wasserstein distance by hand."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from audiovis.errors import AudiovisError, FileProblem
from audiovis.media import probe
from audiovis.models.ganterpretation import (
    ClassConditionalGAN,
    Ganterpreter,
    beat_times,
    change_curve,
    coupling,
    frame_change,
    inflection_points,
    load_generator,
    random_walk_latents,
    sliced_wasserstein,
    spectral_change,
)
from audiovis.networks.biggan import ConditionalGenerator
from tests.conftest import CONF, assert_ok, run_cli

SR = 8000


def tiny_generator(num_classes: int = 3) -> ConditionalGenerator:
    torch.manual_seed(0)
    return ConditionalGenerator(num_classes, 16, channels=4, z_dim=8, embed_dim=8,
                                attention=None).eval()  # fmt: skip


def sectioned_audio(seconds: float = 6.0, busy: tuple[float, float] = (2.0, 4.0)) -> np.ndarray:
    """A quiet steady tone, a busy passage of fast notes, the quiet tone again."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    notes = np.repeat(rng.choice([220.0, 330.0, 440.0, 550.0, 660.0], 64), SR // 8)
    notes = np.resize(notes, len(t))
    audio = 0.05 * np.sin(2 * np.pi * 220 * t)
    inside = (t >= busy[0]) & (t < busy[1])
    audio[inside] = 0.5 * np.sin(2 * np.pi * np.cumsum(notes) / SR)[inside]
    return audio.astype(np.float32)


def walker(**kwargs: object) -> Ganterpreter:
    options: dict[str, object] = dict(fps=25.0, threshold=0.05, smoothing=0.2, rolling=0.4,
                                      truncation=0.5, batch_size=32)  # fmt: skip
    options.update(kwargs)
    return Ganterpreter(tiny_generator(), **options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- hand-built cases


def test_inflection_points_on_a_hand_built_curve() -> None:
    curve = np.full(200, 0.5)
    curve[50], curve[120], curve[125] = 1.0, 0.0, 0.45
    points, largest = inflection_points(curve, threshold=0.1, rolling=10)
    assert points.tolist() == [50, 120]  # 125 is too shallow and too close to 120
    assert largest == pytest.approx(0.5)
    assert inflection_points(curve, 0.1, 10, kind="max")[0].tolist() == [50]
    assert inflection_points(curve, 0.1, 10, kind="min")[0].tolist() == [120]
    # the rolling mean after 50 holds nothing unusual: 50 stands out by 0.5 exactly
    assert inflection_points(curve, 0.5, 10)[0].tolist() == []
    # points closer than the rolling length: only the first is kept
    curve[55] = 1.0
    curve[54] = curve[56] = 0.5
    assert inflection_points(curve, 0.1, 10)[0].tolist()[:1] == [50]
    assert 55 not in inflection_points(curve, 0.1, 10)[0].tolist()


def test_spectral_change_in_chunks_equals_one_pass_and_peaks_at_the_onset() -> None:
    t = np.arange(SR) / SR
    audio = np.where(t >= 0.5, np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    whole = spectral_change(audio, 256, 128, chunk=10**6)
    assert np.allclose(spectral_change(audio, 256, 128, chunk=7), whole)
    # the change is largest where the window first reaches the tone (0.5 s)
    onset_column = np.argmax(whole)
    assert abs(((onset_column + 0.5) * 128 + 128) / SR - 0.5) < 256 / SR
    curve = change_curve(audio, SR, smoothing=0.1)
    assert curve.smooth.max() == pytest.approx(1.0) and not curve.silent


def test_sliced_wasserstein_by_hand() -> None:
    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[5.0], [2.0]])
    # sorted projections (0, 1) and (2, 5): |0 - 2| and |1 - 5| average to 3
    assert sliced_wasserstein(a, b, torch.eye(1)).item() == pytest.approx(3.0)
    x = torch.randn(8, 4)
    assert sliced_wasserstein(x, x[torch.randperm(8)], torch.eye(4)).item() == 0.0


def test_coupling_and_frame_change_by_hand() -> None:
    frames = np.zeros((3, 2, 2, 3), np.uint8)
    frames[1] = 255
    assert frame_change(frames).tolist() == [1.0, 1.0]
    assert coupling(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert coupling(np.ones(3), np.arange(3.0)) == 0.0


# ---------------------------------------------------------------------------------- the walk


def test_video_length_classes_and_noise_per_inflection() -> None:
    audio = sectioned_audio(5.2)
    w = walker(seed=3)
    plan = w.plan(audio, SR, classes=[2, 0])
    assert plan.num_frames == round(5.2 * 25) == len(plan.alpha)
    assert plan.keys[0] == 0 and plan.keys[-1] == plan.num_frames - 1 and len(plan.keys) > 2
    assert plan.classes[:2].tolist() == [2, 0]
    assert all(a != b for a, b in zip(plan.classes[:-1], plan.classes[1:], strict=True))
    # a new z at each inflection point, met exactly at its key frame
    assert len({tuple(z) for z in plan.noise.round(5)}) == len(plan.keys)
    z, y = plan.latents(0, plan.num_frames, 3)
    for k, frame in enumerate(plan.keys[:-1]):
        assert np.allclose(z[frame].numpy(), plan.noise[k], atol=1e-5)
        assert y[frame].argmax().item() == plan.classes[k]
    assert torch.allclose(y.sum(1), torch.ones(plan.num_frames))
    # the same seed draws the same walk; another fps changes only the frame count
    assert np.array_equal(w.plan(audio, SR, [2, 0]).classes, plan.classes)
    assert walker(fps=10.0).plan(audio, SR).num_frames == 52


def test_image_change_peaks_where_the_audio_changes(tmp_path: Path) -> None:
    audio = sectioned_audio(6.0, busy=(2.0, 4.0))
    w = walker(kind="both")
    out, plan = w.render(audio, SR, tmp_path / "walk.mp4", classes=[0, 1, 2])
    info = probe(out)
    assert info["video"]["frames"] == 150 == plan.num_frames
    assert info["audio"]["sample_rate"] == SR
    frames = np.concatenate(list(w.frames(plan)))
    change = frame_change(frames)
    busy = slice(2 * 25, 4 * 25)
    quiet = np.r_[0:40, 110:149]
    assert change[busy].mean() > 2 * change[quiet].mean()
    assert coupling(change, plan.change[1:]) > 0.5
    # the audio-blind random walk does not follow the music
    z, y = random_walk_latents(plan.num_frames, 8, 3, seed=0)
    with torch.no_grad():
        rw = w.generator(torch.from_numpy(z), torch.from_numpy(y), 0.5)
    from audiovis.media import to_uint8

    assert abs(coupling(frame_change(to_uint8(rw)), plan.change[1:])) < 0.5


def test_beat_pulses_follow_a_click_track() -> None:
    t = np.arange(8 * SR) / SR
    clicks = np.zeros_like(t)
    for beat in np.arange(0.25, 8, 0.5):  # 120 BPM
        i = int(beat * SR)
        clicks[i : i + 200] = np.sin(2 * np.pi * 1000 * t[:200]) * np.hanning(200)
    beats = beat_times(clicks.astype(np.float32), SR)
    assert len(beats) >= 12
    assert np.median(np.diff(beats)) == pytest.approx(0.5, abs=0.04)
    plan = walker(beat_pulse=0.5, threshold=0.01).plan(
        clicks.astype(np.float32) + sectioned_audio(8.0), SR
    )
    assert len(plan.beats) >= 12
    z_pulse, _ = plan.latents(0, plan.num_frames, 3)
    plan.pulse = 0.0
    z_plain, _ = plan.latents(0, plan.num_frames, 3)
    gap = (z_pulse - z_plain).norm(dim=1).numpy()
    beats = plan.beats[plan.beats < plan.num_frames - 10]
    assert gap[beats].mean() > 3 * gap[beats + 10].mean()  # pulses decay within 0.4 s


# --------------------------------------------------------------------------------- bad input


def test_silent_audio_drifts_slowly_without_error() -> None:
    w = walker()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = w.plan(np.zeros(3 * SR, np.float32), SR)
    assert any("silent" in str(c.message) for c in caught)
    assert plan.keys.tolist() == [0, 74]
    assert np.allclose(np.diff(plan.alpha), 1 / 74)
    frames = np.concatenate(list(w.frames(plan)))
    change = frame_change(frames)
    assert np.isfinite(change).all() and change.max() < 0.05


def test_a_threshold_no_point_crosses_is_one_clear_error() -> None:
    with pytest.raises(AudiovisError, match=r"crosses the threshold 0\.9.*use a threshold below"):
        walker(threshold=0.9).plan(sectioned_audio(), SR)


def test_unknown_class_ids_are_one_clear_error() -> None:
    with pytest.raises(AudiovisError, match=r"unknown class id\(s\) \[3, -1\].*3 classes, 0\.\.2"):
        walker().plan(sectioned_audio(), SR, classes=[0, 3, -1])


def test_load_generator_refuses_other_models(tmp_path: Path) -> None:
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"net.weight": torch.zeros(2)}, "hyper_parameters": {}}, other)
    with pytest.raises(FileProblem, match="other.ckpt: is a Lightning checkpoint of another"):
        load_generator(other)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(FileProblem, match="junk.ckpt: is not a PyTorch"):
        load_generator(junk)


def test_checkpoint_round_trip_keeps_generator_and_class_names(tmp_path: Path) -> None:
    model = ClassConditionalGAN(num_classes=2, image_size=16, channels=4, z_dim=8, embed_dim=8,
                                attention=None)  # fmt: skip
    model.class_names = ["cello", "piano"]
    checkpoint: dict[str, object] = {"state_dict": model.state_dict(),
                                     "hyper_parameters": dict(model.hparams)}  # fmt: skip
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "gan.ckpt")
    generator, names = load_generator(tmp_path / "gan.ckpt")
    assert names == ["cello", "piano"]
    model.generator.eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(generator(z, torch.tensor([0, 1])),
                           model.generator(z, torch.tensor([0, 1])))  # fmt: skip


# ------------------------------------------------------------------------ the GAN itself


def test_gan_losses_and_label_choice() -> None:
    model = ClassConditionalGAN(
        label="style", num_classes=3, image_size=16, channels=4, z_dim=8, embed_dim=8,
        attention=None, frames_per_clip=2,
    )  # fmt: skip
    assert model.streams == ("video", "style")
    batch = {"video": torch.rand(2, 5, 3, 16, 16) * 2 - 1, "style": torch.tensor([0, 2])}
    frames, classes = model.images(batch)
    assert frames.shape == (4, 3, 16, 16) and classes.tolist() == [0, 0, 2, 2]
    d_loss, logs = model.discriminator_loss(batch)
    g_loss, _ = model.generator_loss(batch)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss) and "train/d_real" in logs
    with pytest.raises(AudiovisError, match="model.label"):
        ClassConditionalGAN(label="tempo")
    with pytest.raises(AudiovisError, match="beyond model.num_classes"):
        model.images({"video": batch["video"], "style": torch.tensor([0, 5])})


def test_fit_fast_dev_run_through_the_cli(fixture_root: Path, tmp_path: Path) -> None:
    result = run_cli("fit", "--config", str(CONF / "ganterpretation.yaml"), "--data.root",
                     str(fixture_root), "--trainer.fast_dev_run", "1",
                     "--trainer.default_root_dir", str(tmp_path))  # fmt: skip
    assert_ok(result)
