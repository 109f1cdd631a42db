"""Issue 19: following the config from ``run.train`` through every call it is passed to, the
path re-enters a file it has already left at most a few times (``tests/config_path.py`` says how
it counts; 18 in all, 11 on the runner's own path, before the issue)."""

from __future__ import annotations

import pytest

from tests.config_path import tiny_run


@pytest.mark.slow
def test_the_config_path_rarely_doubles_back() -> None:
    found = tiny_run()
    shown = "\n".join(f"{a} -> {b} {name}" for a, b, name in found.reentries)
    assert len(found.runner()) <= 7, shown
    assert len(found.reentries) <= 13, shown
