"""docs/cli.md is generated from the CLI's help; this keeps the two in agreement."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def test_cli_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_cli_reference", REPO / "docs" / "make_cli_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.cli_reference()
    actual = (REPO / "docs" / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is stale: run `python docs/make_cli_reference.py`"


def test_every_command_help_shows_an_example() -> None:
    from rnnvision_kit.cli import cli

    for name, command in cli.commands.items():
        assert "Example" in (command.help or ""), f"rnnkit {name} --help shows no example"
