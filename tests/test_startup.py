"""``rnnkit --help``, ``rnnkit tasks`` and ``rnnkit plugins`` must not import torch: they import
every plugin's hook module, and torch alone takes seconds to import."""

from __future__ import annotations

import pytest
from plugins_fixtures import PLUGIN_ENV, fixture, imports_torch, rnnkit_imports


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["tasks"], ["plugins"], ["--plugin", fixture("registers_all"), "tasks"]],
    ids=["help", "tasks", "plugins", "tasks-with-local-plugin"],
)
def test_listing_commands_do_not_import_torch(args: list[str]) -> None:
    result, modules = rnnkit_imports(*args)
    assert result.returncode == 0, result.stderr
    assert "rnnkit_classify.plugin" in modules  # plugins were loaded
    assert not imports_torch(modules), sorted(m for m in modules if m.startswith("torch"))
