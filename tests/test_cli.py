"""The real console scripts, driven as a user types them, over the tiny test models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from audiovis.media import probe, read_audio, write_audio
from tests.conftest import CONF, run_cli
from tests.conftest import assert_ok as _ok

TINY = str(CONF / "tiny.yaml")


@pytest.fixture(scope="module")
def trained(fixture_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory after `lightning fit` of the tiny model (2 epochs)."""
    run = tmp_path_factory.mktemp("run")
    _ok(
        run_cli(
            "fit",
            "--config",
            TINY,
            "--data.root",
            str(fixture_root),
            "--trainer.default_root_dir",
            str(run),
        )
    )
    return run


def test_fit_trains_and_checkpoints(trained: Path) -> None:
    ckpts = {p.name for p in (trained / "checkpoints").glob("*.ckpt")}
    assert "last.ckpt" in ckpts and any(n.startswith("epoch=1") for n in ckpts)
    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] > 0
    saved = yaml.safe_load((trained / "config.yaml").read_text())
    assert saved["model"]["class_path"] == "tests.helpers.tiny.TinyAudioToFrame"


def test_training_lowers_the_loss(fixture_root: Path, trained: Path, tmp_path: Path) -> None:
    # an untrained model (the same seed, 0 epochs of fit) scores worse than the trained one
    def val_loss(*extra: str) -> float:
        result = run_cli(
            "validate",
            "--config",
            TINY,
            "--data.root",
            str(fixture_root),
            "--trainer.default_root_dir",
            str(tmp_path),
            *extra,
        )
        _ok(result)
        line = next(line for line in result.stdout.splitlines() if "val/loss" in line)
        return float(line.split()[-1])

    untrained = val_loss()
    after = val_loss("--ckpt_path", str(trained / "checkpoints" / "last.ckpt"))
    assert after < 0.8 * untrained


def test_predict_writes_mp4_with_sound(fixture_root: Path, trained: Path, tmp_path: Path) -> None:
    t = np.arange(8000 * 3) / 8000
    song = write_audio(tmp_path / "song.wav", 0.4 * np.sin(2 * np.pi * 330 * t), 8000)
    out = tmp_path / "out"
    _ok(
        run_cli(
            "predict",
            "--config",
            TINY,
            "--data.root",
            str(fixture_root),
            "--trainer.default_root_dir",
            str(trained),
            "--ckpt_path",
            "last",
            "--data.predict_audio",
            str(song),
            "--media_writer.output_dir",
            str(out),
        )
    )
    info = probe(out / "song.mp4")
    assert info["video"]["frames"] == 75 and info["video"]["width"] == 32
    assert info["audio"]["sample_rate"] == 8000 and abs(info["audio"]["seconds"] - 3.0) < 0.1
    audio, _ = read_audio(out / "song.mp4")
    spectrum = np.abs(np.fft.rfft(audio[:8000]))
    assert abs(np.argmax(spectrum) * 8000 / 8000 - 330) < 3  # the input music, muxed in
    assert (out / "song.wav").is_file()


def test_predict_without_files_uses_test_split(
    fixture_root: Path, trained: Path, tmp_path: Path
) -> None:
    _ok(
        run_cli(
            "predict",
            "--config",
            TINY,
            "--data.root",
            str(fixture_root),
            "--trainer.default_root_dir",
            str(trained),
            "--ckpt_path",
            "last",
            "--media_writer.output_dir",
            str(tmp_path),
        )
    )
    assert len(list(tmp_path.glob("*.mp4"))) == 6  # 50 frames of test data / 8 per clip


def test_config_composition_and_dotted_overrides(fixture_root: Path, tmp_path: Path) -> None:
    second = tmp_path / "more.yaml"
    second.write_text("model:\n  init_args:\n    hidden: 7\ntrainer:\n  max_epochs: 5\n")
    result = run_cli(
        "fit",
        "--config",
        TINY,
        "--config",
        str(second),
        "--model.init_args.hidden=9",
        "--data.root",
        str(fixture_root),
        "--print_config",
    )
    _ok(result)
    config = yaml.safe_load(result.stdout)
    assert config["model"]["init_args"]["hidden"] == 9  # the command line wins
    assert config["trainer"]["max_epochs"] == 5  # the later file wins
    assert config["model"]["init_args"]["image_size"] == 32  # the first file still counts


def test_audiovis_script_is_the_same_cli(fixture_root: Path) -> None:
    result = run_cli(
        "fit", "--config", TINY, "--data.root", str(fixture_root), "--print_config", tool="audiovis"
    )
    _ok(result)
    assert yaml.safe_load(result.stdout)["data"]["init_args"]["clip_frames"] == 8


@pytest.mark.slow
def test_rerun_into_the_same_directory(fixture_root: Path, tmp_path: Path) -> None:
    args = (
        "fit",
        "--config",
        TINY,
        "--data.root",
        str(fixture_root),
        "--trainer.max_epochs",
        "1",
        "--trainer.default_root_dir",
        str(tmp_path),
    )
    _ok(run_cli(*args))
    _ok(run_cli(*args))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--config", "missing.yaml"), "missing.yaml"),
        (("--model.class_path", "audiovis.models.NoSuchModel"), "NoSuchModel"),
        (("--trainer.max_epochs=abc",), "trainer.max_epochs"),
        (("--model.init_args.hidden=xx",), "hidden"),
        (("--data.init_args.clip_frames=0",), "clip_frames"),
        (("--data.streams=[bogus]",), "bogus"),
        (("--data.root", "/no/such/dir"), "/no/such/dir"),
    ],
)
def test_user_mistakes_get_one_line(
    fixture_root: Path,
    extra: tuple[str, ...],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # in-process (the same `main` the console script calls) to save a Python start per case;
    # the subprocess tests below cover the console script itself
    from audiovis.cli import main

    try:
        status = main(["fit", "--config", TINY, "--data.root", str(fixture_root), *extra])
    except SystemExit as stop:
        status = int(stop.code or 0)
    stderr = capsys.readouterr().err
    assert status == 2
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr


def test_missing_stream_names_model_stream_and_root(tmp_path: Path) -> None:
    from audiovis.data.schema import write_manifest, write_performance
    from tests.helpers.fixture import make_performance

    meta, arrays, audio = make_performance(
        np.random.default_rng(0), "solo", 1.0, 32, 25.0, 8000, "cello"
    )
    del arrays["video"]
    write_performance(tmp_path, meta, arrays, audio)
    write_manifest(tmp_path, [(meta, "train")])
    result = run_cli("fit", "--config", TINY, "--data.root", str(tmp_path))
    assert result.returncode == 2
    assert "TinyAudioToFrame needs stream 'video'" in result.stderr
    assert str(tmp_path) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", ["wandb", "tensorboard"])
def test_media_logging_offline(fixture_root: Path, tmp_path: Path, backend: str) -> None:
    result = run_cli(
        "fit",
        "--config",
        TINY,
        "--config",
        f"experiments/logging/{backend}.yaml",
        "--data.root",
        str(fixture_root),
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--trainer.max_epochs",
        "1",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        env={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)},
    )
    _ok(result)
    videos = list(tmp_path.rglob("media/epoch=0/*.mp4"))
    assert len(videos) == 2 and probe(videos[0])["audio"]["sample_rate"] == 8000
    if backend == "wandb":  # the offline run holds the videos, ready for `wandb sync`
        assert len(list((tmp_path / "wandb").rglob("media/videos/**/*.mp4"))) == 2
    else:
        assert list(tmp_path.rglob("events.out.tfevents.*"))


def test_checkpoint_that_does_not_fit_is_one_line(
    fixture_root: Path, trained: Path, tmp_path: Path
) -> None:
    # a checkpoint without hyperparameters (saved by other code) is loaded into the configured
    # model; when the shapes differ the user gets one line, not a state_dict dump
    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    for key in [k for k in ckpt if "hparams" in k or "hyper_parameters" in k]:
        del ckpt[key]
    bare = tmp_path / "bare.ckpt"
    torch.save(ckpt, bare)
    result = run_cli(
        "validate",
        "--config",
        TINY,
        "--data.root",
        str(fixture_root),
        "--ckpt_path",
        str(bare),
        "--model.init_args.hidden=7",
        "--trainer.default_root_dir",
        str(tmp_path / "validate"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "checkpoint does not fit the configured model" in errors[0]
