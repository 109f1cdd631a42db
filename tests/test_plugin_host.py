"""Robustness of the plugin host: broken plugins are isolated, rolled back, named, and listed; the
CLI keeps working for the others; strict mode, disabling, local plugins; name collisions."""

from __future__ import annotations

import copy
import json
import sys
from importlib import metadata
from typing import TYPE_CHECKING, Any

import click
import pytest
from plugins_fixtures import PLUGIN_ENV, fixture, one_thread

from rnnvision_kit import PluginError, RegistryError, hookimpl
from rnnvision_kit.plugins import ENTRY_POINT_GROUP, PluginHost, build_host
from rnnvision_kit.testing import check_plugin, plugin_host

if TYPE_CHECKING:
    from tests.conftest import CliRunner

BROKEN = {  # fixture plugin -> its one-line error
    "bad_import": "ModuleNotFoundError: No module named 'rnnkit_no_such_module_for_tests'",
    "raises_in_register": "RuntimeError: data registry offline",
    "twice": "RegistryError: plugin 'twice' registered heads 'twin' twice",
    "typo": "PluginError: unknown hook(s): rnnkit_register_task",
}


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


def host_with(*names: str, strict: bool = False) -> PluginHost:
    """Core, entry points and the named fixture plugins, as ``rnnkit --plugin`` loads them."""
    return build_host([fixture(name) for name in names], strict=strict)


def plugin_args(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--plugin", fixture(name))]


def only_classify_env() -> dict[str, str]:
    """Disable every installed plugin but the built-in classify (keeps ``--check`` small)."""
    others = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)} - {"classify"}
    return {"RNNKIT_DISABLE_PLUGINS": ",".join(sorted(others))} if others else {}


# ------------------------------------------------------------------------ the host, directly


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_plugin_is_rolled_back_listed_and_warned_once(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    host = host_with(name)
    record = host.records[name]
    assert record.error == BROKEN[name]
    assert record.registered == {}
    assert not host.pm.has_plugin(name)
    assert host.broken == [record]
    assert "image-classify" in host.registries.tasks  # the others are untouched
    assert (
        capsys.readouterr().err == f"rnnkit: warning: plugin {name!r} is broken: {BROKEN[name]}\n"
    )


def test_partial_registrations_of_a_failing_plugin_are_removed() -> None:
    host = host_with("raises_in_register")
    assert "half-registered" not in host.registries.tasks
    assert "twice-task" not in host_with("twice").registries.tasks
    assert "rnnkit_local_plugin_bad_import" not in sys.modules


def test_strict_mode_makes_a_broken_plugin_an_error() -> None:
    with pytest.raises(PluginError) as caught:
        host_with("bad_import", strict=True)
    message = str(caught.value)
    assert message.startswith("plugin 'bad_import' (") and "\n" not in message
    assert message.endswith(f"failed: {BROKEN['bad_import']}")


def test_name_taken_by_two_plugins_is_ambiguous_bare_and_works_qualified() -> None:
    host = host_with("clash")
    from rnnvision_kit.runner.pipeline import open_task

    with pytest.raises(RegistryError, match="classify:image-classify, clash:image-classify"):
        open_task(host.registries, "image-classify")
    task = open_task(host.registries, "clash:image-classify")
    assert (task.name, task.plugin) == ("image-classify", "clash")
    assert host.registries.tasks.get("classify:image-classify").plugin == "classify"
    assert host.registries.layers.get("core:gru").plugin == "core"
    assert {"classify:image-classify", "clash:image-classify"} <= set(host.registries.tasks.names())
    assert not host.broken


def test_a_plugin_name_is_loaded_once() -> None:
    host = host_with("commands", "commands")
    assert [r.name for r in host.broken] == ["commands"]
    assert "is already taken by" in host.broken[0].error
    assert not host.records["commands"].broken


def test_commands_are_attributed_and_core_commands_protected() -> None:
    from rnnvision_kit.cli import cli

    group = copy.copy(cli)
    group.commands = dict(cli.commands)  # leave the real group alone
    for _ in range(2):  # a second host in one process (the group already has `hello`)
        host = host_with("commands", "takes_run")
        host.add_commands(group)
        assert host.records["commands"].commands == ["hello"]
    assert host.records["takes_run"].error == (
        "PluginError: command 'run' is already provided by rnnkit"
    )
    assert group.commands["run"] is cli.commands["run"]


def test_event_hook_that_raises_is_reported_and_dropped(capsys: pytest.CaptureFixture) -> None:
    class Flaky:
        calls = 0

        @hookimpl
        def rnnkit_on_epoch_end(self, epoch: int) -> None:  # fewer arguments than the spec
            Flaky.calls += 1
            raise ValueError("logger down")

    host = plugin_host(strict=False, flaky=Flaky())
    for epoch in range(2):
        host.events.on_epoch_end(None, epoch, {})
    assert Flaky.calls == 1
    assert host.records["flaky"].error == "in rnnkit_on_epoch_end: ValueError: logger down"
    assert "plugin 'flaky' is broken" in capsys.readouterr().err
    with pytest.raises(PluginError, match="logger down"):
        plugin_host(flaky=Flaky()).events.on_epoch_end(None, 0, {})


def test_plugin_host_holds_only_the_core_and_the_given_plugins(monkeypatch) -> None:
    import rnnkit_classify.plugin as classify

    monkeypatch.setenv("RNNKIT_DISABLE_PLUGINS", "classify")
    host = plugin_host(classify)
    assert list(host.records) == ["core", "rnnkit_classify.plugin"]
    assert host.registries.tasks.names() == ["image-classify"]
    with pytest.raises(PluginError, match="unknown hook"):
        plugin_host(typo=_load_fixture("typo"))


def _load_fixture(name: str) -> object:
    from rnnvision_kit.plugins import _import

    return _import(fixture(name))


def test_check_plugin_names_the_task_stage_and_error() -> None:
    host = host_with("build_fails", "bad_import")
    (failed,) = check_plugin(host, "build_fails")
    assert (failed.task, failed.plugin, failed.ok, failed.stage, failed.error) == (
        "build_fails:fails-at-build",
        "build_fails",
        False,
        "build_data",
        "ValueError: cannot find the data",
    )
    (broken,) = check_plugin(host, "bad_import")
    assert (broken.task, broken.ok, broken.stage) == ("-", False, "load")
    (step,) = check_plugin(host_with("explode"), "explode")
    assert (step.stage, step.error) == ("step", "RuntimeError: exploded in step")

    class NotATask:
        @hookimpl
        def rnnkit_register_tasks(self, register: Any) -> None:
            register("not-a-task", object, kind="image")

    (created,) = check_plugin(plugin_host(odd=NotATask()), "odd")
    assert (created.stage, created.error) == (
        "create",
        "PluginError: plugin 'odd': task 'not-a-task': the factory returned object, not a Task",
    )
    with pytest.raises(PluginError, match="unknown plugin 'nope'"):
        check_plugin(host, "nope")


# ------------------------------------------------------------------------- the real CLI


def test_cli_keeps_working_and_names_each_broken_plugin(rnnkit_process: CliRunner) -> None:
    args = plugin_args(*BROKEN, "build_fails")
    tasks = rnnkit_process(*args, "tasks")
    assert tasks.returncode == 0, tasks.stderr
    assert "image-classify" in tasks.stdout and "fails-at-build" in tasks.stdout
    assert "half-registered" not in tasks.stdout and "twice-task" not in tasks.stdout
    warnings = [line for line in tasks.stderr.splitlines() if line.startswith("rnnkit: warning")]
    assert warnings == [f"rnnkit: warning: plugin {n!r} is broken: {e}" for n, e in BROKEN.items()]
    assert "Traceback" not in tasks.stderr

    listing = rnnkit_process(*args, "plugins")
    assert listing.returncode == 0
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[2:]}
    for name, error in BROKEN.items():
        assert rows[name].endswith(f"BROKEN: {error}")
        assert f"--plugin {fixture(name)}" in rows[name]
    assert rows["build_fails"].split()[-3:] == ["tasks:", "fails-at-build", "ok"]
    assert "entry point rnnkit_classify.plugin [rnnvision-kit]" in rows["classify"]


def test_strict_plugins_env_turns_a_broken_plugin_into_an_error(
    rnnkit_process: CliRunner,
) -> None:
    result = rnnkit_process(*plugin_args("bad_import"), "tasks", env={"RNNKIT_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("rnnkit: error: plugin 'bad_import'") and BROKEN["bad_import"] in line


def test_disable_plugins_env_skips_plugins_by_name(rnnkit_process: CliRunner) -> None:
    env = {"RNNKIT_DISABLE_PLUGINS": "classify, bad_import"}
    tasks = rnnkit_process(*plugin_args("bad_import", "build_fails"), "tasks", env=env)
    assert tasks.returncode == 0 and "bad_import" not in tasks.stderr  # silenced
    assert "image-classify" not in tasks.stdout and "fails-at-build" in tasks.stdout
    listing = rnnkit_process(*plugin_args("bad_import"), "plugins", env=env)
    names = [line.split()[0] for line in listing.stdout.splitlines()[2:]]
    assert "classify" not in names and "bad_import" not in names and "core" in names
    assert "disabled by RNNKIT_DISABLE_PLUGINS: bad_import, classify" in listing.stdout


def test_rnnkit_plugins_env_loads_local_plugins(rnnkit_process: CliRunner) -> None:
    env = {"RNNKIT_PLUGINS": f"{fixture('commands')},{fixture('build_fails')}"}
    hello = rnnkit_process("hello", "tests", env=env)
    assert hello.stdout == "hello tests from a plugin\n"
    listing = rnnkit_process("plugins", env=env)
    row = next(line for line in listing.stdout.splitlines() if line.startswith("commands "))
    assert f"RNNKIT_PLUGINS {fixture('commands')}" in row
    assert row.split()[-3:] == ["commands:", "hello", "ok"]


def test_ambiguous_task_name_is_a_one_line_error_and_qualified_names_run(
    rnnkit: CliRunner,
) -> None:
    ambiguous = rnnkit(*plugin_args("clash"), "run", "--task", "image-classify")
    assert ambiguous.returncode == 2
    assert ambiguous.stderr == (
        "rnnkit: error: task name 'image-classify' is registered by several plugins; "
        "use one of: classify:image-classify, clash:image-classify\n"
    )
    tiny = ["--epochs", "1", "--set", "train.max_steps_per_epoch=1", "--set", "model.hidden_size=8"]
    head = rnnkit(*plugin_args("clash"), "run", "--task", "clash:image-classify", *tiny, "--quiet")
    assert head.returncode == 2 and "use one of: core:gru, clash:gru" in head.stderr  # its gru, too
    with one_thread():
        qualified = rnnkit(
            *plugin_args("clash"),
            "run",
            "--task",
            "clash:image-classify",
            *tiny,
            "--set",
            "model.head=core:gru",
            "--json",
        )
    assert qualified.returncode == 0, qualified.stderr
    assert json.loads(qualified.stdout)["task"] == "clash:image-classify"


def test_plugins_check_names_the_failing_task_and_exits_non_zero(
    rnnkit: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in only_classify_env().items():
        monkeypatch.setenv(key, value)
    with one_thread():
        result = rnnkit(*plugin_args("build_fails", "bad_import"), "plugins", "--check")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "rnnkit: error: 2 of 3 plugin checks failed"
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["task", "plugin", "status", "error"]
    rows = {line.split()[0]: line.split(None, 3) for line in lines[2:-1]}
    assert rows["classify:image-classify"] == ["classify:image-classify", "classify", "ok"]
    assert rows["build_fails:fails-at-build"] == [
        "build_fails:fails-at-build",
        "build_fails",
        "FAIL",
        "(build_data)  ValueError: cannot find the data",
    ]
    assert rows["-"][1] == "bad_import"
    assert lines[-1] == "1 passed, 2 failed"


def test_click_group_view_keeps_plugin_commands_out_of_a_failing_plugin() -> None:
    group = click.Group("rnnkit")

    class HalfCommands:
        @hookimpl
        def rnnkit_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("first"))
            raise RuntimeError("second command failed")

    host = plugin_host(strict=False, half=HalfCommands())
    host.add_commands(group)
    assert group.commands == {}
    assert host.records["half"].error == "RuntimeError: second command failed"
