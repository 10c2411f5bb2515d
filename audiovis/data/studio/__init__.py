"""The performance studio: real scores rendered into audio and a performer whose motion is a
deterministic function of the music, with exact ground truth; the embedded default dataset."""

from audiovis.data.studio.builder import (
    INSTRUMENTS,
    STYLES,
    StudioConfig,
    build,
    default_dataset,
    plan,
    render_job,
    studio_dataset,
)

__all__ = [
    "INSTRUMENTS",
    "STYLES",
    "StudioConfig",
    "build",
    "default_dataset",
    "plan",
    "render_job",
    "studio_dataset",
]
