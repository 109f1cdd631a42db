"""examples/notebooks/quickstart.ipynb: kept without outputs in the repository, and run with a
real Jupyter kernel (nbclient, ipykernel: the ``test`` extra) in an empty folder, where it
trains a tiny video-action model, shows two figures inline, predicts and streams."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOK = REPO / "examples" / "notebooks" / "quickstart.ipynb"


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow  # a kernel and a training run: about 13 s of the quick suite's 5 minutes
def test_the_notebook_runs_in_a_kernel(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,  # per cell
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute(env={**os.environ, "OMP_NUM_THREADS": "1"})  # RNNKIT_CACHE: the session's
    seconds = time.perf_counter() - start
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the confusion matrix and the timeline, inline
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "epoch 4/4" in text and "'timeline'" in text  # trained, then streamed
    assert list((tmp_path / "runs" / "video-action").glob("*/best.pt"))
    assert seconds < 120, f"the notebook took {seconds:.0f} s (goal: under a minute)"
