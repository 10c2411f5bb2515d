"""The Sub-URMP importer on a fixture in the dataset's layout, generated here from studio
performers (img/<split>/<instrument>/<performer>/<clip>/*.jpg, chunk/<split>/.../<clip>.wav)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiovis.data.importers.suburmp import find_clips, import_suburmp
from audiovis.data.importers.video import PrepareConfig, pose_available
from audiovis.data.schema import check_dataset, read_manifest, read_meta
from audiovis.errors import AudiovisError
from tests.conftest import assert_ok, run_cli

SOURCE_FPS = 10  # frames per second of the fixture's image sequences
CLIP_SECONDS = 0.8


def make_suburmp(out: Path, size: int = 128) -> Path:
    """Two instruments, three performers, train and validation clips; one clip lacks sound.

    Frames come from a studio cellist (a rendered performer with keypoints mediapipe can
    find), written as JPEG sequences; each clip's sound is that stretch of the studio audio.
    """
    import soundfile as sf
    from PIL import Image

    from audiovis.data.studio import StudioConfig, plan, render_job

    studio = StudioConfig(instruments=("cello",), styles=(), minutes=0.1, segment_seconds=3.5,
                          size=size, use_corpus=False)  # fmt: skip
    meta = render_job(plan(studio)[0], studio, out / "studio")
    frames = np.load(out / "studio" / meta.name / "frames.npy")
    audio, rate = sf.read(out / "studio" / meta.name / "audio.flac", dtype="float32")
    root = out / "Sub-URMP"
    layout = [
        ("train", "cello", "01", "0"),
        ("train", "cello", "01", "1"),
        ("train", "trombone", "02", "0"),
        ("validation", "cello", "03", "0"),
    ]
    for k, (split, instrument, performer, clip) in enumerate(layout):
        start = k * CLIP_SECONDS
        clip_dir = root / "img" / split / instrument / performer / clip
        clip_dir.mkdir(parents=True)
        for i in range(int(CLIP_SECONDS * SOURCE_FPS)):
            image = frames[int((start + i / SOURCE_FPS) * meta.fps)]
            Image.fromarray(image).save(clip_dir / f"{instrument}{performer}_{i}.jpg", quality=92)
        sound = root / "chunk" / split / instrument / performer / f"{clip}.wav"
        sound.parent.mkdir(parents=True, exist_ok=True)
        piece = audio[int(start * rate) : int((start + CLIP_SECONDS) * rate)]
        sf.write(sound, piece, rate)
    # frames without sound: reported, not imported
    orphan = root / "img" / "train" / "trombone" / "02" / "9"
    orphan.mkdir(parents=True)
    (orphan / "x_0.jpg").write_bytes(
        (root / "img/train/trombone/02/0/trombone02_0.jpg").read_bytes()
    )
    return root


@pytest.fixture(scope="module")
def suburmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_suburmp(tmp_path_factory.mktemp("suburmp"))


def test_finds_clips_and_keeps_the_split(suburmp: Path) -> None:
    clips, problems = find_clips(suburmp)
    assert [(c.split, c.instrument, c.performer, c.clip) for c in clips] == [
        ("train", "cello", "01", "0"),
        ("train", "cello", "01", "1"),
        ("train", "trombone", "02", "0"),
        ("val", "cello", "03", "0"),
    ]
    assert [f.name for f in clips[0].frames[:3]] == ["cello01_0.jpg", "cello01_1.jpg",
                                                     "cello01_2.jpg"]  # fmt: skip
    assert len(problems) == 1 and "no sound" in problems[0] and "02/9" in problems[0]


def test_a_folder_that_is_not_sub_urmp(tmp_path: Path) -> None:
    with pytest.raises(AudiovisError, match="not a Sub-URMP root"):
        find_clips(tmp_path)


def test_imports_frames_and_sound_with_classes_and_splits(suburmp: Path, tmp_path: Path) -> None:
    config = PrepareConfig(fps=25, size=48, pose=False)
    report = import_suburmp(suburmp, tmp_path, config, workers=1, progress=False)
    assert len(report.imported) == 4 and not report.failed and len(report.warnings) == 1
    assert check_dataset(tmp_path) == []
    manifest = read_manifest(tmp_path)
    assert manifest.classes["instrument"] == ["cello", "trombone"]
    assert manifest.classes["performer"] == ["cello_01", "cello_03", "trombone_02"]
    assert {p["name"]: p["split"] for p in manifest.performances} == {
        "cello_01_0": "train",
        "cello_01_1": "train",
        "trombone_02_0": "train",
        "cello_03_0": "val",
    }
    meta = read_meta(tmp_path / "cello_01_1")
    assert meta.num_frames == 20  # 0.8 s at 25 fps
    assert meta.extra["source_fps"] == pytest.approx(SOURCE_FPS, rel=1e-3)
    frames = np.load(tmp_path / "cello_01_1" / "frames.npy")
    assert frames.shape == (20, 48, 48, 3)
    # 10 source frames per second shown at 25: each source frame held for 2 or 3 frames
    changes = np.flatnonzero(np.abs(np.diff(frames.astype(int), axis=0)).max(axis=(1, 2, 3)))
    assert len(changes) <= 8
    again = import_suburmp(suburmp, tmp_path, config, workers=1, progress=False)
    assert sorted(again.skipped) == sorted(report.imported) and not again.imported


@pytest.mark.skipif(not pose_available(), reason="mediapipe 0.10.21 is not importable")
def test_keypoints_and_masks_with_mediapipe(suburmp: Path, tmp_path: Path) -> None:
    config = PrepareConfig(fps=25, size=128, pose=True)
    import_suburmp(suburmp, tmp_path, config, workers=1, max_clips=1, progress=False)
    assert sorted(read_manifest(tmp_path).names()) == ["cello_01_0", "cello_03_0"]
    meta = read_meta(tmp_path / "cello_01_0")
    assert {"keypoints", "mask"} <= set(meta.streams)
    assert meta.extra["person_frames"] > 0.9
    keypoints = np.load(tmp_path / "cello_01_0" / "keypoints.npy")
    assert (keypoints[:, [0, 1, 2, 5], 2] > 0.5).mean() > 0.8  # head and shoulders


def test_the_command(suburmp: Path, tmp_path: Path) -> None:
    result = run_cli("prepare", str(suburmp), "--suburmp", "--out", str(tmp_path / "root"),
                     "--size", "32", "--no-pose", "--quiet", "--workers", "1",
                     tool="audiovis")  # fmt: skip
    assert_ok(result)
    assert "4 imported" in result.stdout and "no sound" in result.stderr
    assert len(read_manifest(tmp_path / "root").names()) == 4
