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
    # 8 since issue 20: config.yaml marks the data settings the source does not read, which
    # takes the source's registration (``runconfig.unread_settings`` -> ``Registry.get``)
    assert len(found.runner()) <= 8, shown
    assert len(found.reentries) <= 14, shown
