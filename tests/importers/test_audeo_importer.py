"""The Audeo importer on a fixture in the original layout, and its restricted unpickler."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from audiovis.data.importers.audeo import import_audeo, load_label_pickle
from audiovis.data.schema import check_dataset, read_manifest
from audiovis.errors import FileProblem
from audiovis.music import midi_notes

FIRST = 3  # the first labelled frame (the original trims silence before the first key)


def make_audeo_layout(root: Path, frames: int = 60) -> dict[str, np.ndarray]:
    """labels/*.pkl, midi/<video>/<start>-<end>.npz and input_images/<video>/frame<N>.jpg."""
    rng = np.random.default_rng(0)
    rolls = {}
    for folder, video in (("training", "Bach Prelude No.1 B1"), ("training", "Bach Fugue No.1 B1"),
                          ("testing", "Bach Prelude No.1 B2")):  # fmt: skip
        roll = (rng.random((frames, 88)) > 0.95).astype(np.uint8)
        # frame number → 88 floats, numpy int keys and arrays as the release's pickles hold
        labels = {np.int64(FIRST + t): roll[t].astype(np.float64) * 0.9 for t in range(frames)}
        (root / "labels" / folder).mkdir(parents=True, exist_ok=True)
        with open(root / "labels" / folder / f"{video}.pkl", "wb") as f:
            pickle.dump(labels, f)
        seg_dir = root / "midi" / folder / video
        seg_dir.mkdir(parents=True)
        for start in range(0, frames, 50):
            seg = roll[start : start + 50]  # the last segment is short, as in the release
            np.savez(seg_dir / f"{start}-{start + 50}.npz", midi=seg.astype(np.float64))
        rolls[video] = roll
    images = root / "input_images" / "training" / "Bach Prelude No.1 B1"
    images.mkdir(parents=True)
    for t in range(FIRST, FIRST + frames):
        Image.fromarray(np.full((10, 90), t * 3, np.uint8)).save(images / f"frame{t}.jpg")
    return rolls


def test_import_reads_labels_segments_and_images(tmp_path: Path) -> None:
    rolls = make_audeo_layout(tmp_path / "audeo")
    out = import_audeo(tmp_path / "audeo", tmp_path / "data", val_videos=1)
    assert check_dataset(out) == []
    manifest = read_manifest(out)
    splits = {p["name"]: p["split"] for p in manifest.performances}
    # the last training video in name order is held out for validation
    assert splits == {"Bach_Fugue_No.1_B1": "train", "Bach_Prelude_No.1_B1": "val",
                      "Bach_Prelude_No.1_B2": "test"}  # fmt: skip
    folder = out / "Bach_Prelude_No.1_B1"
    np.testing.assert_array_equal(np.load(folder / "roll.npy"), rolls["Bach Prelude No.1 B1"])
    video = np.load(folder / "frames.npy")
    assert video.shape == (60, 10, 90, 3) and abs(int(video[5, 0, 0, 0]) - (FIRST + 5) * 3) <= 2
    notes = midi_notes(folder / "notes.mid")
    roll = rolls["Bach Prelude No.1 B1"]
    onsets = int(np.sum(np.diff(np.pad(roll, ((1, 0), (0, 0))), axis=0) == 1))
    assert len(notes) == onsets
    assert not (out / "Bach_Fugue_No.1_B1" / "frames.npy").exists()  # no images: no video


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))

    marker = ""


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _Exploit.marker = str(marker)
    bad = tmp_path / "audeo" / "labels" / "training"
    bad.mkdir(parents=True)
    (bad / "evil.pkl").write_bytes(pickle.dumps({0: _Exploit()}))
    with pytest.raises(FileProblem, match=r"evil\.pkl: unsafe or corrupt pickle .*system"):
        import_audeo(tmp_path / "audeo", tmp_path / "data")
    assert not marker.exists()
    assert not (tmp_path / "data").exists()  # nothing written


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["not", "a", "dict"], "expected a dict"),
        ({"frame": np.zeros(88)}, "frame numbers must be"),
        ({0: np.zeros(12)}, "expected 88 numbers"),
        ({0: np.array(["a"] * 88)}, "expected 88 numbers"),
    ],
)
def test_label_pickles_must_hold_frames_of_88_numbers(
    tmp_path: Path, payload: Any, message: str
) -> None:
    path = tmp_path / "labels.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(FileProblem, match=message):
        load_label_pickle(path)


def test_truncated_pickle_and_missing_layout(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({0: np.zeros(88)})[:20])
    with pytest.raises(FileProblem, match="cut.pkl"):
        load_label_pickle(path)
    with pytest.raises(FileProblem, match="no labels"):
        import_audeo(tmp_path, tmp_path / "out")
