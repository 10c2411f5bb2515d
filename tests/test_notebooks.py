"""Every notebook runs top to bottom (they only import audiovis)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# these train a model for a minute or more on 2 cores: `make test-all` runs them
SLOW = {"02_apvg", "03_audeo", "04_dance", "05_guitarist", "06_ganterpretation", "07_closed_loop"}
PARAMS = [
    pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else [])
    for p in NOTEBOOKS
]


@pytest.mark.parametrize("path", PARAMS)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
