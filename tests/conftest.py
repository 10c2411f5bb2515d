"""Shared fixtures: a generated dataset in the real on-disk layout, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fixture import make_fixture

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "tests" / "conf"


@pytest.fixture(autouse=True, scope="session")
def _offline_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    logs = tmp_path_factory.mktemp("wandb")
    os.environ.update(
        WANDB_MODE="offline",
        WANDB_DIR=str(logs),
        WANDB_CACHE_DIR=str(logs),
        WANDB_CONFIG_DIR=str(logs),
        WANDB_SILENT="true",
    )


@pytest.fixture(autouse=True, scope="session")
def _checkout_stays_clean() -> Iterator[None]:
    """A CLI run without --trainer.default_root_dir writes config.yaml and checkpoints/ into
    the checkout; every test must point its runs at a temporary folder."""
    strays = [REPO / "config.yaml", REPO / "checkpoints", REPO / "lightning_logs"]
    before = {p for p in strays if p.exists()}
    yield
    left = [str(p) for p in strays if p.exists() and p not in before]
    assert not left, f"tests wrote into the checkout: {left}"


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six performances of pitched tones and a square moving with the pitch (read-only use)."""
    return make_fixture(tmp_path_factory.mktemp("fixture"))


@pytest.fixture
def fresh_root(tmp_path: Path) -> Path:
    """A private copy of the fixture a test may damage."""
    return make_fixture(tmp_path / "data", performances=4, seconds=1.0)


def run_cli(
    *args: str, tool: str = "lightning", timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a console script of the venv as a user types it, from the repository root."""
    exe = Path(sys.executable).with_name(tool)
    return subprocess.run(
        [str(exe), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def fit_tiny(
    root: Path, out: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``lightning fit`` of tests/conf/tiny.yaml on a dataset ``root``, writing under ``out``."""
    fit = ("fit", "--config", str(CONF / "tiny.yaml"), "--data.root", str(root))
    return run_cli(*fit, "--trainer.default_root_dir", str(out), *args, env=env)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    """The command succeeded; otherwise show the end of its stderr."""
    assert result.returncode == 0, result.stderr[-3000:]
