"""Where audiovis caches what it builds (the studio's datasets, converted scores)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$AUDIOVIS_CACHE``, else ``$XDG_CACHE_HOME/audiovis``, else ``~/.cache/audiovis``."""
    if "AUDIOVIS_CACHE" in os.environ:
        return Path(os.environ["AUDIOVIS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(base) / "audiovis"
