"""The studio builder: plan and splits, determinism, resume, ground truth, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiovis.audio import OnsetEnvelope
from audiovis.data.schema import check_dataset, read_manifest, read_meta
from audiovis.data.studio import StudioConfig, build, plan
from audiovis.errors import AudiovisError
from audiovis.media import read_audio
from tests.conftest import run_cli

SMALL = StudioConfig(
    instruments=("piano", "cello"),
    styles=("waltz",),
    minutes=0.6,
    segment_seconds=4.0,
    size=64,
    use_corpus=False,
)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("studio"), SMALL, workers=2, progress=False)


def test_plan_splits_by_piece_and_covers_every_category() -> None:
    jobs = plan(StudioConfig(minutes=10, use_corpus=False))
    split_of: dict[str, set[str]] = {}
    for job in jobs:
        split_of.setdefault(job.piece, set()).add(job.split)
    assert all(len(s) == 1 for s in split_of.values())  # no piece in two splits
    for category in ("piano", "cello", "violin", "trombone", "guitar"):
        splits = {j.split for j in jobs if j.category == category}
        assert splits == {"train", "val", "test"}
    assert {j.style for j in jobs if j.category == "dance"} == {"waltz", "chacha", "tango", "rumba"}
    per_category = 10 * 60 / 9
    assert len([j for j in jobs if j.category == "piano"]) * 20 >= per_category


def test_built_dataset_is_valid_and_labelled(small_root: Path) -> None:
    assert check_dataset(small_root) == []
    manifest = read_manifest(small_root)
    assert manifest.classes["instrument"] == ["cello", "dance", "piano"]
    assert "waltz" in manifest.classes["style"]
    for entry in manifest.performances:
        meta = read_meta(small_root / entry["name"])
        assert meta.size == (64, 64) and meta.fps == 25.0
        assert "roll" in meta.streams or meta.instrument == "dance"
        assert "pose3d" in meta.streams or meta.instrument != "dance"


def test_build_is_deterministic_for_a_seed(small_root: Path, tmp_path: Path) -> None:
    config = StudioConfig(
        instruments=("cello",),
        styles=(),
        minutes=0.2,
        segment_seconds=4.0,
        size=64,
        use_corpus=False,
    )
    a = build(tmp_path / "a", config, workers=1, progress=False)
    b = build(tmp_path / "b", config, workers=1, progress=False)
    for entry in read_manifest(a).performances:
        for name in ("frames.npy", "keypoints.npy", "roll.npy"):
            assert np.array_equal(np.load(a / entry["name"] / name),
                                  np.load(b / entry["name"] / name))  # fmt: skip
        wa, _ = read_audio(a / entry["name"] / "audio.flac")
        wb, _ = read_audio(b / entry["name"] / "audio.flac")
        assert np.array_equal(wa, wb)


def test_build_resumes_only_what_is_missing(tmp_path: Path) -> None:
    config = StudioConfig(
        instruments=("cello",),
        styles=(),
        minutes=0.2,
        segment_seconds=4.0,
        size=64,
        use_corpus=False,
    )
    root = build(tmp_path, config, workers=1, progress=False)
    names = read_manifest(root).names()
    import shutil

    shutil.rmtree(root / names[1])
    done: list[str] = []
    build(root, config, workers=1, progress=False, on_done=done.append)
    assert done == [names[1]] and check_dataset(root) == []


def test_audio_onsets_line_up_with_key_presses(small_root: Path) -> None:
    manifest = read_manifest(small_root)
    piano = next(p["name"] for p in manifest.performances if p["instrument"] == "piano")
    folder = small_root / piano
    meta = read_meta(folder)
    roll = np.load(folder / "roll.npy")
    audio, sr = read_audio(folder / "audio.flac")
    hop = int(sr / meta.fps)  # one onset value per video frame
    env = OnsetEnvelope(sr, 1024, hop)(torch.from_numpy(audio)[None])[0, 0].numpy()
    onsets = np.flatnonzero((roll[1:] > roll[:-1]).any(axis=1)) + 1
    peaks = [t for t in range(1, len(env) - 1) if env[t] >= env[t - 1] and env[t] >= env[t + 1]
             and env[t] > 0.3 * env.max()]  # fmt: skip
    hits = [min(abs(p - o) for p in peaks) <= 1 for o in onsets]
    assert len(onsets) >= 5 and np.mean(hits) >= 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instruments": ("banjo",)}, "unknown instruments ['banjo']"),
        ({"styles": ("polka",)}, "unknown dance styles ['polka']"),
        ({"soundfont": "/no/such.sf2"}, "/no/such.sf2: soundfont not found"),
    ],
)
def test_bad_config_is_one_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AudiovisError, match=message.replace("[", r"\[").replace("]", r"\]")):
        StudioConfig(**kwargs)  # type: ignore[arg-type]


def test_cli_corrupt_midi_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    result = run_cli(
        "studio",
        "build",
        "--out",
        str(tmp_path / "out"),
        "--instruments",
        "piano",
        "--styles",
        "--midi",
        str(bad),
        tool="audiovis",
    )
    assert result.returncode == 2
    assert "broken.mid: not a readable MIDI file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((tmp_path / "out").glob("piano_*"))  # nothing half-written


@pytest.mark.slow
def test_datamodule_builds_the_embedded_default_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiovis.data import AudioVisualDataModule

    monkeypatch.setenv("AUDIOVIS_CACHE", str(tmp_path))  # a fresh machine: nothing cached
    dm = AudioVisualDataModule(
        streams=["audio", "video", "keypoints", "instrument"],
        image_size=64,
        clip_frames=16,
        batch_size=4,
    )
    dm.prepare_data()
    dm.setup("fit")
    root = dm.dataset_root()
    assert root.is_relative_to(tmp_path) and check_dataset(root, deep=False) == []
    manifest = read_manifest(root)
    assert sum(p["duration"] for p in manifest.performances) >= 600  # >= 10 minutes
    assert set(manifest.classes["instrument"]) == {"piano", "cello", "violin", "trombone",
                                                   "guitar", "dance"}  # fmt: skip
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 16, 3, 64, 64) and batch["audio"].shape == (4, 16 * 640)


def test_cli_refuses_to_build_over_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = run_cli(
        "studio",
        "build",
        "--out",
        str(tmp_path),
        "--instruments",
        "piano",
        "--styles",
        tool="audiovis",
    )
    assert result.returncode == 2 and "not empty and not a studio dataset" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # untouched


def test_datamodule_studio_settings_build_their_own_set_and_held_out_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiovis.data import AudioVisualDataModule

    monkeypatch.setenv("AUDIOVIS_CACHE", str(tmp_path / "cache"))
    studio = {"instruments": ["cello"], "styles": [], "minutes": 0.3, "segment_seconds": 4,
              "size": 32, "use_corpus": False}  # fmt: skip
    dm = AudioVisualDataModule(studio=studio, streams=["audio", "instrument"], image_size=32)
    root = dm.dataset_root()
    assert root.parent == tmp_path / "cache" / "studio" and root.name.startswith("custom-")
    manifest = read_manifest(root)
    assert {p["instrument"] for p in manifest.performances} == {"cello"}
    assert len(manifest.performances) >= 3 and dm.dataset_root() == root  # built once
    # a demo finds the held-out piece of the set a config trains on
    config = tmp_path / "fit.yaml"
    config.write_text(f"data:\n  init_args:\n    studio: {json.dumps(studio)}\n")
    env = {"AUDIOVIS_CACHE": str(tmp_path / "cache")}
    result = run_cli("studio", "held-out", "cello", "--config", str(config), tool="audiovis",
                     env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    test_piece = [p["name"] for p in manifest.performances if p["split"] == "test"]
    assert result.stdout.split() == [str(root / test_piece[0] / "audio.flac")]
    with pytest.raises(AudiovisError, match=r"unknown settings \['colour'\]"):
        AudioVisualDataModule(studio={"colour": "red"}).dataset_root()
