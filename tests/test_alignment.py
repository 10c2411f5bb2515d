"""Audio/video alignment: envelopes on hand-computed cases, the offset of a performance whose
sound is shifted by a known lag, and the report of `audiovis check-data`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiovis.data.alignment import (
    Alignment,
    alignment_report,
    check_alignment,
    estimate_offset,
    motion_energy,
    onset_envelope,
    runner_up,
)
from audiovis.data.schema import PerformanceMeta, write_manifest, write_performance
from tests.conftest import assert_ok, run_cli


def test_motion_energy_by_hand() -> None:
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    frames[1] = 10  # +10 everywhere
    frames[2] = 10  # still
    frames[3, :4] = 40  # half the rows -30, half -10 → mean 20
    np.testing.assert_allclose(motion_energy(frames, stride=1, chunk=2), [0, 10, 0, 20])


def test_onset_envelope_peaks_at_clicks() -> None:
    rate, fps, frames = 16000, 25.0, 50
    audio = np.zeros(int(frames / fps * rate), np.float32)
    clicks = [10, 23, 37]
    for k in clicks:
        start = int(k / fps * rate)
        audio[start : start + 400] = np.sin(np.arange(400) * 0.3)
    env = onset_envelope(audio, rate, fps, frames)
    assert env.shape == (frames,)
    peaks = sorted(np.argsort(env)[-3:].tolist())
    # a click starting on frame k's time lies in frame k's stretch of audio
    assert peaks == clicks


@pytest.mark.parametrize("lag", [6, -4, 0])
def test_estimate_offset_recovers_a_known_lag(lag: int) -> None:
    rng = np.random.default_rng(0)
    motion = np.zeros(300)
    motion[rng.choice(np.arange(20, 280), 25, replace=False)] = 1.0
    motion += 0.05 * rng.random(300)
    onsets = np.roll(motion, lag) + 0.05 * rng.random(300)
    offset, peak, zero = estimate_offset(onsets, motion, fps=25.0)
    assert offset == pytest.approx(lag / 25.0)
    assert peak > 0.8 and (lag == 0 or zero < 0.3)


def test_a_regular_beat_makes_the_offset_ambiguous() -> None:
    """Events every 10 frames line up at every multiple of 10 frames: no lag can be trusted."""
    motion = np.zeros(300)
    motion[::10] = 1.0
    onsets = np.roll(motion, 3)
    offset, peak, _ = estimate_offset(onsets, motion, fps=25.0)
    second = runner_up(onsets, motion, 25.0, offset)
    assert peak > 0.9 and second > peak - 0.05
    found = Alignment("beat", 12.0, 12.0, None, offset, peak, 0.0, second)
    assert not found.trusted and "ambiguous" in found.line(25.0)
    assert "aligned" in found.line(25.0)


def jump_performance(root: Path, name: str, delay: float, fps: float = 25.0) -> None:
    """A square jumps to a new place at random frames; a click sounds ``delay`` s later."""
    rng = np.random.default_rng(1)
    frames_n, rate = 250, 16000
    events = np.sort(rng.choice(np.arange(5, frames_n - 40), 18, replace=False))
    video = np.full((frames_n, 16, 16, 3), 30, np.uint8)
    audio = 0.001 * rng.standard_normal(int(frames_n / fps * rate)).astype(np.float32)
    place = 0
    for k in range(frames_n):
        if k in events:
            place = (place + 1 + int(rng.integers(3))) % 4
            start = int((k / fps + delay) * rate)
            audio[start : start + 300] += 0.5 * np.sin(np.arange(300) * 0.4)
        video[k, 4 * place : 4 * place + 4, 4:12] = 220
    extra = {"source_audio_seconds": 10.3, "source_video_seconds": 10.0}
    meta = PerformanceMeta(
        name=name, fps=fps, sample_rate=rate, num_frames=frames_n, size=(16, 16), streams=[],
        extra=extra,
    )  # fmt: skip
    write_performance(root, meta, {"video": video}, audio)


def test_a_late_sound_is_measured_and_reported(tmp_path: Path) -> None:
    jump_performance(tmp_path, "late", delay=0.2)
    jump_performance(tmp_path, "synced", delay=0.0)
    result = check_alignment(tmp_path / "late")
    assert result is not None
    assert result.offset == pytest.approx(0.2, abs=0.041)
    assert result.correlation > 0.5 and result.trusted
    assert result.source_mismatch == pytest.approx(0.3)
    synced = check_alignment(tmp_path / "synced")
    assert synced is not None and abs(synced.offset) <= 0.04
    from audiovis.data.schema import read_meta

    write_manifest(tmp_path, [(read_meta(tmp_path / n), "train") for n in ("late", "synced")])
    lines = alignment_report(tmp_path)
    assert "sound about 0.20 s late" in lines[0]
    assert "source audio +0.300 s longer than its video" in lines[0]
    assert lines[1].endswith("aligned") or "sound about" not in lines[1]


def test_check_data_prints_the_alignment(fixture_root: Path) -> None:
    result = run_cli("check-data", str(fixture_root), tool="audiovis")
    assert_ok(result)
    assert result.stdout.strip() == f"{fixture_root}: ok"  # problems only on stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("alignment: ")]
    assert len(lines) == 6
    # the fixture's square moves on each new tone: sound and picture line up
    assert all("offset +0.00 s" in line or "offset -0.00 s" in line for line in lines), lines
