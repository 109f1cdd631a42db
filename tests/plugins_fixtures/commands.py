"""A plugin that adds a command to ``rnnkit``."""

from typing import Any

import click

from rnnvision_kit import hookimpl


@click.command()
@click.argument("who", default="world")
def hello(who: str) -> None:
    """Say hello (added by a plugin)."""
    click.echo(f"hello {who} from a plugin")


@hookimpl
def rnnkit_register_commands(cli: Any) -> None:
    cli.add_command(hello)
