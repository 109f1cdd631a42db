"""Scaffolding for plugin authors: ``rnnkit new-plugin NAME`` writes a package ready to install."""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path

from rnnvision_kit.errors import RnnkitError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# template file -> path in the new package ({package} is the import name); the one plugin shape:
# hooks in plugin.py, the Task in task.py, settings in config.py, data sources in data.py, models
# in model.py (and metrics.py, predict.py, check.py, report.py where a plugin has those)
TEMPLATES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "{package}/__init__.py",
    "plugin.py.tmpl": "{package}/plugin.py",
    "task.py.tmpl": "{package}/task.py",
    "config.py.tmpl": "{package}/config.py",
    "data.py.tmpl": "{package}/data.py",
    "model.py.tmpl": "{package}/model.py",
    "test_plugin.py.tmpl": "tests/test_plugin.py",
}


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
