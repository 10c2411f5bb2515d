"""User-facing errors: the CLI prints them as one line, without a traceback."""

from __future__ import annotations

import os
from pathlib import Path


class AudiovisError(Exception):
    """A mistake in the user's input (a file, a config, a value), not a bug in audiovis."""


class FileProblem(AudiovisError, ValueError):
    """A file is missing or malformed; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # rebuilt from (path, problem) when raised in a worker process
        return (type(self), (self.path, self.problem))


class MissingDependency(AudiovisError, ImportError):
    """An optional library or a system library is not installed; the message says how."""
