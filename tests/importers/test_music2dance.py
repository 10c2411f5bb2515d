"""Music-to-Dance importer: a fixture in the original layout with the dataset's defects (slow
waltz, music late against the motion, centimetres), bad inputs, and pybullet's DeepMimic clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audiovis.data.importers.music2dance import (
    ORIGINAL_TO_STUDIO,
    detect_slowdown,
    import_music2dance,
    read_skeletons,
    resample_motion,
    to_studio_joints,
)
from audiovis.data.schema import DataError, check_dataset, read_manifest
from audiovis.data.studio.rigs.dance import J
from audiovis.media import write_audio

FPS = 25
RATE = 22050  # the recordings' rate is not the import's: the importer resamples
OFFSET_FRAMES = 10  # the music is 0.4 s late against the motion in every fixture dance

# a standing pose in the original's 23-joint order (see the importer's docstring), centimetres
_STAND = np.array([
    [0, 172, 0], [0, 160, 0], [0, 95, 0],  # two head points, root
    [18, 145, 0], [22, 118, 0], [24, 93, 0], [25, 85, 0],  # left arm
    [9, 90, 0], [10, 50, 0], [10, 8, 0], [10, 2, 10], [10, 2, 14],  # left leg, foot points
    [-18, 145, 0], [-22, 118, 0], [-24, 93, 0], [-25, 85, 0],  # right arm
    [-9, 90, 0], [-10, 50, 0], [-10, 8, 0], [-10, 2, 10], [-10, 2, 14],  # right leg, foot
    [0, 120, 0], [0, 130, 0],  # the two points the visualiser leaves out
], np.float64)  # fmt: skip


def _beats(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Irregular beat times (intervals 0.4-0.7 s), so only one lag lines them up."""
    times, t = [], 0.5
    while t < seconds - 0.3:
        times.append(t)
        t += rng.uniform(0.4, 0.7)
    return np.array(times)


def _motion(beats: np.ndarray, frames: int) -> np.ndarray:
    """A sway from side to side that comes to rest (zero speed) on each beat."""
    t = np.arange(frames) / FPS
    side = np.zeros(frames)
    for k in range(len(beats) - 1):
        inside = (t >= beats[k]) & (t < beats[k + 1])
        s = (t[inside] - beats[k]) / (beats[k + 1] - beats[k])
        smooth = s * s * (3 - 2 * s)
        side[inside] = (-1) ** k * (1 - 2 * smooth)
    side[t >= beats[-1]] = (-1) ** (len(beats) - 1)
    side[t < beats[0]] = 1.0
    sk = np.repeat(_STAND[None], frames, 0)
    sk[:, :, 0] += 6 * side[:, None]  # the whole body sways 6 cm
    sk[:, [3, 4, 5, 6, 12, 13, 14, 15], 1] += 10 * side[:, None]  # the arms rise and fall
    return sk


def _clicks(beats: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    audio = 0.02 * np.sin(2 * np.pi * 220 * t)
    burst = rng.normal(0, 1, int(0.03 * RATE)) * np.exp(-np.arange(int(0.03 * RATE)) / 120)
    for b in beats:
        i = int(b * RATE)
        audio[i : i + len(burst)] += 0.6 * burst[: len(audio) - i]
    return np.clip(audio, -1, 1)


def write_original_layout(root: Path, per_style: int = 3, seconds: float = 6.0,
                          styles: str = "CW", seed: int = 0) -> Path:  # fmt: skip
    """Dances in the Music-to-Dance layout: DANCE_<style>_<n>/skeletons.json, config.json,
    audio_extract.wav; waltzes (W) stored 4x slow; centimetres; the music 0.4 s late."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lead = 1.0  # seconds of music before start_position
    for code in styles:
        for n in range(1, per_style + 1):
            folder = root / f"DANCE_{code}_{n}"
            folder.mkdir(exist_ok=True)
            frames = int(seconds * FPS)
            beats = _beats(rng, seconds)
            skel = _motion(beats, frames)
            if code == "W":
                skel = resample_motion(skel, 0.25)  # the defect: four times slower
            music_beats = beats + lead + OFFSET_FRAMES / FPS
            audio = _clicks(music_beats, seconds + lead + 1.0, rng)
            write_audio(folder / "audio_extract.wav", audio.astype(np.float32), RATE)
            start = int(lead * FPS)
            (folder / "config.json").write_text(json.dumps(
                {"start_position": start, "end_position": start + frames}))  # fmt: skip
            center = skel[:, 2].copy()
            (folder / "skeletons.json").write_text(json.dumps({
                "length": len(skel), "center": center.round(3).tolist(),
                "skeletons": (skel - center[:, None]).round(3).tolist(),
            }))  # fmt: skip
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    src = write_original_layout(tmp_path_factory.mktemp("m2d") / "src")
    out = src.parent / "dataset"
    reports = import_music2dance(src, out, sample_rate=8000)
    return out, reports


def test_import_undoes_the_slow_waltz_and_finds_the_offset(imported: tuple[Path, list]) -> None:
    out, reports = imported
    by_name = {r.name: r for r in reports}
    assert len(reports) == 6
    for name, report in by_name.items():
        assert report.slowdown == (4 if name.startswith("waltz") else 1), report.line()
        assert abs(report.offset_frames - OFFSET_FRAMES) <= 1, report.line()
        assert report.scale == 0.01
    assert check_dataset(out) == []
    manifest = read_manifest(out)
    assert manifest.classes["style"] == ["chacha", "waltz"]
    assert sorted(p["split"] for p in manifest.performances) == [
        "test",
        "test",
        "train",
        "train",
        "val",
        "val",
    ]
    pose = np.load(out / "waltz_DANCE_W_1" / "pose3d.npy")
    assert pose.shape[1:] == (23, 3) and abs(len(pose) - 150 + OFFSET_FRAMES) <= 1
    assert np.allclose(pose[:, J["pelvis"]], 0)
    thigh = np.linalg.norm(pose[:, J["l_hip"]] - pose[:, J["l_knee"]], axis=-1)
    assert np.allclose(thigh, 0.40, atol=0.01)  # centimetres became metres
    assert (pose[:, J["head"], 1] > 0.6).all()  # upright, y up


def test_joint_mapping_rows_are_affine_and_documented_points_map() -> None:
    assert np.allclose(ORIGINAL_TO_STUDIO.sum(1), 1.0)  # translations carry over
    ours = to_studio_joints(_STAND[None])[0]
    assert np.allclose(ours[J["pelvis"]], _STAND[2])
    assert np.allclose(ours[J["l_toe"]], (_STAND[10] + _STAND[11]) / 2)
    assert np.allclose(ours[J["neck"]], (_STAND[3] + _STAND[12]) / 2)
    assert np.allclose(to_studio_joints(_STAND[None], mirror=True)[0][J["l_wrist"]], _STAND[14])


def test_slowdown_detection() -> None:
    assert detect_slowdown(400, 100) == 4
    assert detect_slowdown(103, 100) == 1
    with pytest.raises(ValueError, match="slow-down"):
        detect_slowdown(250, 100)


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_bad_skeletons_fail_with_the_file_and_the_problem(tmp_path: Path) -> None:
    good = _STAND[None].repeat(20, 0)
    with pytest.raises(DataError, match=r"missing key\(s\) \['skeletons'\]"):
        read_skeletons(_write(tmp_path / "a.json", {"length": 20, "center": []}))
    with pytest.raises(DataError, match=r"shape \(20, 22, 3\), expected \(N, 23, 3\)"):
        read_skeletons(
            _write(tmp_path / "b.json", {"length": 20, "skeletons": good[:, :22].tolist()})
        )
    with pytest.raises(DataError, match="'length' is 21"):
        read_skeletons(_write(tmp_path / "c.json", {"length": 21, "skeletons": good.tolist()}))
    holes = good.copy()
    holes[5:7, 3, 0] = np.nan  # a short gap: interpolated, and said so
    skel, notes = read_skeletons(
        _write(tmp_path / "d.json", {"length": 20, "skeletons": holes.tolist()})
    )
    assert np.isfinite(skel).all() and notes and "2 frame(s)" in notes[0]
    holes[8:18] = np.nan
    with pytest.raises(DataError, match="cannot be interpolated"):
        read_skeletons(_write(tmp_path / "e.json", {"length": 20, "skeletons": holes.tolist()}))


def test_music_shorter_than_the_motion_crops_the_motion_and_says_so(tmp_path: Path) -> None:
    src = write_original_layout(tmp_path / "src", per_style=1, styles="C")
    folder = src / "DANCE_C_1"
    config = json.loads((folder / "config.json").read_text())
    # the recording stops 2 s after start_position while 6 s were danced
    from audiovis.media import read_audio

    audio, rate = read_audio(folder / "audio_extract.wav")
    write_audio(folder / "audio_extract.wav", audio[: int((config["start_position"] / FPS
                                                             + 2.0) * rate)], rate)  # fmt: skip
    (report,) = import_music2dance(src, tmp_path / "out", sample_rate=8000)
    assert report.frames < 2 * FPS and any("cropped" in n for n in report.notes)


def test_deepmimic_dance_clip_reads_as_a_rigid_skeleton() -> None:
    pytest.importorskip("pybullet", reason="pybullet (PyPI wheel) is not installed")
    from audiovis.data.importers.music2dance import (
        deepmimic_clip_path,
        deepmimic_to_studio,
        read_deepmimic,
    )

    joints = read_deepmimic(deepmimic_clip_path("humanoid3d_dance_a"))
    assert joints.shape[1:] == (15, 3) and len(joints) > 25  # over a second at 25 fps
    thigh = np.linalg.norm(joints[:, 9] - joints[:, 10], axis=-1)  # right hip → right knee
    assert thigh.std() < 1e-3 and 0.3 < thigh.mean() < 0.5  # rigid, human-sized (metres)
    ours = deepmimic_to_studio(joints)
    assert ours.shape[1:] == (23, 3)
    assert (ours[:, J["head"], 1] > ours[:, J["chest"], 1]).all()
    assert (ours[:, J["l_ankle"], 1] < ours[:, J["l_knee"], 1]).all()
