"""docs/python.md runs as it is: its ```python blocks, in order, in one namespace, in an empty
folder (a tiny video-action run trained with ``fit``, then load, predict, stream, export, the
errors, and the layers in a user's own model). ```py blocks are signatures, or need the user's
own files or a camera, and are not run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGE = REPO / "docs" / "python.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_the_blocks_are_found() -> None:
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 10
    assert any("rk.fit(" in b for b in blocks) and any("ConvGRU(" in b for b in blocks)
    assert not any(b.lstrip().startswith("def fit") for b in blocks)  # signatures are ```py


@pytest.mark.usefixtures("one_thread")
def test_the_python_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_python"}
    for number, block in enumerate(python_blocks(PAGE.read_text()), 1):
        try:
            exec(compile(block, f"docs/python.md block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"docs/python.md block {number} failed:\n{block}") from error
    assert (tmp_path / "model.onnx").is_file()
    assert float(namespace["accuracy"]) > 0.7  # type: ignore[arg-type]
