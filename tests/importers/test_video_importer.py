"""The raw video importer (`audiovis prepare`): the sports2d demo (a real person video) with and
without mediapipe, a studio performance round-tripped through an .mp4, bad inputs, variable
frame rates, portrait rotation, and the pure parts (layout mapping, hands, crop)."""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from audiovis.data.importers.video import (
    NO_COUNTERPART,
    NoAudioTrack,
    NoPersonFound,
    PrepareConfig,
    assign_hands,
    body25_from_mediapipe,
    mux_audio,
    parse_crop,
    pose_available,
    prepare,
    prepare_video,
    probe_video,
    square_of,
    stable_square_crop,
)
from audiovis.data.schema import check_dataset, read_manifest, read_meta
from audiovis.errors import AudiovisError, MissingDependency
from audiovis.media import read_audio, write_video
from tests.conftest import assert_ok, run_cli

needs_pose = pytest.mark.skipif(
    not pose_available(),
    reason="mediapipe 0.10.21 is not importable (pip install 'audiovis[pose]')",
)


def sports2d_demo() -> Path:
    """The sports2d wheel's demo video (installed with `pip install --no-deps sports2d`)."""
    spec = importlib.util.find_spec("Sports2D")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sports2d is not installed (pip install --no-deps sports2d==0.8.34)")
    path = Path(next(iter(spec.submodule_search_locations))) / "Demo" / "demo.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is missing from the sports2d package")
    return path


def real_recording() -> tuple[np.ndarray, int]:
    """music21's 20 s recording of one instrument (the demo video's own track is silent)."""
    import soundfile as sf

    path = importlib.resources.files("music21") / "audioSearch" / "test_audio.wav"
    audio, rate = sf.read(str(path), dtype="float32")
    return audio, int(rate)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1.5 s of the sports2d demo (VP9, 1768x994, 30 fps) with a real recording as
    its sound."""
    audio, rate = real_recording()
    out = tmp_path_factory.mktemp("demo") / "Sports Demo.mp4"
    return mux_audio(sports2d_demo(), audio, rate, out, seconds=1.5)


def tone_video(
    path: Path, frames: np.ndarray, fps: float = 25, audio: bool = True, rate: int = 16000
) -> Path:
    seconds = len(frames) / fps
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    return write_video(path, frames, fps, wave if audio else None, rate if audio else None)


def squares(num: int = 25, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames with a bright square moving left to right (no person in them)."""
    frames = np.full((num, height, width, 3), 30, np.uint8)
    for i in range(num):
        x = int(i * (width - 12) / max(num - 1, 1))
        frames[i, 10:22, x : x + 12] = (250, 200, 40)
    return frames


# ------------------------------------------------------------------------------ pure parts


def test_body25_mapping_on_a_hand_made_pose() -> None:
    landmarks = np.zeros((33, 3), np.float32)
    landmarks[:, 0] = np.linspace(0.0, 0.96, 33)  # x encodes the mediapipe index
    landmarks[:, 1] = 0.5
    landmarks[:, 2] = 0.9
    landmarks[11, 2], landmarks[12, 2] = 0.8, 0.6  # shoulders
    body = body25_from_mediapipe(landmarks)
    index = np.round(body[:, 0] / 0.03).astype(int)
    assert index[0] == 0  # nose
    assert index[2] == 12 and index[5] == 11  # right, left shoulder
    assert index[4] == 16 and index[7] == 15  # wrists
    assert index[11] == 28 and index[14] == 27  # ankles
    assert index[19] == 31 and index[22] == 32 and index[21] == 29 and index[24] == 30  # feet
    np.testing.assert_allclose(body[1, 0], (landmarks[11, 0] + landmarks[12, 0]) / 2)  # neck
    assert body[1, 2] == pytest.approx(0.6)  # the weaker shoulder
    np.testing.assert_allclose(body[8, 0], (landmarks[23, 0] + landmarks[24, 0]) / 2)  # mid-hip
    assert (body[list(NO_COUNTERPART), 2] == 0).all()  # small toes: no counterpart


def test_hands_go_to_the_nearest_wrist_or_the_swapped_label() -> None:
    body = np.zeros((25, 3), np.float32)
    body[4] = (0.2, 0.5, 0.9)  # right wrist, image left
    body[7] = (0.8, 0.5, 0.9)  # left wrist
    near_left = np.tile([0.78, 0.52], (21, 1))
    near_right = np.tile([0.22, 0.48], (21, 1))
    hands = assign_hands([(near_left, "Right", 0.9), (near_right, "Right", 0.8)], body)
    assert hands["left"][0] is near_left and hands["right"][0] is near_right
    body[:, 2] = 0  # wrists unseen: mediapipe's label assumes a mirrored image, so it is swapped
    hands = assign_hands([(near_left, "Left", 0.9)], body)
    assert list(hands) == ["right"]


def test_stable_crop_ignores_a_few_wrong_boxes() -> None:
    boxes = np.array([[400, 100, 500, 400]] * 40 + [[0, 0, 10, 10]] + [[np.nan] * 4] * 3, float)
    x, y, side = stable_square_crop(boxes, width=1000, height=600, margin=0.1)
    assert side == 360  # the 300 px tall performer plus 10 % each side
    assert (x, y) == (270, 70)
    # a performer at the edge: the square stays inside the frame
    x, y, side = stable_square_crop(np.array([[950, 0, 1000, 600]]), 1000, 600)
    assert (x, y, side) == (400, 0, 600)


def test_crop_argument() -> None:
    assert parse_crop("auto") is None
    assert parse_crop("10, 20,300,200") == (10, 20, 300, 200)
    with pytest.raises(AudiovisError, match="x,y,w,h"):
        parse_crop("10,20,300")
    assert square_of((10, 20, 300, 200), 1000, 600) == (10, 0, 300)
    assert square_of((900, 500, 200, 200), 1000, 600) == (800, 400, 200)


# ------------------------------------------------------------------------ the sports2d demo


def test_the_demo_imports_without_pose(demo: Path, tmp_path: Path) -> None:
    config = PrepareConfig(size=96, pose=False)
    report = prepare(demo, tmp_path, config, workers=1, progress=False)
    assert report.imported == ["sports_demo"] and not report.failed
    assert check_dataset(tmp_path) == []
    meta = read_meta(tmp_path / "sports_demo")
    assert set(meta.streams) >= {"video", "audio"} and "keypoints" not in meta.streams
    assert meta.num_frames == 38  # 1.5 s at 25 fps (the cut ends at a packet)
    assert "pip install" in meta.extra["missing_streams"]["keypoints"]
    frames = np.load(tmp_path / "sports_demo" / "frames.npy")
    assert frames.shape == (38, 96, 96, 3) and frames.std() > 20
    audio, rate = read_audio(tmp_path / "sports_demo" / "audio.flac")
    assert rate == 16000 and len(audio) == 38 * 640
    # a rerun skips it; another size redoes it
    assert prepare(demo, tmp_path, config, workers=1, progress=False).skipped == ["sports_demo"]
    again = prepare(demo, tmp_path, PrepareConfig(size=64, pose=False), 1, progress=False)
    assert again.imported == ["sports_demo"]


def test_without_mediapipe_frames_and_sound_import_and_say_how_to_get_keypoints(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audiovis.data.importers.video as video

    monkeypatch.setattr(video, "pose_available", lambda: False)
    report = prepare(demo, tmp_path, PrepareConfig(size=32), workers=1, progress=False)
    assert report.imported == ["sports_demo"]
    assert "mediapipe is not installed" in report.warnings[0]
    assert "pip install" in report.warnings[0]
    meta = read_meta(tmp_path / "sports_demo")
    assert "keypoints" not in meta.streams and "mask" not in meta.streams
    assert meta.extra["crop"] == {"x": 387, "y": 0, "side": 994}  # the centre square
    with pytest.raises(MissingDependency, match=r"mediapipe 0\.10\.21.*pip install"):
        prepare(demo, tmp_path, PrepareConfig(size=32, pose=True), workers=1, progress=False)


@needs_pose
def test_the_demo_imports_with_keypoints_and_masks(demo: Path, tmp_path: Path) -> None:
    meta = prepare_video(demo, tmp_path, PrepareConfig(size=128, pose=True))
    assert check_dataset(tmp_path) == [] or not (tmp_path / "manifest.json").exists()
    folder = tmp_path / meta.name
    keypoints = np.load(folder / "keypoints.npy")
    mask = np.load(folder / "mask.npy")
    assert keypoints.shape == (meta.num_frames, 67, 3) and mask.shape == (meta.num_frames, 128, 128)
    assert meta.extra["person_frames"] > 0.8
    seen = keypoints[:, :25, 2] > 0.5
    assert seen[:, [0, 1, 2, 5, 8, 9, 12]].mean() > 0.7  # head, shoulders, hips mostly seen
    # the confident body points lie on the person mask (a few pixels of slack)
    t, k = np.nonzero(seen)
    xy = np.clip((keypoints[t, k, :2] * 128).astype(int), 0, 127)
    from scipy.ndimage import binary_dilation

    grown = np.stack([binary_dilation(m, iterations=4) for m in mask])
    assert grown[t, xy[:, 1], xy[:, 0]].mean() > 0.8
    # the person is upright: the nose above the hips, the neck between the shoulders
    both = seen[:, 0] & seen[:, 8]
    assert (keypoints[both, 0, 1] < keypoints[both, 8, 1]).all()
    assert 0.02 < mask.mean() < 0.5


@needs_pose
def test_studio_performance_round_trips_through_mp4(tmp_path: Path) -> None:
    """A studio dancer written as an .mp4 comes back with keypoints near the studio's own."""
    from audiovis.data.studio import StudioConfig, plan, render_job

    studio = StudioConfig(instruments=(), styles=("waltz",), minutes=0.1, segment_seconds=2,
                          size=192, use_corpus=False)  # fmt: skip
    meta = render_job(plan(studio)[0], studio, tmp_path / "studio")
    folder = tmp_path / "studio" / meta.name
    frames, truth = np.load(folder / "frames.npy"), np.load(folder / "keypoints.npy")
    audio, rate = read_audio(folder / "audio.flac")
    video = write_video(tmp_path / "dancer.mp4", frames, meta.fps, audio, rate)
    back = prepare_video(video, tmp_path / "out", PrepareConfig(size=192, crop=(0, 0, 192, 192)))
    found = np.load(tmp_path / "out" / back.name / "keypoints.npy")
    n = min(len(found), len(truth))
    both = (truth[:n, :25, 2] > 0.5) & (found[:n, :25, 2] > 0.5)
    distance = np.linalg.norm(truth[:n, :25, :2] - found[:n, :25, :2], axis=-1)[both]
    mean, median = distance.mean(), np.median(distance)
    print(f"studio round trip: {both.mean():.2f} of body points compared, mean distance "
          f"{mean:.4f} of the frame side (median {median:.4f})")  # fmt: skip
    assert back.extra["person_frames"] > 0.9
    assert both.mean() > 0.6
    assert mean < 0.04  # measured 0.011 on a 4 s waltz at 256 px
    mask, studio_mask = (
        np.load(tmp_path / "out" / back.name / "mask.npy"),
        np.load(folder / "mask.npy"),
    )
    iou = (mask[:n] & studio_mask[:n]).sum() / (mask[:n] | studio_mask[:n]).sum()
    assert iou > 0.7  # measured 0.95


# ------------------------------------------------------------------------------ bad inputs


def test_a_video_without_sound_is_refused(tmp_path: Path) -> None:
    silent = tone_video(tmp_path / "silent.mp4", squares(), audio=False)
    with pytest.raises(NoAudioTrack, match="no audio track"):
        prepare_video(silent, tmp_path / "out", PrepareConfig(pose=False, size=32))
    assert not (tmp_path / "out" / "silent").exists()


def test_the_demo_as_shipped_is_refused_for_its_silent_track(tmp_path: Path) -> None:
    with pytest.raises(NoAudioTrack, match="silent"):
        prepare_video(sports2d_demo(), tmp_path, PrepareConfig(pose=False, size=32))


@needs_pose
def test_no_person_found(tmp_path: Path) -> None:
    video = tone_video(tmp_path / "squares.mp4", squares(num=12))
    with pytest.raises(NoPersonFound, match="no person found"):
        prepare_video(video, tmp_path / "out", PrepareConfig(size=32))
    # frames and sound alone still import
    meta = prepare_video(video, tmp_path / "out", PrepareConfig(size=32, pose=False))
    assert "keypoints" not in meta.streams


def test_a_folder_with_a_corrupt_and_a_silent_file(tmp_path: Path) -> None:
    """Through the real command: the bad files are reported, the good ones imported."""
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    tone_video(videos / "good one.mp4", squares())
    tone_video(videos / "sub" / "good two.mov", squares(num=15))
    tone_video(videos / "mute.mp4", squares(), audio=False)
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    (videos / "notes.txt").write_text("not a video")
    root = tmp_path / "root"
    args = ("prepare", str(videos), "--out", str(root), "--size", "32", "--no-pose",
            "--workers", "2", "--quiet", "--instrument", "cello")  # fmt: skip
    result = run_cli(*args, tool="audiovis")
    assert result.returncode == 1, result.stderr
    assert "broken.mp4" in result.stderr and "no audio track" in result.stderr
    assert "2 imported, 0 already done, 2 failed" in result.stdout
    manifest = read_manifest(root)
    assert sorted(manifest.names()) == ["good_one", "good_two"]
    assert manifest.classes["instrument"] == ["cello"]
    assert check_dataset(root) == []
    again = run_cli(*args, tool="audiovis")
    assert "0 imported, 2 already done, 2 failed" in again.stdout
    checked = run_cli("check-data", str(root), tool="audiovis")
    assert_ok(checked)
    assert "alignment: good_one" in checked.stderr


def test_variable_frame_rate_is_resampled_by_timestamps(tmp_path: Path) -> None:
    """Frames shown at irregular times: output frame k shows the latest frame shown by k/fps."""
    import av

    times = [0.0, 0.1, 0.15, 0.4, 0.45, 0.5, 0.9]  # seconds; the last lasts one nominal frame
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "0"}  # lossless, so brightness encodes the frame's index
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i, t in enumerate(times):
            image = np.full((32, 32, 3), 20 + 30 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round(t * 1000)
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        wave = (0.3 * np.sin(np.arange(16000) / 3)).astype(np.float32)[None]
        sound = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        sound.sample_rate, sound.pts = 16000, 0
        for packet in [*audio.encode(sound), *audio.encode(None)]:
            container.mux(packet)
    meta = prepare_video(path, tmp_path / "out", PrepareConfig(fps=20, size=32, pose=False))
    frames = np.load(tmp_path / "out" / meta.name / "frames.npy")
    index = np.round((frames[:, 16, 16].mean(-1) - 20) / 30).astype(int)
    expected = [int(np.searchsorted(times, k / 20 + 1e-6) - 1) for k in range(len(frames))]
    assert index.tolist() == expected
    assert len(frames) >= 19  # 0 … 0.9 s, then the last frame's own duration


def test_portrait_rotation_metadata_is_applied(tmp_path: Path) -> None:
    """A phone's portrait video: coded landscape, turned upright by its display matrix."""
    import av

    path = tmp_path / "portrait.mp4"
    coded = np.zeros((32, 64, 3), np.uint8)  # 64 wide, 32 high as coded
    coded[:, :16] = 255  # the coded frame's left edge is white
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(-90)  # what a phone held upright records
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(coded, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        wave = (0.3 * np.sin(np.arange(6400) / 3)).astype(np.float32)[None]
        sound = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        sound.sample_rate, sound.pts = 16000, 0
        for packet in [*audio.encode(sound), *audio.encode(None)]:
            container.mux(packet)
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (32, 64, 270)
    config = PrepareConfig(size=32, pose=False, crop=(0, 0, 32, 32))  # the upright frame's top
    meta = prepare_video(path, tmp_path / "out", config)
    frame = np.load(tmp_path / "out" / meta.name / "frames.npy")[0].mean(-1)
    # turned 90 degrees clockwise: the coded left edge is now the top
    assert frame[:6].mean() > 200 and frame[20:].mean() < 40
    extra = json.loads((tmp_path / "out" / meta.name / "meta.json").read_text())["extra"]
    assert extra["source_rotation"] == 270
