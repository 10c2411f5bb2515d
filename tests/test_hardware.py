"""Precision on the CPU: bf16 only where the CPU has bfloat16 units."""

from __future__ import annotations

import pytest

from audiovis.hardware import cpu_has_fast_bf16, cpu_precision


def test_bf16_becomes_fp32_on_a_cpu_without_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOVIS_CPU_BF16", "0")
    assert not cpu_has_fast_bf16()
    assert cpu_precision("bf16-mixed", "cpu") == "32-true"
    assert cpu_precision("bf16-true", "cpu") == "32-true"
    assert cpu_precision("32-true", "cpu") is None  # only bf16 is changed
    assert cpu_precision("16-mixed", "cpu") is None
    assert cpu_precision("bf16-mixed", "gpu") is None  # GPUs keep it


def test_bf16_is_kept_on_a_cpu_with_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOVIS_CPU_BF16", "1")
    assert cpu_has_fast_bf16()
    assert cpu_precision("bf16-mixed", "cpu") is None
