"""Scaffolding for plugin authors: ``rnnkit new-plugin NAME`` and the hook reference of the docs.

``python -m rnnvision_kit.scaffold --hook-reference`` prints the hook reference that
``docs/plugins.md`` quotes (from ``rnnvision_kit.hookspecs``); ``--write docs/plugins.md``
replaces the section between the markers in that file.
"""

from __future__ import annotations

import argparse
import inspect
import re
import string
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from rnnvision_kit import hookspecs
from rnnvision_kit.errors import RnnkitError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# template file -> path in the new package ({package} is the import name)
TEMPLATES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "{package}/__init__.py",
    "plugin.py.tmpl": "{package}/plugin.py",
    "task.py.tmpl": "{package}/task.py",
    "test_plugin.py.tmpl": "tests/test_plugin.py",
}
BEGIN = "<!-- BEGIN hook reference: python -m rnnvision_kit.scaffold --hook-reference -->"
END = "<!-- END hook reference -->"


class ScaffoldError(RnnkitError):
    """A plugin cannot be created under that name or in that folder."""


def plugin_names(name: str) -> dict[str, str]:
    """The names a new plugin ``name`` (e.g. ``stripes``) uses in its files."""
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single hyphens, "
            "starting with a letter (e.g. stripes, my-task)"
        )
    if name.startswith("rnnkit-"):
        raise ScaffoldError(
            f"give the short name: {name.removeprefix('rnnkit-')!r} makes package {name!r}"
        )
    from rnnvision_kit import __version__

    return {
        "plugin": name,  # entry-point name: plugin:task, RNNKIT_DISABLE_PLUGINS
        "task": name,
        "dataset": f"{name}-data",
        "distribution": f"rnnkit-{name}",
        "package": f"rnnkit_{name.replace('-', '_')}",
        "task_class": "".join(part.title() for part in name.split("-")) + "Task",
        "core_version": __version__,
    }


def create_plugin(name: str, parent: Path) -> Path:
    """Write the package ``parent/rnnkit-NAME`` and return its folder."""
    names = plugin_names(name)
    root = Path(parent) / names["distribution"]
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or --dir")
    templates = resources.files("rnnvision_kit") / "templates" / "plugin"
    for template, target in TEMPLATES.items():
        text = string.Template((templates / template).read_text()).substitute(names)
        path = root / target.format(**names)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# ----------------------------------------------------------------------------- hook reference


def hook_specs() -> list[Callable[..., object]]:
    """The hook specifications of ``rnnvision_kit.hookspecs``, in the order they are defined."""
    marker = f"{hookspecs.PROJECT}_spec"
    specs = [f for _, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, marker)]
    return sorted(specs, key=lambda f: f.__code__.co_firstlineno)


def hook_signature(spec: Callable[..., object]) -> str:
    """``def name(arg: type, ...) -> type``, annotations as written in the source."""
    params = []
    for param in inspect.signature(spec).parameters.values():
        text = param.name
        if param.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        params.append(text)
    returns = spec.__annotations__.get("return")
    suffix = f" -> {_annotation(returns)}" if returns is not None else ""
    return f"def {spec.__name__}({', '.join(params)}){suffix}"


def _annotation(value: object) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def hook_reference() -> str:
    """The Markdown hook reference: a heading, the signature and the docstring of each hook."""
    parts = []
    for spec in hook_specs():
        parts.append(
            f"### `{spec.__name__}`\n\n```python\n{hook_signature(spec)}\n```\n\n"
            f"{inspect.getdoc(spec) or ''}\n"
        )
    return "\n".join(parts)


def write_reference(path: Path) -> None:
    """Replace the text between the BEGIN and END markers of ``path`` with ``hook_reference()``."""
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ScaffoldError(f"{path}: markers {BEGIN!r} and {END!r} not found")
    head = text[: start + len(BEGIN)]
    path.write_text(f"{head}\n\n{hook_reference()}\n{text[end:]}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rnnvision_kit.scaffold")
    parser.add_argument("--hook-reference", action="store_true", help="print the hook reference")
    parser.add_argument("--write", type=Path, metavar="FILE", help="update FILE between markers")
    args = parser.parse_args(argv)
    if args.write:
        write_reference(args.write)
    elif args.hook_reference:
        sys.stdout.write(hook_reference())
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
