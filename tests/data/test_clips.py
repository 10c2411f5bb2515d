"""Aligned windows: ClipDataset, the DataModule's cache and checks, MediaFileDataset, resuming."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from audiovis.data import AudioVisualDataModule, ClipDataset, MediaFileDataset
from audiovis.data.clips import StreamFiles
from audiovis.data.schema import ARRAY_STREAMS, read_meta, write_manifest, write_performance
from audiovis.errors import AudiovisError
from audiovis.media import MediaError, write_audio, write_video
from tests.helpers.fixture import make_performance

SR, FPS = 8000, 25.0  # the fixture's rates: 320 samples per frame
PER_FRAME = 320
ARRAYS = ("video", "mask", "keypoints", "pose3d", "roll")


def stream_files(root: Path, name: str, cache: Path) -> StreamFiles:
    """A performance's files as the DataModule hands them over: audio as a float32 .npy."""
    folder = root / name
    wave, rate = sf.read(folder / "audio.flac", dtype="float32")
    assert rate == SR
    audio = cache / f"{name}_audio.npy"
    audio.parent.mkdir(parents=True, exist_ok=True)
    np.save(audio, wave)
    arrays = {s: folder / ARRAY_STREAMS[s].filename for s in ARRAYS}
    return StreamFiles(meta=read_meta(folder), arrays=arrays, audio=audio, labels={"style": 0})


@pytest.fixture(scope="module")
def fixture_files(
    fixture_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[StreamFiles]:
    cache = tmp_path_factory.mktemp("clips")
    return [stream_files(fixture_root, f"perf{i:02d}", cache) for i in range(6)]


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    windowed = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed, n=1 << 16))
    return float(np.argmax(spectrum)) * rate / (1 << 16)


def key_frequency(key: int) -> float:
    """Frequency of piano key ``key`` (0 = A0) in equal temperament."""
    return 440.0 * 2 ** ((key + 21 - 69) / 12)


class FakeModel:
    """Stands in for a LightningModule: the DataModule reads only its class name and streams."""

    streams: tuple[str, ...] = ()


class PianoRollModel(FakeModel):
    streams = ("audio", "roll")


def clips_of(dm: AudioVisualDataModule, name: str) -> ClipDataset:
    dataset = dm.datasets[name]
    assert isinstance(dataset, ClipDataset)
    return dataset


def attach(dm: AudioVisualDataModule, model: FakeModel) -> None:
    """A trainer-like object: the DataModule asks it for the model and the stage."""
    dm.trainer = SimpleNamespace(  # type: ignore[assignment]
        lightning_module=model, state=SimpleNamespace(stage=None)
    )


# --------------------------------------------------------------------------- ClipDataset


@pytest.mark.parametrize(
    ("clip", "stride", "per_performance"),
    [
        (16, 8, (50 - 16) // 8 + 1),
        (16, None, (50 - 16) // 16 + 1),
        (7, 3, (50 - 7) // 3 + 1),
        (50, None, 1),
        (51, None, 0),
    ],
)
def test_window_count(
    fixture_files: list[StreamFiles], clip: int, stride: int | None, per_performance: int
) -> None:
    dataset = ClipDataset(fixture_files, ["roll"], clip, stride)
    assert len(dataset) == 6 * per_performance
    if per_performance:
        starts = [int(dataset[i]["start"]) for i in range(per_performance)]
        assert starts == [i * (stride or clip) for i in range(per_performance)]
        last = dataset[len(dataset) - 1]
        assert int(last["performance"]) == 5
        assert int(last["start"]) == (per_performance - 1) * (stride or clip)


def test_item_keys_shapes_dtypes(fixture_files: list[StreamFiles], fixture_root: Path) -> None:
    streams = ["audio", *ARRAYS, "style"]
    dataset = ClipDataset(fixture_files, streams, clip_frames=10, stride=5)
    item = dataset[3]  # performance 0, frames 15 … 24
    assert set(item) == {*streams, "performance", "start"}
    assert (int(item["performance"]), int(item["start"])) == (0, 15)
    expected = {
        "audio": (10 * PER_FRAME,),
        "video": (10, 3, 32, 32),
        "mask": (10, 1, 32, 32),
        "keypoints": (10, 67, 3),
        "pose3d": (10, 23, 3),
        "roll": (10, 88),
    }
    for stream, shape in expected.items():
        assert tuple(item[stream].shape) == shape, stream
        assert item[stream].dtype == torch.float32, stream
    for key in ("style", "performance", "start"):
        assert item[key].dtype == torch.int64 and item[key].ndim == 0
    assert int(item["style"]) == 0

    video = item["video"]
    assert video.min() >= -1 and video.max() <= 1
    # the background is grey 20 and the square (230, 180, 40), mapped by x / 127.5 - 1
    mask = item["mask"][:, 0].bool()
    assert torch.allclose(video[:, 0][~mask], torch.tensor(20 / 127.5 - 1))
    for channel, value in enumerate((230, 180, 40)):
        assert torch.allclose(video[:, channel][mask], torch.tensor(value / 127.5 - 1))
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    frames = np.load(fixture_root / "perf00" / "frames.npy")[15:25]
    np.testing.assert_allclose(video.permute(0, 2, 3, 1).numpy(), frames / 127.5 - 1, atol=1e-6)
    assert (item["roll"].sum(dim=1) == 1).all()  # one key sounds in every frame


def test_audio_is_aligned_with_frames(fixture_files: list[StreamFiles]) -> None:
    dataset = ClipDataset(fixture_files, ["audio", "roll"], clip_frames=15, stride=3)
    item = dataset[1]  # performance 0, frames 3 … 17: notes change at frames 5, 10 and 15
    assert int(item["start"]) == 3
    keys = item["roll"].argmax(dim=1).tolist()
    assert len(set(keys)) >= 3, keys  # several notes inside the window
    audio = item["audio"].numpy()
    for t, key in enumerate(keys):
        heard = dominant_frequency(audio[t * PER_FRAME : (t + 1) * PER_FRAME], SR)
        semitones = 12 * np.log2(heard / key_frequency(key))
        assert abs(semitones) < 0.4, (t, key, heard)


def test_audio_context_pads_and_aligns(fixture_files: list[StreamFiles]) -> None:
    wave = np.load(fixture_files[0].audio)  # type: ignore[arg-type]
    assert len(wave) == 50 * PER_FRAME
    clip = 10
    dataset = ClipDataset(fixture_files[:1], ["audio"], clip, stride=5, audio_context=(2, 1))
    assert len(dataset) == 9  # starts 0, 5, …, 40
    for i in range(len(dataset)):
        assert tuple(dataset[i]["audio"].shape) == ((clip + 3) * SR / FPS,)

    first = dataset[0]["audio"].numpy()
    assert not first[: 2 * PER_FRAME].any()  # two frames of silence before the recording
    np.testing.assert_array_equal(first[2 * PER_FRAME :], wave[: (clip + 1) * PER_FRAME])

    middle = dataset[1]["audio"].numpy()  # window starts at frame 5
    np.testing.assert_array_equal(middle, wave[3 * PER_FRAME : 16 * PER_FRAME])
    assert middle[2 * PER_FRAME] == wave[5 * PER_FRAME]  # the sample at the window start

    last = dataset[8]["audio"].numpy()  # frames 40 … 49, the end of the recording
    np.testing.assert_array_equal(last[: 12 * PER_FRAME], wave[38 * PER_FRAME :])
    assert not last[12 * PER_FRAME :].any()  # one frame of silence after it


# --------------------------------------------------------------------------- the DataModule


def test_datamodule_splits_and_labels(fixture_root: Path, tmp_path: Path) -> None:
    dm = AudioVisualDataModule(
        root=str(fixture_root),
        streams=["roll", "instrument"],
        clip_frames=10,
        image_size=None,
        cache_dir=str(tmp_path),
    )
    dm.setup("fit")
    train, val, test = (clips_of(dm, s) for s in ("train", "val", "test"))
    assert len(train) == 4 * ((50 - 10) // 5 + 1)  # clip_stride defaults to clip_frames // 2
    assert len(val) == len(test) == (50 - 10) // 10 + 1  # eval_stride defaults to clip_frames
    # cello (perf00, perf02 …) and piano (perf01, perf03 …), sorted: cello = 0, piano = 1
    for i in (0, 9, 18, 27):
        item = train[i]
        assert int(item["instrument"]) == int(item["performance"]) % 2
    assert dm.performance_meta("val", 0).name == "perf04"
    assert list(tmp_path.iterdir()) == []  # nothing to convert


def test_datamodule_uses_the_model_streams(fixture_root: Path, tmp_path: Path) -> None:
    dm = AudioVisualDataModule(
        root=str(fixture_root),
        sample_rate=SR,
        clip_frames=8,
        image_size=None,
        cache_dir=str(tmp_path),
    )
    attach(dm, PianoRollModel())
    dm.prepare_data()
    dm.setup("fit")
    item = clips_of(dm, "train")[0]
    assert set(item) == {"audio", "roll", "performance", "start"}
    assert tuple(item["audio"].shape) == (8 * PER_FRAME,)


def test_datamodule_writes_and_reuses_a_converted_cache(fresh_root: Path) -> None:
    dm = AudioVisualDataModule(
        root=str(fresh_root),
        streams=["audio", "video", "mask"],
        sample_rate=16000,
        image_size=16,
        clip_frames=5,
    )
    dm.prepare_data()
    cache = fresh_root / ".cache" / "perf00"  # beside the data by default
    assert sorted(p.name for p in cache.iterdir()) == [
        "audio_16000.npy",
        "frames_16x16.npy",
        "mask_16x16.npy",
    ]
    frames = np.load(cache / "frames_16x16.npy")
    mask = np.load(cache / "mask_16x16.npy")
    audio = np.load(cache / "audio_16000.npy")
    assert frames.shape == (25, 16, 16, 3) and frames.dtype == np.uint8
    assert mask.shape == (25, 16, 16) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) == {0, 1}
    assert audio.dtype == np.float32
    assert len(audio) == 2 * len(sf.read(fresh_root / "perf00" / "audio.flac")[0]) == 16000

    # the 8x8 square becomes about 4x4, centred where the original was, scaled by 1/2
    original = np.load(fresh_root / "perf00" / "mask.npy")
    for t in range(25):
        assert abs(int(mask[t].sum()) - 16) <= 4, t
        rows, cols = np.nonzero(mask[t])
        rows0, cols0 = np.nonzero(original[t])
        assert abs(rows.mean() - ((rows0.mean() + 0.5) / 2 - 0.5)) <= 0.5, t
        assert abs(cols.mean() - ((cols0.mean() + 0.5) / 2 - 0.5)) <= 0.5, t
        inside = frames[t, int(rows.mean()), int(cols.mean())]
        np.testing.assert_array_equal(inside, (230, 180, 40))
        np.testing.assert_array_equal(frames[t, 0, 0], (20, 20, 20))

    # the resampled tone keeps its pitch: frame 0's key, heard in the 16 kHz cache
    key = int(np.load(fresh_root / "perf00" / "roll.npy")[0].argmax())
    heard = dominant_frequency(audio[:640], 16000)
    assert abs(12 * np.log2(heard / key_frequency(key))) < 0.4

    dm.streams.append("roll")
    dm.setup("fit")
    item = clips_of(dm, "train")[3]  # perf00, frames 6 … 10: a new note at frame 10
    assert tuple(item["video"].shape) == (5, 3, 16, 16)
    assert tuple(item["mask"].shape) == (5, 1, 16, 16)
    assert tuple(item["audio"].shape) == (5 * 16000 / 25,)  # 640 samples a frame at 16 kHz
    np.testing.assert_array_equal(item["audio"].numpy(), audio[6 * 640 : 11 * 640])
    for t, key in enumerate(item["roll"].argmax(dim=1).tolist()):
        heard = dominant_frequency(item["audio"][t * 640 : (t + 1) * 640].numpy(), 16000)
        assert abs(12 * np.log2(heard / key_frequency(key))) < 0.4, (t, key, heard)

    cached = sorted((fresh_root / ".cache").rglob("*.npy"))
    assert len(cached) == 4 * 3
    stamps = {p: p.stat().st_mtime_ns for p in cached}
    AudioVisualDataModule(
        root=str(fresh_root),
        streams=["audio", "video", "mask"],
        sample_rate=16000,
        image_size=16,
        clip_frames=5,
    ).prepare_data()
    assert {p: p.stat().st_mtime_ns for p in cached} == stamps

    # a cache older than its source is rebuilt
    stale = cache / "mask_16x16.npy"
    old = (fresh_root / "perf00" / "mask.npy").stat().st_mtime - 100
    os.utime(stale, (old, old))
    dm.prepare_data()
    assert stale.stat().st_mtime > old + 50
    np.testing.assert_array_equal(np.load(stale), mask)


def test_missing_stream_names_model_stream_and_root(tmp_path: Path) -> None:
    root = tmp_path / "no_roll"
    rng = np.random.default_rng(3)
    entries = []
    for i, split in enumerate(("train", "train", "val")):
        meta, arrays, audio = make_performance(rng, f"take{i}", 1.0, 32, FPS, SR, "cello")
        del arrays["roll"]
        write_performance(root, meta, arrays, audio)
        entries.append((meta, split))
    write_manifest(root, entries)

    dm = AudioVisualDataModule(
        root=str(root),
        sample_rate=SR,
        clip_frames=5,
        image_size=None,
        cache_dir=str(tmp_path / "cache"),
    )
    attach(dm, PianoRollModel())
    with pytest.raises(AudiovisError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert "PianoRollModel" in message
    assert "'roll'" in message
    assert str(root) in message
    assert "'take0' and 2 more" in message

    attach(dm, FakeModel())  # a model that needs only what is there
    dm.streams = ["audio"]
    dm.prepare_data()
    dm.setup("fit")
    assert len(clips_of(dm, "train")) == 2 * ((25 - 5) // 2 + 1)
    assert set(clips_of(dm, "train")[0]) == {"audio", "performance", "start"}


def test_fps_mismatch_names_both_rates(fresh_root: Path, tmp_path: Path) -> None:
    dm = AudioVisualDataModule(
        root=str(fresh_root), streams=["video"], fps=30.0, image_size=None, cache_dir=str(tmp_path)
    )
    with pytest.raises(AudiovisError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(fresh_root / "perf00" / "meta.json") in message
    assert "recorded at 25 fps" in message
    assert "data.fps is 30" in message


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    dm = AudioVisualDataModule(root=str(tmp_path / "nowhere"), streams=["video"])
    with pytest.raises(AudiovisError, match="nowhere is not a directory"):
        dm.setup("fit")


def test_unknown_stream_is_rejected_at_construction() -> None:
    with pytest.raises(AudiovisError, match=r"unknown streams \['smell'\]"):
        AudioVisualDataModule(root="unused", streams=["video", "smell"])


# --------------------------------------------------------------------------- MediaFileDataset


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_media_audio_too_short_names_the_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "blip.wav", tone(0.2, SR), SR)
    dataset = MediaFileDataset([path], "audio", 16000, FPS, None, min_frames=16)
    with pytest.raises(MediaError) as info:
        dataset[0]
    assert str(path) in str(info.value)
    assert "0.20 s of audio is shorter than one clip (0.64 s)" in str(info.value)


def test_media_audio_item_at_the_requested_rate(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a440.wav", tone(1.0, SR), SR)
    item = MediaFileDataset([path], "audio", 16000, FPS, None, min_frames=16)[0]
    assert item["name"] == "a440" and item["path"] == str(path)
    assert item["audio"].dtype == torch.float32
    assert tuple(item["audio"].shape) == (16000,)
    assert abs(dominant_frequency(item["audio"][4000:12000].numpy(), 16000) - 440) < 2
    assert "video" not in item


def test_media_video_item(tmp_path: Path, fixture_root: Path) -> None:
    frames = np.load(fixture_root / "perf00" / "frames.npy")  # 50 frames, 32x32
    path = write_video(tmp_path / "take.mp4", frames, FPS, tone(2.0, SR), SR)
    item = MediaFileDataset([path], "video", 16000, FPS, 16, min_frames=8)[0]
    video = item["video"]
    assert tuple(video.shape) == (50, 3, 16, 16)
    assert video.dtype == torch.float32
    assert video.min() >= -1 and video.max() <= 1
    assert abs(float(video[:, :, 0, 0].mean()) - (20 / 127.5 - 1)) < 0.05  # grey background
    audio = item["audio"]
    assert audio.dtype == torch.float32 and audio.ndim == 1
    assert abs(len(audio) - 32000) < 0.1 * 32000  # 2 s at 16 kHz, give or take codec padding
    assert abs(dominant_frequency(audio[8000:24000].numpy(), 16000) - 440) < 2


def test_media_missing_path_fails_at_construction(tmp_path: Path) -> None:
    missing = tmp_path / "gone.wav"
    with pytest.raises(MediaError) as info:
        MediaFileDataset([missing], "audio", 16000, FPS, None)
    assert str(info.value) == f"{missing}: no such file"


# --------------------------------------------------------------------------- resuming


def test_train_loader_resumes_mid_epoch(fresh_root: Path, tmp_path: Path) -> None:
    from torchdata.stateful_dataloader import StatefulDataLoader

    dm = AudioVisualDataModule(
        root=str(fresh_root),
        streams=["roll"],
        clip_frames=4,
        batch_size=2,
        image_size=None,
        cache_dir=str(tmp_path),
    )
    dm.setup("fit")
    assert len(clips_of(dm, "train")) == 2 * ((25 - 4) // 2 + 1)  # 22 windows, 11 batches

    def windows(batches: list[dict[str, torch.Tensor]]) -> list[tuple[int, int]]:
        return [
            (int(p), int(s))
            for b in batches
            for p, s in zip(b["performance"], b["start"], strict=True)
        ]

    torch.manual_seed(0)
    loader = dm.train_dataloader()
    assert isinstance(loader, StatefulDataLoader)
    batches = iter(loader)
    seen = [next(batches) for _ in range(3)]
    state = loader.state_dict()
    rest = list(batches)
    assert len(rest) == 8
    order = windows(seen + rest)
    assert sorted(order) == sorted(set(order)) and len(order) == 22  # each window once
    assert order != sorted(order)  # shuffled

    torch.manual_seed(1)  # the resumed order comes from the state, not the global seed
    resumed = dm.train_dataloader()
    resumed.load_state_dict(state)  # type: ignore[attr-defined]
    assert windows(list(resumed)) == windows(rest)


def test_datamodule_select_keeps_labelled_performances(fixture_root: Path, tmp_path: Path) -> None:
    def names(**select: list[str]) -> list[str]:
        dm = AudioVisualDataModule(root=str(fixture_root), clip_frames=10, image_size=None,
                                   cache_dir=str(tmp_path), select=select)  # fmt: skip
        dm.setup("fit")
        return [p["name"] for p in dm._selected(fixture_root)]

    assert names(instrument=["cello"]) == ["perf00", "perf02", "perf04"]
    assert names(instrument=["piano"], performer=["p1"]) == ["perf01", "perf05"]
    # a studio config's filter on data with other labels: ignored, with a warning
    with pytest.warns(UserWarning, match="matches no performance"):
        assert len(names(instrument=["trombone"])) == 6
    with pytest.raises(AudiovisError, match="unknown labels"):
        names(colour=["red"])
