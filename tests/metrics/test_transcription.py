"""Transcription metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from audiovis.metrics.transcription import FrameMetrics, NoteOnsetMetrics, note_onset_scores
from audiovis.music import NoteEvent

PREDS = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.8, 0.3]])
TARGET = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])


def test_frame_metrics_hand_computed() -> None:
    # on: (0,0) (0,2) (1,1); true: (0,0) (1,0) (1,1) → TP 2, FP 1, FN 1, TN 2
    m = FrameMetrics(threshold=0.5)
    m.update(PREDS, TARGET)
    out = m.compute()
    assert (int(m.tp), int(m.fp), int(m.fn), int(m.tn)) == (2, 1, 1, 2)
    assert out["precision"].item() == pytest.approx(2 / 3)
    assert out["recall"].item() == pytest.approx(2 / 3)
    assert out["f1"].item() == pytest.approx(2 / 3)
    assert out["accuracy"].item() == pytest.approx(2 / 4)  # TP / (TP + FP + FN)


def test_frame_metrics_threshold_and_logits() -> None:
    m = FrameMetrics(threshold=0.25)  # 0.3 is now on too: TP 2, FP 2, FN 1
    m.update(PREDS, TARGET)
    assert m.compute()["precision"].item() == pytest.approx(2 / 4)
    logits = torch.log(PREDS / (1 - PREDS))
    on_logits = FrameMetrics(threshold=0.5, logits=True)
    on_logits.update(logits, TARGET)
    assert on_logits.compute()["f1"].item() == pytest.approx(2 / 3)


def test_frame_metrics_accumulate_and_empty() -> None:
    split = FrameMetrics()
    split.update(PREDS[:1], TARGET[:1])
    split.update(PREDS[1:], TARGET[1:])
    assert split.compute()["f1"].item() == pytest.approx(2 / 3)
    empty = FrameMetrics()
    empty.update(torch.zeros(4, 3), torch.zeros(4, 3))
    assert all(v.item() == 0 for v in empty.compute().values())
    with pytest.raises(ValueError, match="differ"):
        empty.update(torch.zeros(2, 3), torch.zeros(3, 3))


def _note(pitch: int, start: float) -> NoteEvent:
    return NoteEvent(pitch, start, start + 0.3, 100)


def test_note_onsets_hand_computed() -> None:
    ref = [_note(60, 0.0), _note(62, 0.5), _note(64, 1.0)]
    est = [_note(60, 0.03), _note(62, 0.58), _note(65, 1.0), _note(64, 1.04)]
    # 60 matches (30 ms), 62 is 80 ms late, 65 has no reference, 64 matches (40 ms)
    out = note_onset_scores(ref, est)
    assert out["precision"] == pytest.approx(2 / 4)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(4 / 7)
    assert note_onset_scores(ref, [])["f1"] == 0.0


def test_note_onset_metric_pools_pieces() -> None:
    m = NoteOnsetMetrics()
    m.update([_note(60, 0.0), _note(62, 0.5)], [_note(60, 0.0)])  # 1 of 2, 1 of 1
    m.update([_note(70, 0.0)], [_note(70, 0.2), _note(71, 0.0)])  # 0 of 1, 0 of 2
    out = m.compute()
    assert out["precision"].item() == pytest.approx(1 / 3)
    assert out["recall"].item() == pytest.approx(1 / 3)
    assert out["f1"].item() == pytest.approx(2 / 6)
    assert not math.isnan(out["f1"].item())
