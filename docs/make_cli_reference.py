"""Write docs/cli.md from the CLI's own help texts: ``python docs/make_cli_reference.py``.

tests/test_docs_cli.py fails when docs/cli.md and the CLI disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

HEADER = """# CLI reference

`rnnkit` (also `python -m rnnvision_kit`). Global options come before the command; `--plugin`
may appear anywhere. Errors a user can cause print one line, `rnnkit: error: ...`, and exit 2
(`--debug` shows the traceback); an interrupted run exits 130.

This page is generated from the commands' help: `python docs/make_cli_reference.py`.
"""


def cli_reference() -> str:
    """The Markdown reference of every ``rnnkit`` command, built-in and plugin-added."""
    from rnnvision_kit.cli import cli
    from rnnvision_kit.plugins import build_host

    build_host().add_commands(cli)
    parts = [HEADER]
    settings = {**cli.context_settings, "terminal_width": 100}
    with click.Context(cli, info_name="rnnkit", **settings) as ctx:
        parts.append(f"## rnnkit\n\n```\n{cli.get_help(ctx)}\n```\n")
        for name in sorted(cli.commands):
            command = cli.commands[name]
            with click.Context(command, info_name=name, parent=ctx, **settings) as sub:
                parts.append(f"## rnnkit {name}\n\n```\n{command.get_help(sub)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(cli_reference())
    print(f"wrote {target}", file=sys.stderr)
