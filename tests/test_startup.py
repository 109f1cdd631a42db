"""``rnnkit --help``, ``rnnkit tasks`` and ``rnnkit plugins`` must not import torch: they import
every plugin's hook module, and torch alone takes seconds to import. Nor must a config error:
tasks registered with ``config=`` are configured and validated before torch is imported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from plugins_fixtures import PLUGIN_ENV, fixture, imports_torch, rnnkit_imports

from rnnvision_kit.errors import PluginError, RegistryError
from rnnvision_kit.plugins import build_host
from rnnvision_kit.registry import Registry
from rnnvision_kit.task import declared_defaults

if TYPE_CHECKING:
    from tests.conftest import CliRunner


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["tasks"], ["plugins"], ["--plugin", fixture("registers_all"), "tasks"]],
    ids=["help", "tasks", "plugins", "tasks-with-local-plugin"],
)
def test_listing_commands_do_not_import_torch(args: list[str]) -> None:
    result, modules = rnnkit_imports(*args)
    assert result.returncode == 0, result.stderr
    assert "rnnkit_classify.plugin" in modules  # plugins were loaded
    assert not imports_torch(modules), sorted(m for m in modules if m.startswith("torch"))


# ------------------------------------------------------------- config errors before torch

TRAIN_KEYS = "known here: accumulate, channels_last"  # the start of train's setting names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--task", "video-action", "--set", "train.lrr=1"],
            f"unknown config key 'train.lrr' ({TRAIN_KEYS}",
        ),
        (
            ["run", "--task", "seg-refine", "--set", "train.batch_size=2"],
            "did you mean 'data.batch_size'?",
        ),
        (
            ["run", "--task", "image-classify", "--epochs", "2", "--set", "train.lr=.inf"],
            "train.lr: must be finite (got inf)",
        ),
        (
            ["check-data", "--task", "video-action", "--data", "videofolder:/nonexistent"]
            + ["--set", "data.val_fraction=0.7", "--set", "data.test_fraction=0.5"],
            "data.val_fraction + data.test_fraction: 0.7 + 0.5 = 1.2 leaves no training "
            "videos (must be < 1)",
        ),
    ],
    ids=["typo", "other-section", "inf", "fractions"],
)
def test_a_config_error_is_one_line_before_torch_is_imported(args: list[str], message: str) -> None:
    """Issue 17: a typo took 12 s and 937 MB (torch, torchvision, timm, smp imported first)."""
    result, modules = rnnkit_imports(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rnnkit: error: ") and result.stderr.count("\n") == 0
    assert message in result.stderr
    assert "rnnkit_video.plugin" in modules  # the real CLI path ran
    assert not imports_torch(modules), sorted(m for m in modules if m.startswith("torch"))


def test_an_eval_setting_error_is_one_line_before_torch_is_imported(tmp_path: Path) -> None:
    """``eval RUN --set`` checks the settings on the run's config.yaml first (no checkpoint
    is read: this folder has none)."""
    from rnnkit_classify.config import defaults

    from rnnvision_kit.config import save_yaml

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_yaml(defaults(), run_dir / "config.yaml")
    result, modules = rnnkit_imports("eval", str(run_dir), "--set", "data.batch_sise=8")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rnnkit: error: unknown config key 'data.batch_sise'")
    assert "did you mean 'data.batch_size'?" in result.stderr and result.stderr.count("\n") == 0
    assert not imports_torch(modules), sorted(m for m in modules if m.startswith("torch"))


OLD_STYLE = """
from rnnvision_kit import DataConfig, RunConfig, Task, hookimpl


class OldTask(Task):
    def default_config(self) -> RunConfig:
        return RunConfig(task="old", data=DataConfig(source="digits"))


@hookimpl
def rnnkit_register_tasks(register):
    register("old", OldTask, kind="image")  # no config=: its defaults come from the task
"""


def test_a_task_registered_without_config_is_configured_as_before(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    plugin = tmp_path / "old_style.py"
    plugin.write_text(OLD_STYLE)
    args = ["--plugin", str(plugin), "run", "--task", "old", "--set", "train.batch_size=8"]
    result = rnnkit(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rnnkit: error: unknown config key 'train.batch_size'")
    assert result.stderr.rstrip("\n").endswith("; did you mean 'data.batch_size'?")


@pytest.mark.parametrize("task", ["image-classify", "video-action", "seg-refine"])
def test_declared_defaults_are_the_tasks_own(task: str) -> None:
    entry = build_host().registries.tasks.get(task)
    declared = declared_defaults(entry, task)
    assert declared is not None
    assert declared.to_dict() == entry.factory().default_config().to_dict()


def test_a_config_that_is_not_callable_breaks_the_registration() -> None:
    registry = Registry("tasks")
    with pytest.raises(RegistryError, match=r"plugin 'p': task 't': config must be a callable"):
        registry.add("t", object, "p", kind="image", config="p.config:defaults")


def test_a_config_that_fails_is_one_line_naming_the_plugin() -> None:
    registry = Registry("tasks")
    entry = registry.add("t", object, "p", kind="image", config=lambda: 1 / 0)
    with pytest.raises(PluginError, match=r"^plugin 'p': task 't': its config= failed: Zero"):
        declared_defaults(entry)
    entry = registry.add("u", object, "p", kind="image", config=dict)
    with pytest.raises(PluginError, match=r"its config= returned dict, not a RunConfig$"):
        declared_defaults(entry)
