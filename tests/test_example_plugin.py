"""The third-party example plugin (examples/rnnkit-pixel-generate), pip-installed into a folder on
the path: found through its entry point, listed without importing torch, and trained by
``rnnkit run --task pixel-generate`` to a held-out likelihood far better than the untrained model's,
then evaluated again by ``rnnkit eval`` from its checkpoint (which stores the plugin's own spec)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from plugins_fixtures import PLUGIN_ENV, imports_torch, one_thread, pip_install, rnnkit_imports

if TYPE_CHECKING:
    from tests.conftest import CliRunner

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rnnkit-pixel-generate"
PACKAGE = "rnnkit_pixel_generate"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed (a copy, so that no build files land in the repository)."""
    work = tmp_path_factory.mktemp("pixel-example")
    source = work / "source"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")
    shutil.copytree(EXAMPLE, source, ignore=ignore)
    pip_install(source, work / "site")
    return work / "site"


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed example importable in this process; its modules are dropped afterwards."""
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_installed_as_a_distribution_with_an_entry_point(site: Path) -> None:
    (dist_info,) = site.glob("rnnkit_pixel_generate-0.1.0.dist-info")
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "[rnnvision_kit]\npixel = rnnkit_pixel_generate.plugin" in entry_points


def test_tasks_lists_pixel_generate_without_importing_torch(installed: Path) -> None:
    result, modules = rnnkit_imports("tasks", env={"PYTHONPATH": str(installed)})
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:4] for line in result.stdout.splitlines()]
    assert ["pixel-generate", "pixel", "levels", "report"] in rows
    assert ["image-classify", "classify"] in [row[:2] for row in rows]
    assert f"{PACKAGE}.plugin" in modules
    assert not imports_torch(modules)


def test_plugins_shows_version_source_and_registrations(
    installed: Path, rnnkit_process: CliRunner
) -> None:
    result = rnnkit_process("plugins", env={"PYTHONPATH": str(installed)})
    row = next(line for line in result.stdout.splitlines() if line.startswith("pixel "))
    assert row.split("  ")[0:1] == ["pixel"]
    assert "0.1.0" in row
    assert "entry point rnnkit_pixel_generate.plugin [rnnkit-pixel-generate]" in row
    assert "tasks: pixel-generate; datasets: digit-levels; metrics: bpd" in row
    assert row.endswith("ok")


def untrained_test_bpd() -> float:
    """Held-out bits per dimension of the model as built, before any training step."""
    import torch

    from rnnvision_kit.plugins import build_host
    from rnnvision_kit.runner.device import Precision, Runtime
    from rnnvision_kit.runner.evaluate import Evaluator
    from rnnvision_kit.runner.pipeline import build, configure, open_task

    registries = build_host().registries
    task = open_task(registries, "pixel-generate")
    built = build(task, registries, configure(task), "eval")
    assert built.data is not None
    cpu = torch.device("cpu")
    evaluator = Evaluator(
        task=task,
        registries=registries,
        config=built.config,
        spec=built.spec,
        runtime=Runtime(cpu, Precision("32", cpu)),
    )
    scalars, _ = evaluator.evaluate(built.model, built.data.test, "test")
    return scalars["test/bpd"]


def test_run_learns_and_writes_sampled_digits(installed: Path, rnnkit: CliRunner) -> None:
    from PIL import Image

    with one_thread():
        before = untrained_test_bpd()
        result = rnnkit("run", "--task", "pixel-generate", "--epochs", "3", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["monitor"] == "val/bpd"
    assert before == pytest.approx(math.log2(4), abs=1e-4)  # zero-initialised output: uniform
    after = summary["test"]["test/bpd"]
    assert after < before - 0.6, (before, after)
    assert summary["test"]["test/loss"] == pytest.approx(after * math.log(2), rel=1e-4)
    rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").open()]
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert rows[-1]["val/bpd"] < rows[0]["val/bpd"]
    again = rnnkit("eval", summary["run_dir"], "--json")  # the LevelSpec read back from best.pt
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["metrics"]["test/bpd"] == pytest.approx(after, rel=1e-5)
    with Image.open(Path(summary["run_dir"]) / "samples.png") as grid:
        assert grid.size == (6 * (8 * 9 + 1), 6 * (8 * 9 + 1))  # 64 digits of 8x8, 6x scale
        assert len(grid.getcolors()) == 4  # paper, ink and the two levels between


def test_plugins_check_passes_for_the_installed_plugin(installed: Path) -> None:
    from rnnvision_kit.plugins import build_host
    from rnnvision_kit.testing import check_plugin

    with one_thread():
        (result,) = check_plugin(build_host(), "pixel")
    assert (result.task, result.ok, result.error) == ("pixel:pixel-generate", True, None)


def test_disable_plugins_env_hides_the_installed_plugin(
    installed: Path, rnnkit_process: CliRunner
) -> None:
    env = {"PYTHONPATH": str(installed), "RNNKIT_DISABLE_PLUGINS": "pixel"}
    result = rnnkit_process("tasks", env=env)
    assert "pixel-generate" not in result.stdout and "image-classify" in result.stdout
