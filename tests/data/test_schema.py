"""The on-disk format: checking a dataset, reading meta/manifest, atomic writes, check-data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from audiovis.data.schema import (
    DataError,
    PerformanceMeta,
    check_dataset,
    check_performance,
    read_manifest,
    read_meta,
    write_performance,
)
from tests.conftest import run_cli
from tests.helpers.fixture import make_performance


def damage(root: Path) -> list[tuple[Path, str]]:
    """Break a 4-performance fixture in six ways; return (file, problem) for each."""
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["performances"].append({"name": "perf99", "split": "train"})
    (root / "manifest.json").write_text(json.dumps(manifest))

    (root / "perf00" / "mask.npy").unlink()
    (root / "perf00" / "audio.flac").write_bytes(b"this is not a flac file\n" * 64)

    frames = np.load(root / "perf01" / "frames.npy")
    np.save(root / "perf01" / "frames.npy", frames.astype(np.float32))

    mask = np.load(root / "perf02" / "mask.npy")
    mask[3, 0, 0] = 2
    np.save(root / "perf02" / "mask.npy", mask)

    # one second of a tone, as meta.json expects, but recorded at 16 kHz instead of 8 kHz
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    sf.write(root / "perf03" / "audio.flac", tone, 16000, format="FLAC")

    return [
        (root / "perf99", "listed in manifest.json but missing"),
        (root / "perf00" / "mask.npy", "missing"),
        (root / "perf00" / "audio.flac", "not a readable audio file"),
        (root / "perf01" / "frames.npy", "dtype float32, expected uint8"),
        (root / "perf02" / "mask.npy", "values must be 0 or 1"),
        (root / "perf03" / "audio.flac", "sample rate 16000 Hz, meta.json says 8000 Hz"),
    ]


def assert_reported(problems: list[str], expected: list[tuple[Path, str]]) -> None:
    assert len(problems) == len(expected), problems
    for path, problem in expected:
        matching = [p for p in problems if p.startswith(f"{path}: ")]
        assert len(matching) == 1, (path, problems)
        assert problem in matching[0]


# --------------------------------------------------------------------------- checking


def test_fixture_has_no_problems(fixture_root: Path) -> None:
    assert check_dataset(fixture_root) == []
    assert check_dataset(fixture_root, deep=False) == []
    names = read_manifest(fixture_root).names()
    assert names == [f"perf{i:02d}" for i in range(6)]
    for name in names:
        assert check_performance(fixture_root / name) == []


def test_check_dataset_lists_every_problem_at_once(fresh_root: Path) -> None:
    expected = damage(fresh_root)
    assert_reported(check_dataset(fresh_root), expected)


def test_check_performance_reports_each_broken_file(fresh_root: Path) -> None:
    damage(fresh_root)
    folder = fresh_root / "perf00"
    assert_reported(
        check_performance(folder),
        [(folder / "mask.npy", "missing"), (folder / "audio.flac", "not a readable")],
    )


def test_shallow_check_skips_values_but_not_headers(fresh_root: Path) -> None:
    mask = np.load(fresh_root / "perf02" / "mask.npy")
    mask[0, 0, 0] = 2
    np.save(fresh_root / "perf02" / "mask.npy", mask)
    roll = np.load(fresh_root / "perf01" / "roll.npy")
    np.save(fresh_root / "perf01" / "roll.npy", roll[:, :87])
    roll_path = fresh_root / "perf01" / "roll.npy"
    assert check_dataset(fresh_root, deep=False) == [
        f"{roll_path}: shape (25, 87), expected (25, 88)"
    ]
    assert len(check_dataset(fresh_root, deep=True)) == 2


def test_check_dataset_on_a_missing_root(tmp_path: Path) -> None:
    assert check_dataset(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a directory"]
    assert check_dataset(tmp_path) == [f"{tmp_path / 'manifest.json'}: missing"]


# --------------------------------------------------------------------------- meta and manifest


def valid_meta() -> dict[str, Any]:
    meta = PerformanceMeta(
        name="take1",
        fps=25.0,
        sample_rate=8000,
        num_frames=50,
        size=(32, 32),
        streams=["audio", "video"],
        instrument="cello",
    )
    return meta.to_json()


def test_read_meta_reads_what_was_written(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({**valid_meta(), "camera": "left"}))
    meta = read_meta(tmp_path)
    assert (meta.name, meta.fps, meta.sample_rate, meta.num_frames) == ("take1", 25.0, 8000, 50)
    assert meta.size == (32, 32)
    assert meta.duration == 2.0
    assert meta.instrument == "cello"
    assert meta.extra == {"camera": "left"}  # an unknown top-level field is kept


def test_meta_extra_survives_round_trips(tmp_path: Path) -> None:
    meta = PerformanceMeta(
        name="take1",
        fps=25.0,
        sample_rate=8000,
        num_frames=50,
        size=(32, 32),
        streams=["audio"],
        extra={"camera": "left"},
    )
    for _ in range(2):  # write → read → write → read: no nesting of 'extra' in 'extra'
        (tmp_path / "meta.json").write_text(json.dumps(meta.to_json()))
        meta = read_meta(tmp_path)
        assert meta.extra == {"camera": "left"}


def _drop(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "missing"),
        ('{"fps": 25,', "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (_drop(valid_meta(), "fps"), "missing field 'fps'"),
        ({**valid_meta(), "num_frames": "50"}, "field 'num_frames' has the wrong type ('50')"),
        ({**valid_meta(), "sample_rate": True}, "field 'sample_rate' has the wrong type (True)"),
        ({**valid_meta(), "num_frames": 0}, "must be positive"),
        ({**valid_meta(), "size": [32]}, "field 'size' must be [height, width], got [32]"),
        ({**valid_meta(), "streams": ["audio", "smell"]}, "unknown streams ['smell']"),
        ({**valid_meta(), "extra": "left"}, "field 'extra' must be a JSON object"),
    ],
    ids=[
        "missing",
        "invalid-json",
        "not-object",
        "missing-field",
        "wrong-type",
        "bool",
        "zero-frames",
        "bad-size",
        "unknown-stream",
        "bad-extra",
    ],
)
def test_read_meta_errors(
    tmp_path: Path, content: str | dict[str, Any] | None, problem: str
) -> None:
    path = tmp_path / "meta.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DataError) as info:
        read_meta(tmp_path)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "missing"),
        (
            {"performances": [{"name": "a", "split": "training"}]},
            "performance 'a' has split 'training'; expected one of ['train', 'val', 'test']",
        ),
        ({"performances": []}, "field 'performances' must be a non-empty list"),
        ({"classes": {}}, "field 'performances' must be a non-empty list"),
        ({"performances": [{"name": "a"}]}, "performance #0 needs a 'name' and a 'split'"),
    ],
    ids=["missing", "bad-split", "empty", "no-performances", "no-split"],
)
def test_read_manifest_errors(tmp_path: Path, content: dict[str, Any] | None, problem: str) -> None:
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(json.dumps(content))
    with pytest.raises(DataError) as info:
        read_manifest(tmp_path)
    assert str(info.value) == f"{path}: {problem}"


def test_read_manifest_splits(fixture_root: Path) -> None:
    manifest = read_manifest(fixture_root)
    assert manifest.names("train") == ["perf00", "perf01", "perf02", "perf03"]
    assert manifest.names("val") == ["perf04"]
    assert manifest.names("test") == ["perf05"]
    assert manifest.classes["instrument"] == ["cello", "piano"]


# --------------------------------------------------------------------------- atomic writes


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def new_performance(
    name: str, seed: int
) -> tuple[PerformanceMeta, dict[str, np.ndarray], np.ndarray]:
    return make_performance(
        np.random.default_rng(seed),
        name,
        seconds=1.0,
        size=32,
        fps=25.0,
        sample_rate=8000,
        instrument="cello",
    )


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    meta, arrays, audio = new_performance("take1", seed=1)
    arrays["roll"] = arrays["roll"][:, :87]
    with pytest.raises(DataError) as info:
        write_performance(root, meta, arrays, audio)
    roll = root / "take1" / "roll.npy"
    assert f"{roll}: shape (25, 87), expected (25, 88)" in str(info.value)
    assert list(root.iterdir()) == []  # neither the folder nor a hidden temporary one


def test_failed_overwrite_keeps_the_existing_performance(fresh_root: Path) -> None:
    folder = fresh_root / "perf01"
    before, listing = tree(folder), sorted(p.name for p in fresh_root.iterdir())
    meta, arrays, audio = new_performance("perf01", seed=7)
    arrays["mask"][0, 0, 0] = 2
    with pytest.raises(DataError, match="values must be 0 or 1"):
        write_performance(fresh_root, meta, arrays, audio)
    assert tree(folder) == before
    assert sorted(p.name for p in fresh_root.iterdir()) == listing


def test_good_write_replaces_the_existing_performance(fresh_root: Path) -> None:
    folder = fresh_root / "perf01"
    old_roll = np.load(folder / "roll.npy")
    meta, arrays, audio = new_performance("perf01", seed=7)
    del arrays["pose3d"]
    assert write_performance(fresh_root, meta, arrays, audio) == folder
    assert not np.array_equal(old_roll, arrays["roll"])  # the new take differs
    np.testing.assert_array_equal(np.load(folder / "roll.npy"), arrays["roll"])
    assert not (folder / "pose3d.npy").exists()  # replaced as a whole, not merged
    assert "pose3d" not in read_meta(folder).streams
    assert not [p for p in fresh_root.iterdir() if p.name.startswith(".")]
    assert check_dataset(fresh_root) == []


# --------------------------------------------------------------------------- the console script


def test_check_data_cli_ok(fixture_root: Path) -> None:
    result = run_cli("check-data", str(fixture_root), tool="audiovis")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{fixture_root}: ok"
    assert "Traceback" not in result.stderr


def test_check_data_cli_lists_problems(fresh_root: Path) -> None:
    expected = damage(fresh_root)
    result = run_cli("check-data", str(fresh_root), tool="audiovis")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert_reported(result.stdout.splitlines(), expected)
    assert f"6 problem(s) in {fresh_root}" in result.stderr
