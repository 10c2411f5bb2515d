"""Media I/O and drawing: video with audio, audio readers, atomic writers, skeletons, MIDI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch

from audiovis.media import (
    MediaError,
    VideoWriter,
    draw_heatmaps,
    draw_roll,
    draw_skeleton,
    midi_to_audio,
    probe,
    read_audio,
    read_video,
    to_uint8,
    write_audio,
    write_video,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, rate: int, lo: float = 0.0, hi: float = np.inf) -> float:
    """Frequency of the strongest FFT bin between ``lo`` and ``hi`` Hz."""
    freqs = np.fft.rfftfreq(len(wave), 1.0 / rate)
    mags = np.abs(np.fft.rfft(wave))
    band = (freqs >= lo) & (freqs <= hi)
    return float(freqs[band][mags[band].argmax()])


def split_frames(
    t: int, h: int, w: int, left: tuple[int, int, int], right: tuple[int, int, int]
) -> np.ndarray:
    """Frames whose left half is one colour and right half another."""
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[:, :, : w // 2] = left
    frames[:, :, w // 2 :] = right
    return frames


def grey_frames(levels: list[int] | np.ndarray, h: int = 32, w: int = 48) -> np.ndarray:
    return np.broadcast_to(
        np.asarray(levels, np.uint8)[:, None, None, None], (len(levels), h, w, 3)
    ).copy()


def mean_colour(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(-1, 3).astype(np.float64).mean(axis=0)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------- video + audio


@pytest.fixture(scope="module")
def av_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames 48x64 at 25 fps (left red, right blue) with a 1.6 s 440 Hz tone at 16 kHz."""
    path = tmp_path_factory.mktemp("av") / "clip.mp4"
    frames = split_frames(40, 48, 64, RED, BLUE)
    return write_video(path, frames, fps=25, audio=sine(440, 1.6, 16000), sample_rate=16000)


def test_probe_shows_video_and_audio_streams(av_clip: Path) -> None:
    info = probe(av_clip)
    assert info["video"] == {"frames": 40, "fps": 25.0, "width": 64, "height": 48}
    assert info["audio"]["sample_rate"] == 16000
    assert info["audio"]["channels"] == 1
    assert info["audio"]["seconds"] == pytest.approx(1.6, abs=0.1)


def test_read_video_gives_back_frames_and_colours(av_clip: Path) -> None:
    frames, fps = read_video(av_clip)
    assert frames.shape == (40, 48, 64, 3)
    assert frames.dtype == np.uint8
    assert fps == 25.0
    np.testing.assert_allclose(mean_colour(frames[:, :, :32]), RED, atol=20)
    np.testing.assert_allclose(mean_colour(frames[:, :, 32:]), BLUE, atol=20)


def test_read_audio_from_mp4_keeps_pitch_and_duration(av_clip: Path) -> None:
    wave, rate = read_audio(av_clip)
    assert rate == 16000
    assert wave.ndim == 1
    assert wave.dtype == np.float32
    assert len(wave) / rate == pytest.approx(1.6, abs=0.1)
    assert dominant_frequency(wave, rate) == pytest.approx(440, abs=5)
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.1)


def test_odd_frame_size_is_padded_to_even_sides(tmp_path: Path) -> None:
    frames = np.zeros((5, 33, 47, 3), np.uint8)
    frames[:, -1, :] = 255  # last row white
    frames[:, :, -1] = 255  # last column white
    path = write_video(tmp_path / "odd.mp4", frames, fps=25)
    assert probe(path)["video"]["width"] == 48
    assert probe(path)["video"]["height"] == 34
    back, _ = read_video(path)
    assert back.shape == (5, 34, 48, 3)
    # the padding repeats the last row and column, so both padded lines stay white
    assert back[:, 32:, :46].mean() > 200
    assert back[:, :32, 46:].mean() > 200
    assert back[:, :30, :44].mean() < 20


def test_video_writer_streams_batches_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out" / "stream.mp4"
    levels = [50] * 10 + [150] * 7 + [250] * 13
    with VideoWriter(path, fps=25) as writer:
        writer.write(grey_frames(levels[:10]))
        assert writer.frames_written == 10
        writer.write(grey_frames(levels[10:17]))
        writer.write(grey_frames(levels[17:18])[0])  # one (H, W, 3) frame
        assert writer.frames_written == 18
        writer.write(grey_frames(levels[18:]))
        assert writer.frames_written == 30
        assert not path.exists()  # only a hidden temporary file so far
        (tmp,) = path.parent.iterdir()
        assert tmp.name.startswith(".stream.")
    assert names(path.parent) == ["stream.mp4"]
    frames, _ = read_video(path)
    assert len(frames) == 30
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), levels, atol=4)


def test_video_writer_trims_long_audio_to_the_video(tmp_path: Path) -> None:
    path = tmp_path / "trim.mp4"
    with VideoWriter(path, fps=25, audio=sine(440, 3.0, 16000), sample_rate=16000) as writer:
        writer.write(grey_frames([100] * 25))
    assert probe(path)["audio"]["seconds"] == pytest.approx(1.0, abs=0.07)


def test_video_writer_leaves_nothing_when_the_body_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(tmp_path / "x.mp4", 25) as writer:
        writer.write(grey_frames([10, 20, 30]))
        raise RuntimeError("boom")
    assert names(tmp_path) == []
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(tmp_path / "y.mp4", 25):
        raise RuntimeError("boom")
    assert names(tmp_path) == []


def test_video_writer_without_frames_fails_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"), VideoWriter(tmp_path / "x.mp4", 25):
        pass
    assert names(tmp_path) == []


def test_video_writer_rejects_bad_frames(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "x.mp4", 25)
    with pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        writer.write(np.zeros((2, 8, 8), np.uint8))
    writer.abort()
    assert names(tmp_path) == []


# ----------------------------------------------------------------------- read_video resampling


@pytest.fixture(scope="module")
def ramp_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 frames at 25 fps; frame i is uniformly grey at level 5 * i."""
    path = tmp_path_factory.mktemp("ramp") / "ramp.mp4"
    return write_video(path, grey_frames(5 * np.arange(50)), fps=25)


def test_read_video_at_lower_fps_shows_the_latest_frame(ramp_clip: Path) -> None:
    frames, fps = read_video(ramp_clip, fps=10)
    assert fps == 10.0
    assert len(frames) == 20
    # output frame k at k / 10 s shows source frame floor(k * 25 / 10)
    expected = [5 * (k * 25 // 10) for k in range(20)]
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), expected, atol=2)


def test_read_video_at_higher_fps_repeats_frames(ramp_clip: Path) -> None:
    frames, fps = read_video(ramp_clip, fps=50)
    assert fps == 50.0
    assert len(frames) == 100
    expected = [5 * (k // 2) for k in range(100)]
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), expected, atol=2)


def test_read_video_max_frames(ramp_clip: Path) -> None:
    frames, _ = read_video(ramp_clip, max_frames=7)
    assert len(frames) == 7
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), 5 * np.arange(7), atol=2)


def test_read_video_int_size_centre_crops_a_square(tmp_path: Path) -> None:
    frames = np.zeros((3, 32, 48, 3), np.uint8)
    frames[:] = GREEN
    frames[:, :, :8] = RED  # the margins a centre crop of 32x32 removes
    frames[:, :, 40:] = RED
    path = write_video(tmp_path / "wide.mp4", frames, fps=25)
    square, _ = read_video(path, size=16)
    assert square.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(mean_colour(square), GREEN, atol=20)
    full, _ = read_video(path, size=32)  # same side: crop only
    assert full.shape == (3, 32, 32, 3)
    np.testing.assert_allclose(mean_colour(full), GREEN, atol=20)


def test_read_video_tuple_size_resizes(tmp_path: Path) -> None:
    path = write_video(tmp_path / "rb.mp4", split_frames(3, 32, 48, RED, BLUE), fps=25)
    frames, _ = read_video(path, size=(20, 30))
    assert frames.shape == (3, 20, 30, 3)
    np.testing.assert_allclose(mean_colour(frames[:, :, :12]), RED, atol=20)
    np.testing.assert_allclose(mean_colour(frames[:, :, 18:]), BLUE, atol=20)


# --------------------------------------------------------------------------------- read errors


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    sf.write(path, sine(440, 0.5, 16000), 16000)
    return path


def assert_media_error(err: pytest.ExceptionInfo[MediaError], path: Path, problem: str) -> None:
    assert str(path) in str(err.value)
    assert problem in str(err.value)
    assert err.value.path == path


def test_read_audio_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.wav"
    with pytest.raises(MediaError) as err:
        read_audio(path)
    assert_media_error(err, path, "no such file")


def test_read_audio_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(MediaError) as err:
        read_audio(path)
    assert_media_error(err, path, "empty")


@pytest.mark.parametrize("name", ["noise.wav", "noise.bin"])
def test_read_audio_random_bytes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MediaError) as err:
        read_audio(path)
    assert_media_error(err, path, "not a readable audio or video file")


def test_read_audio_text_file_with_wav_suffix(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not audio\n" * 20)
    with pytest.raises(MediaError) as err:
        read_audio(path)
    assert_media_error(err, path, "not a readable audio or video file")


def test_read_audio_silent_file(tmp_path: Path) -> None:
    path = tmp_path / "zeros.wav"
    sf.write(path, np.zeros(8000, np.float32), 16000)
    with pytest.raises(MediaError) as err:
        read_audio(path)
    assert_media_error(err, path, "silent")
    wave, rate = read_audio(path, allow_silent=True)
    assert rate == 16000
    np.testing.assert_array_equal(wave, np.zeros(8000, np.float32))


def test_read_audio_video_without_audio(tmp_path: Path) -> None:
    path = write_video(tmp_path / "mute.mp4", grey_frames([0, 0, 0]), fps=25)
    with pytest.raises(MediaError) as err:
        read_audio(path)
    assert_media_error(err, path, "no audio stream")


def test_read_audio_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        read_audio(tmp_path)
    assert_media_error(err, tmp_path, "is a directory")


def test_read_video_audio_only_file(tone_wav: Path) -> None:
    with pytest.raises(MediaError) as err:
        read_video(tone_wav)
    assert_media_error(err, tone_wav, "no video stream")


def test_read_video_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(MediaError) as err:
        read_video(path)
    assert_media_error(err, path, "not a readable video file")


def test_probe_audio_only_file(tone_wav: Path) -> None:
    info = probe(tone_wav)
    assert "video" not in info
    assert info["audio"]["sample_rate"] == 16000
    assert info["audio"]["seconds"] == pytest.approx(0.5)


# ------------------------------------------------------------------------ audio formats, rates


def test_stereo_is_downmixed_to_the_channel_mean(tmp_path: Path) -> None:
    left = sine(300, 0.25, 8000, amplitude=0.6)
    right = np.linspace(-0.4, 0.2, len(left), dtype=np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    mono, rate = read_audio(path)
    assert rate == 8000
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-6)
    both, _ = read_audio(path, mono=False)
    assert both.shape == (2, len(left))
    np.testing.assert_allclose(both[0], left, atol=1e-6)
    np.testing.assert_allclose(both[1], right, atol=1e-6)


def test_unsigned_8_bit_pcm_reads_as_float(tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    values = np.array([-1.0, -0.5, 0.0, 0.25, 0.5])  # all exact in 8 bits: (byte - 128) / 128
    sf.write(path, values, 8000, subtype="PCM_U8")
    wave, rate = read_audio(path)
    assert rate == 8000
    assert wave.dtype == np.float32
    np.testing.assert_array_equal(wave, values.astype(np.float32))


def test_resampling_keeps_frequency_and_sets_length(tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    sf.write(path, sine(1000, 1.0, 44100), 44100, subtype="FLOAT")
    wave, rate = read_audio(path, sample_rate=16000)
    assert rate == 16000
    assert len(wave) == 16000
    assert dominant_frequency(wave, rate) == pytest.approx(1000, abs=2)
    assert np.abs(wave[1000:-1000]).max() == pytest.approx(0.5, abs=0.02)


def test_write_audio_round_trip(tmp_path: Path) -> None:
    wave = sine(440, 0.25, 16000)
    path = write_audio(tmp_path / "sub" / "a.flac", wave, 16000)
    back, rate = read_audio(path)
    assert rate == 16000
    np.testing.assert_allclose(back, wave, atol=1e-4)  # 16-bit FLAC
    assert names(path.parent) == ["a.flac"]


def test_write_audio_unsupported_suffix_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "a.xyz"
    with pytest.raises(MediaError) as err:
        write_audio(path, sine(440, 0.1, 8000), 8000)
    assert_media_error(err, path, "unsupported audio suffix")
    assert names(tmp_path) == []


def test_write_audio_failure_keeps_the_existing_file(tmp_path: Path) -> None:
    xyz = tmp_path / "a.xyz"
    xyz.write_bytes(b"precious")
    with pytest.raises(MediaError):
        write_audio(xyz, sine(440, 0.1, 8000), 8000)
    assert xyz.read_bytes() == b"precious"

    wav = write_audio(tmp_path / "b.wav", sine(440, 0.1, 8000), 8000)
    before = wav.read_bytes()
    with pytest.raises(ValueError, match="too many dimensions"):
        write_audio(wav, np.zeros((2, 3, 4), np.float32), 8000)
    assert wav.read_bytes() == before
    assert names(tmp_path) == ["a.xyz", "b.wav"]


# ------------------------------------------------------------------------------------ drawing


def test_draw_skeleton_draws_the_edge_and_nothing_else() -> None:
    keypoints = np.array([[0.25, 0.5, 1.0], [0.75, 0.5, 1.0]])
    image = draw_skeleton((64, 64), keypoints, edges=[(0, 1)], width=4.0)
    assert image.shape == (64, 64, 3)
    assert image.dtype == np.uint8
    # the segment runs along y = 32 from x = 16 to x = 48; one edge is drawn in pure hue 0
    limb = (255, 38, 38)
    np.testing.assert_array_equal(image[30:34, 16:48], np.broadcast_to(limb, (4, 32, 3)))
    np.testing.assert_array_equal(image[5, 5], (0, 0, 0))
    np.testing.assert_array_equal(image[20, 32], (0, 0, 0))  # 12 px above the limb
    np.testing.assert_array_equal(image[32, 55], (0, 0, 0))  # beyond the end cap
    assert (image.sum(axis=-1) > 0).sum() < 40 * 8  # a thin capsule, not a filled area


def test_draw_skeleton_skips_unconfident_keypoints() -> None:
    keypoints = np.array([[0.25, 0.5, 1.0], [0.75, 0.5, 0.0]])
    image = draw_skeleton((64, 64), keypoints, edges=[(0, 1)], width=4.0)
    np.testing.assert_array_equal(image, np.zeros((64, 64, 3), np.uint8))


def test_draw_skeleton_over_an_image_keeps_the_background() -> None:
    background = np.full((32, 32, 3), 77, np.uint8)
    keypoints = np.array([[0.1, 0.1], [0.1, 0.9]])  # (K, 2): all confident
    image = draw_skeleton(background, keypoints, edges=[(0, 1)], width=2.0)
    np.testing.assert_array_equal(image[:, 20:], background[:, 20:])
    np.testing.assert_array_equal(image[10, 3], (255, 38, 38))
    np.testing.assert_array_equal(background, 77)  # the input is not modified


def test_draw_heatmaps_peak_at_each_keypoint() -> None:
    # keypoints at pixel centres: (col 10, row 20) and (col 50, row 5) of a 32x64 map
    keypoints = np.array([[10.5 / 64, 20.5 / 32, 0.8], [50.5 / 64, 5.5 / 32, 0.3]])
    maps = draw_heatmaps(keypoints, (32, 64), sigma=2.0)
    assert maps.shape == (2, 32, 64)
    assert maps.dtype == np.float32
    for k, (row, col, conf) in enumerate([(20, 10, 0.8), (5, 50, 0.3)]):
        assert np.unravel_index(maps[k].argmax(), maps[k].shape) == (row, col)
        assert maps[k, row, col] == pytest.approx(conf)
        # one pixel away: conf * exp(-1 / (2 sigma^2))
        assert maps[k, row, col + 1] == pytest.approx(conf * np.exp(-1 / 8))
    assert maps.min() >= 0.0


def test_draw_roll_shape_and_key_rows() -> None:
    roll = np.zeros((5, 88), np.float32)
    roll[2, 0] = 1.0  # A0 at frame 2
    roll[4, 87] = 1.0  # C8 at frame 4
    image = draw_roll(roll)
    assert image.shape == (176, 5, 3)
    assert image.dtype == np.uint8
    white = np.all(image == 255, axis=-1)
    assert set(zip(*np.nonzero(white), strict=True)) == {(174, 2), (175, 2), (0, 4), (1, 4)}
    assert np.all(image[~white] == 40)  # the rest is dark grey


def test_draw_roll_keeps_the_lowest_key_at_any_height() -> None:
    roll = np.zeros((3, 88), np.float32)
    roll[1, 0] = 1.0  # A0
    roll[2, 87] = 1.0  # C8
    image = draw_roll(roll, height=100)
    assert image.shape == (100, 3, 3)
    np.testing.assert_array_equal(image[-1, 1], (255, 255, 255))
    np.testing.assert_array_equal(image[0, 2], (255, 255, 255))


def test_draw_roll_cursor() -> None:
    image = draw_roll(np.zeros((4, 88)), height=88, cursor=1)
    np.testing.assert_array_equal(image[:, 1], np.broadcast_to((255, 40, 40), (88, 3)))
    np.testing.assert_array_equal(image[:, 0], 40)


def test_to_uint8_maps_range_and_layout() -> None:
    video = -torch.ones(2, 3, 4, 5)
    video[:, 0] = 1.0  # red channel full on
    video[1, 1, 0, 0] = 0.0
    out = to_uint8(video)
    assert out.shape == (2, 4, 5, 3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 2, 3], (255, 0, 0))
    np.testing.assert_array_equal(out[1, 0, 0], (255, 128, 0))
    arr = np.array([[[[-1.0, 1.0, 0.0], [-3.0, 2.0, 0.5]]]])  # (1, 1, 2, 3), clipped
    np.testing.assert_array_equal(to_uint8(arr), [[[[0, 255, 128], [0, 255, 191]]]])
    grey = to_uint8(torch.zeros(1, 1, 2, 2))  # one channel becomes three
    np.testing.assert_array_equal(grey, np.full((1, 2, 2, 3), 128))
    frames = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    np.testing.assert_array_equal(to_uint8(frames), frames)


# --------------------------------------------------------------------------------------- MIDI


def a4_midi() -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.append(pretty_midi.Note(velocity=100, pitch=69, start=0.0, end=1.0))
    midi.instruments.append(piano)
    return midi


def test_midi_to_audio_renders_the_note(tmp_path: Path) -> None:
    audio = midi_to_audio(a4_midi(), 16000)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert len(audio) >= 16000  # at least the note's second
    assert np.abs(audio).max() == pytest.approx(0.9, abs=1e-3)
    assert dominant_frequency(audio, 16000, 200, 1000) == pytest.approx(440, abs=10)
    path = tmp_path / "a4.mid"
    a4_midi().write(str(path))
    from_file = midi_to_audio(path, 16000)
    assert len(from_file) == len(audio)
    assert dominant_frequency(from_file, 16000, 200, 1000) == pytest.approx(440, abs=10)


def test_midi_to_audio_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.mid"
    path.write_bytes(b"MThd" + bytes(40))
    with pytest.raises(MediaError) as err:
        midi_to_audio(path, 16000)
    assert_media_error(err, path, "not a readable MIDI file")


def test_midi_to_audio_missing_soundfont(tmp_path: Path) -> None:
    soundfont = tmp_path / "missing.sf2"
    with pytest.raises(MediaError) as err:
        midi_to_audio(a4_midi(), 16000, soundfont=soundfont)
    assert_media_error(err, soundfont, "no such file")
