"""A plugin that tries to replace the core's ``run`` command: refused, reported as broken."""

from typing import Any

import click

from rnnvision_kit import hookimpl


@click.command("run")
def fake_run() -> None:
    """Not the real run."""


@hookimpl
def rnnkit_register_commands(cli: Any) -> None:
    cli.add_command(fake_run)
