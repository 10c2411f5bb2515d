"""Piano transcription metrics for Audeo (Su et al., NeurIPS 2020): frame-level precision,
recall, F1 and accuracy of a roll, and note-level onset precision, recall and F1 (mir_eval)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from audiovis.errors import MissingDependency
from audiovis.music import NoteEvent


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den, 0 where den is 0."""
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))


class FrameMetrics(Metric):
    """Frame-level scores of a multilabel roll, counted over every (frame, key) cell.

    Counts are micro-averaged (one pool of true/false positives over all frames and keys, as
    the transcription literature reports them; the Audeo code averaged per frame with
    scikit-learn instead). ``accuracy`` is the frame accuracy of Dixon (2000) used by mir_eval:
    TP / (TP + FP + FN), which ignores the many true negatives of a sparse roll.

    Args:
        threshold: a prediction counts as on when ``>= threshold`` (probabilities), or when its
            logit is ``>= logit(threshold)`` with ``logits=True``.
        logits: predictions are logits.

    Shape:
        update(preds, target): any equal shapes ending in keys, e.g. (B, K) or (B, T, K);
        target is {0, 1}.
    """

    full_state_update = False
    tp: Tensor
    fp: Tensor
    fn: Tensor
    tn: Tensor

    def __init__(self, threshold: float = 0.5, logits: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold, self.logits = threshold, logits
        for name in ("tp", "fp", "fn", "tn"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ")
        cut = float(np.log(self.threshold / (1 - self.threshold))) if self.logits \
            else self.threshold  # fmt: skip
        pred = preds.detach() >= cut
        true = target.detach() > 0.5
        self.tp += (pred & true).sum()
        self.fp += (pred & ~true).sum()
        self.fn += (~pred & true).sum()
        self.tn += (~pred & ~true).sum()

    def compute(self) -> dict[str, Tensor]:
        tp, fp, fn = self.tp.double(), self.fp.double(), self.fn.double()
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return {
            "precision": precision.float(),
            "recall": recall.float(),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn).float(),
            "accuracy": _ratio(tp, tp + fp + fn).float(),
        }


def _mir_eval() -> Any:
    try:
        import mir_eval.transcription
    except ImportError as err:
        message = f"note-level metrics need mir_eval ({err}): pip install mir_eval"
        raise MissingDependency(message) from None
    return mir_eval


def _arrays(notes: Sequence[NoteEvent]) -> tuple[np.ndarray, np.ndarray]:
    """mir_eval's inputs: (N, 2) onset/offset seconds and (N,) frequencies in Hz."""
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    intervals = np.array([[n.start, max(n.end, n.start + 1e-3)] for n in notes], np.float64)
    hz = 440.0 * 2.0 ** ((np.array([n.pitch for n in notes], np.float64) - 69) / 12)
    return intervals, hz


def onset_matches(
    reference: Sequence[NoteEvent], estimate: Sequence[NoteEvent], onset_tolerance: float = 0.05
) -> int:
    """How many estimated notes match a reference note of the same pitch (within 50 cents)
    with an onset within ``onset_tolerance`` seconds, one to one (mir_eval's matching,
    offsets ignored)."""
    if not reference or not estimate:
        return 0
    mir_eval = _mir_eval()
    ref_i, ref_p = _arrays(reference)
    est_i, est_p = _arrays(estimate)
    matched = mir_eval.transcription.match_notes(
        ref_i, ref_p, est_i, est_p, onset_tolerance=onset_tolerance, offset_ratio=None
    )
    return len(matched)


def note_onset_scores(
    reference: Sequence[NoteEvent], estimate: Sequence[NoteEvent], onset_tolerance: float = 0.05
) -> dict[str, float]:
    """Note-level onset precision, recall and F1 of one piece (mir_eval, offsets ignored)."""
    hits = onset_matches(reference, estimate, onset_tolerance)
    p = hits / len(estimate) if estimate else 0.0
    r = hits / len(reference) if reference else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0}


class NoteOnsetMetrics(Metric):
    """Note-level onset precision, recall and F1 pooled over pieces.

    Each ``update`` matches one piece's notes with mir_eval (pitch within 50 cents, onset
    within ``onset_tolerance``); matches and note counts add up over pieces, so long pieces
    weigh by their notes.
    """

    full_state_update = False
    matched: Tensor
    n_ref: Tensor
    n_est: Tensor

    def __init__(self, onset_tolerance: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.onset_tolerance = onset_tolerance
        for name in ("matched", "n_ref", "n_est"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, reference: Sequence[NoteEvent], estimate: Sequence[NoteEvent]) -> None:
        self.matched += onset_matches(reference, estimate, self.onset_tolerance)
        self.n_ref += len(reference)
        self.n_est += len(estimate)

    def compute(self) -> dict[str, Tensor]:
        m, r, e = self.matched.double(), self.n_ref.double(), self.n_est.double()
        return {
            "precision": _ratio(m, e).float(),
            "recall": _ratio(m, r).float(),
            "f1": _ratio(2 * m, r + e).float(),
        }
