"""Dependencies point down only (DESIGN.md): plugins -> core; the core never imports a plugin;
``data`` and ``nn`` import nothing else from the core but ``errors`` (and the leaf
utilities ``safe_load``, ``atomicfile``, ``lazyexports``, ``progress``; ``data`` also the torch-free records it fills:
``config`` for its settings, ``dataspec`` for specs and bundles); the CLI imports no torch at
module level."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CORE = REPO / "rnnvision_kit"
PLUGIN_PACKAGES = sorted(
    p.name for p in (REPO / "plugins").iterdir() if (p / "__init__.py").is_file()
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_core_never_imports_a_plugin(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in PLUGIN_PACKAGES}
    assert not bad, f"{path.relative_to(REPO)} imports plugin modules {bad}"


@pytest.mark.parametrize("layer", ["data", "nn"])
def test_data_and_nn_depend_on_nothing_else_in_the_core(layer: str) -> None:
    allowed = (
        "rnnvision_kit.errors",
        "rnnvision_kit.safe_load",
        "rnnvision_kit.atomicfile",
        "rnnvision_kit.lazyexports",
        "rnnvision_kit.progress",
        f"rnnvision_kit.{layer}",
        *(("rnnvision_kit.config", "rnnvision_kit.dataspec") if layer == "data" else ()),
    )
    for path in sorted((CORE / layer).rglob("*.py")):
        for module in imported_modules(path):
            if module.startswith("rnnvision_kit"):
                assert module.startswith(allowed), f"{path.relative_to(REPO)} imports {module}"


def test_runner_does_not_import_the_cli() -> None:
    for path in sorted((CORE / "runner").rglob("*.py")):
        assert "rnnvision_kit.cli" not in imported_modules(path), path


def test_cli_start_up_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from rnnvision_kit.cli import main\n"
        "try:\n    main(['tasks'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'av', 'segmentation_models_pytorch', 'torchmetrics') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "HEAVY=", result.stdout


# The public API (rnnvision_kit/__init__.py's docstring): plugins import only these modules.
PUBLIC_MODULES = {
    "rnnvision_kit",
    "rnnvision_kit.classification",
    "rnnvision_kit.data",
    "rnnvision_kit.nn",
    "rnnvision_kit.runner",
    "rnnvision_kit.testing",
}


def plugin_files() -> list[Path]:
    roots = [REPO / "plugins", REPO / "examples"]
    files = [p for root in roots for p in sorted(root.rglob("*.py")) if "build" not in p.parts]
    return files + sorted((CORE / "templates").rglob("*.py.tmpl"))


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_import_only_the_public_api(path: Path) -> None:
    text = path.read_text()
    if path.suffix == ".tmpl":  # templates hold $placeholders; their imports are plain lines
        import re

        modules = set(re.findall(r"^\s*(?:from|import) (rnnvision_kit[\w.]*)", text, re.M))
    else:
        modules = {m for m in imported_modules(path) if m.split(".")[0] == "rnnvision_kit"}
    private = sorted(m for m in modules if m not in PUBLIC_MODULES)
    assert not private, f"{path.relative_to(REPO)} imports non-public {private}"


def test_public_api_is_what_the_package_docstring_names() -> None:
    import rnnvision_kit

    doc = " ".join((rnnvision_kit.__doc__ or "").split())
    for module in sorted(PUBLIC_MODULES - {"rnnvision_kit"}):
        assert f"``{module}``" in doc, module
