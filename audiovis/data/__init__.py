"""Data: the on-disk performance format, aligned clip datasets and the one DataModule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audiovis.data.schema import (
    STREAMS,
    DataError,
    Manifest,
    PerformanceMeta,
    check_dataset,
    check_performance,
    read_manifest,
    read_meta,
    write_manifest,
    write_performance,
)

if TYPE_CHECKING:
    from audiovis.data.clips import ClipDataset, MediaFileDataset
    from audiovis.data.datamodule import AudioVisualDataModule

# torch and Lightning load on first use, so `audiovis check-data` (schema only) starts fast
_LAZY = {"ClipDataset": "clips", "MediaFileDataset": "clips", "AudioVisualDataModule": "datamodule"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"audiovis.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STREAMS",
    "AudioVisualDataModule",
    "ClipDataset",
    "DataError",
    "Manifest",
    "MediaFileDataset",
    "PerformanceMeta",
    "check_dataset",
    "check_performance",
    "read_manifest",
    "read_meta",
    "write_manifest",
    "write_performance",
]
