"""Data: the on-disk performance format, aligned clip datasets and the one DataModule."""

from audiovis.data.clips import ClipDataset, MediaFileDataset
from audiovis.data.datamodule import AudioVisualDataModule
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
