"""``rnnkit new-plugin``: the package it writes installs, registers its task through its entry
point, trains with ``rnnkit run``, is evaluated again with ``rnnkit eval`` and passes its own tests
at once."""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from plugins_fixtures import PLUGIN_ENV, pip_install

from rnnvision_kit.scaffold import TEMPLATES, plugin_names

if TYPE_CHECKING:
    from tests.conftest import CliRunner


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


def test_new_plugin_writes_a_complete_package(rnnkit: CliRunner, tmp_path: Path) -> None:
    result = rnnkit("new-plugin", "road-signs", "--dir", str(tmp_path))
    root = tmp_path / "rnnkit-road-signs"
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"created {root}"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == sorted(t.format(package="rnnkit_road_signs") for t in TEMPLATES.values())
    pyproject = (root / "pyproject.toml").read_text()
    assert (
        '[project.entry-points.rnnvision_kit]\nroad-signs = "rnnkit_road_signs.plugin"' in pyproject
    )
    assert "class RoadSignsTask(Task):" in (root / "rnnkit_road_signs" / "task.py").read_text()
    assert "$" not in "".join((root / name).read_text() for name in files)  # all substituted
    for path in root.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "compiled.pyc"), doraise=True)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="needs ruff on PATH (the test extra)")
def test_new_plugin_code_is_lint_clean(tmp_path: Path) -> None:
    from rnnvision_kit.scaffold import create_plugin

    root = create_plugin("stripes", tmp_path)
    rules = ["--isolated", "--select", "E,F,W,I,UP,B,SIM", "--line-length", "100"]
    lint = subprocess.run(["ruff", "check", *rules, "."], cwd=root, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Road_Signs", "invalid plugin name 'Road_Signs'"),
        ("9lives", "invalid plugin name '9lives'"),
        ("rnnkit-signs", "give the short name: 'signs'"),
    ],
)
def test_new_plugin_refuses_bad_names(rnnkit: CliRunner, name: str, message: str) -> None:
    result = rnnkit("new-plugin", name)
    assert result.returncode == 2
    assert result.stderr.startswith(f"rnnkit: error: {message}") and result.stderr.count("\n") == 1


def test_new_plugin_refuses_an_existing_folder(rnnkit: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "rnnkit-stripes").mkdir()
    result = rnnkit("new-plugin", "stripes", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert list((tmp_path / "rnnkit-stripes").iterdir()) == []


def test_plugin_names() -> None:
    assert plugin_names("my-task") | {"core_version": ""} == {
        "plugin": "my-task",
        "task": "my-task",
        "dataset": "my-task-data",
        "distribution": "rnnkit-my-task",
        "package": "rnnkit_my_task",
        "task_class": "MyTaskTask",
        "core_version": "",
    }


@pytest.mark.slow  # pip-installs the scaffold and runs its tests (about 20 s)
def test_scaffolded_plugin_installs_and_passes_its_own_tests(
    rnnkit: CliRunner, rnnkit_process: CliRunner, tmp_path: Path
) -> None:
    assert rnnkit("new-plugin", "stripes", "--dir", str(tmp_path)).returncode == 0
    site = tmp_path / "site"
    pip_install(tmp_path / "rnnkit-stripes", site)
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    tasks = rnnkit_process("tasks", env=env)
    assert tasks.returncode == 0, tasks.stderr
    assert any(line.split()[:2] == ["stripes", "stripes"] for line in tasks.stdout.splitlines())

    run = rnnkit_process("run", "--task", "stripes", "--epochs", "3", "--json", env=env)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["monitor"] == "val/acc"
    assert summary["test"]["test/acc"] > 0.6, summary["test"]  # chance: 1/3
    again = rnnkit_process("eval", summary["run_dir"], "--json", env=env)  # from best.pt
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["metrics"]["test/acc"] == summary["test"]["test/acc"]

    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path / "rnnkit-stripes",
        env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "6 passed" in own_tests.stdout
