"""Small plugins for the plugin-host tests, each loaded with ``--plugin FILE.py`` (or
``RNNKIT_PLUGINS``), and helpers for the tests that use them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent
PLUGIN_ENV = ("RNNKIT_PLUGINS", "RNNKIT_DISABLE_PLUGINS", "RNNKIT_STRICT_PLUGINS")


def fixture(name: str) -> str:
    """Path of the fixture plugin ``name`` (a file in this folder, without ``.py``)."""
    return str(FIXTURES / f"{name}.py")


def read_events(path: Path) -> list[dict[str, Any]]:
    """The runner events ``recorder.py`` wrote, in order."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Small CPU models train fastest on one thread, above all on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pip_install(source: Path, target: Path) -> None:
    """``pip install`` a package (not editable, no dependencies, offline) into the folder
    ``target``, which a test puts on ``PYTHONPATH``: the environment itself is left alone."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"pip install {source} failed:\n{result.stdout}{result.stderr}"


# Runs the CLI like `python -m rnnvision_kit ARGS`, then reports on stderr which modules it imported.
_REPORT_IMPORTS = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr))\n"
    "from rnnvision_kit.cli import main\n"
    "main(sys.argv[1:])\n"
)


def rnnkit_imports(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``rnnkit ARGS`` in a subprocess; return the result and the modules it imported."""
    import os

    result = subprocess.run(
        [sys.executable, "-c", _REPORT_IMPORTS, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    lines = result.stderr.splitlines()
    modules = set(lines[-1].split()[1:]) if lines and lines[-1].startswith("MODULES ") else set()
    result.stderr = "\n".join(lines[:-1] if modules else lines)
    return result, modules


def imports_torch(modules: set[str]) -> bool:
    return any(m == "torch" or m.startswith("torch.") for m in modules)
