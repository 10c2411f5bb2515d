"""``audiovis ganterpret``: an .mp4 with its audio from a ClassConditionalGAN checkpoint (class
names accepted) and from BigGAN-deep weights in a folder; bad input gives one ``error:`` line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiovis.cli import main
from audiovis.media import probe, write_audio
from audiovis.models.ganterpretation import ClassConditionalGAN
from audiovis.networks.biggan import BigGANConfig, BigGANDeep, save_biggan

SR = 8000


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3.2 s: a quiet tone, fast notes, the tone again."""
    t = np.arange(int(3.2 * SR)) / SR
    notes = np.resize(np.repeat([220.0, 440.0, 330.0, 660.0, 550.0], SR // 8), len(t))
    audio = 0.05 * np.sin(2 * np.pi * 220 * t)
    busy = (t > 1.0) & (t < 2.2)
    audio[busy] = 0.5 * np.sin(2 * np.pi * np.cumsum(notes) / SR)[busy]
    return write_audio(tmp_path_factory.mktemp("song") / "song.wav", audio, SR)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint as Lightning writes it (state dict, hyper-parameters, class names)."""
    torch.manual_seed(0)
    model = ClassConditionalGAN(num_classes=2, image_size=16, channels=4, z_dim=8,
                                embed_dim=8, attention=None)  # fmt: skip
    model.class_names = ["cello", "piano"]
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(ckpt)
    path = tmp_path_factory.mktemp("ckpt") / "gan.ckpt"
    torch.save(ckpt, path)
    return path


ARGS = ["--smoothing", "0.2", "--rolling", "0.3", "--threshold", "0.05", "--quiet"]


def test_writes_video_with_audio_from_a_checkpoint(
    song: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "video.mp4"
    status = main(["ganterpret", "--audio", str(song), "--generator", str(checkpoint),
                   "--classes", "piano,0", "--out", str(out), *ARGS])  # fmt: skip
    assert status == 0
    info = probe(out)
    assert info["video"]["frames"] == 80 and info["video"]["fps"] == 25
    assert info["audio"]["sample_rate"] == SR and info["audio"]["seconds"] == pytest.approx(
        3.2, abs=0.1
    )
    assert "classes piano → cello" in capsys.readouterr().out


def test_biggan_weights_folder_at_another_fps(song: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = BigGANConfig(output_dim=16, z_dim=8, class_embed_dim=8, channel_width=4,
                          num_classes=10, layers=[(False, 16, 8), (True, 8, 4), (False, 4, 2),
                                                  (True, 2, 1)],
                          attention_layer_position=2, n_stats=5)  # fmt: skip
    folder = save_biggan(BigGANDeep(config), tmp_path / "biggan")
    out = tmp_path / "biggan.mp4"
    status = main(["ganterpret", "--audio", str(song), "--generator", str(folder),
                   "--classes", "3,7,1", "--fps", "10", "--out", str(out), *ARGS])  # fmt: skip
    assert status == 0 and probe(out)["video"]["frames"] == 32


@pytest.mark.parametrize(
    "case,expected",
    [
        ("unreadable", "song.txt"),
        ("unknown class", "unknown class id(s) [9]"),
        ("unknown name", "unknown class 'tuba'; this generator's classes: cello, piano"),
        ("threshold", "crosses the threshold 0.99"),
        ("other model", "other.bin: holds a"),
    ],
)
def test_bad_input_is_one_error_line(
    case: str,
    expected: str,
    song: Path,
    checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    audio, generator, extra = str(song), str(checkpoint), list(ARGS)
    if case == "unreadable":
        audio = str(tmp_path / "song.txt")
        Path(audio).write_text("not audio")
    elif case == "unknown class":
        extra += ["--classes", "0,9"]
    elif case == "unknown name":
        extra += ["--classes", "tuba"]
    elif case == "threshold":
        extra[extra.index("--threshold") + 1] = "0.99"
    else:
        generator = str(tmp_path / "other.bin")
        torch.save([torch.zeros(3)], generator)
    out = tmp_path / "out.mp4"
    status = main(["ganterpret", "--audio", audio, "--generator", generator, "--out", str(out),
                   *extra])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert status == 2 and not out.exists()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and expected in err


def test_silent_audio_gives_a_drifting_video(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = write_audio(tmp_path / "silence.wav", np.zeros(2 * SR, np.float32), SR)
    out = tmp_path / "still.mp4"
    status = main(["ganterpret", "--audio", str(silent), "--generator", str(checkpoint),
                   "--out", str(out), *ARGS])  # fmt: skip
    assert status == 0 and probe(out)["video"]["frames"] == 50
    assert "warning: the audio is silent" in capsys.readouterr().out
