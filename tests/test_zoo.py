"""The whole zoo at once: every model is a declared AudioVisualModule, and every experiment
config a user may pass (alone, or composed over the APVG config) parses into its model."""

from __future__ import annotations

from pathlib import Path

import pytest

import audiovis.models
from audiovis.cli import main
from audiovis.models.base import AudioVisualModule

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
STANDALONE = sorted(
    p for p in EXPERIMENTS.glob("*.yaml") if "class_path: audiovis" in p.read_text()
)
OVERLAYS = sorted(set(EXPERIMENTS.glob("apvg_*.yaml")) - set(STANDALONE)) + sorted(
    (EXPERIMENTS / "apvg_ablations").glob("*.yaml")
)


@pytest.mark.parametrize("name", audiovis.models.__all__)
def test_every_model_declares_its_streams(name: str) -> None:
    model = getattr(audiovis.models, name)
    assert issubclass(model, AudioVisualModule)
    assert model.streams, f"{name} declares no streams"
    assert model.__doc__ and len(model.__doc__.splitlines()) > 2


def _parses(*configs: Path, capsys: pytest.CaptureFixture[str]) -> str:
    args = [a for c in configs for a in ("--config", str(c))]
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *args, "--print_config"])
    out = capsys.readouterr()
    assert exit_.value.code in (0, None), out.err[-2000:]
    return out.out


@pytest.mark.parametrize("config", STANDALONE, ids=[p.stem for p in STANDALONE])
def test_experiment_config_parses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    printed = _parses(config, capsys=capsys)
    assert "class_path: audiovis.models" in printed


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.stem for p in OVERLAYS])
def test_apvg_overlay_composes_over_apvg(overlay: Path, capsys: pytest.CaptureFixture[str]) -> None:
    printed = _parses(EXPERIMENTS / "apvg.yaml", overlay, capsys=capsys)
    assert "class_path: audiovis.models.APVG" in printed
    for line in overlay.read_text().splitlines():  # the overlay's model settings won
        key, _, value = line.strip().partition(": ")
        if key.startswith("use_") or key == "stage":
            assert f"{key}: {value}" in printed
