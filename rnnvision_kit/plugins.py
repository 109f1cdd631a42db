"""The plugin host: loads plugins, fills the registries, isolates failures, lists what it found.

Discovery is our own loop over ``importlib.metadata.entry_points(group="rnnvision_kit")`` (pluggy's
``load_setuptools_entrypoints`` stops at the first failing plugin and silently skips a second
distribution with a taken name). Each plugin is imported and registered inside its own
try/except: a failing one is rolled back, warned about once on stderr and listed as broken.
"""

from __future__ import annotations

import copy
import importlib
import importlib.metadata as metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from rnnvision_kit import hookspecs
from rnnvision_kit.errors import PluginError, RnnkitError, one_line, warn
from rnnvision_kit.registry import Registries

if TYPE_CHECKING:
    from rnnvision_kit.runner.events import Run

ENTRY_POINT_GROUP = "rnnvision_kit"


@dataclass
class PluginRecord:
    """What the host knows about one plugin."""

    name: str
    source: str  # "entry point", "--plugin", "RNNKIT_PLUGINS" or "object"
    target: str  # the entry point value, module name or file path
    version: str = ""  # the distribution's version, when it came from one
    distribution: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names
    commands: list[str] = field(default_factory=list)
    error: str | None = None  # one line; None when the plugin works

    @property
    def broken(self) -> bool:
        return self.error is not None


def _env_list(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


class PluginHost:
    """A pluggy manager plus registries, with per-plugin error isolation and provenance."""

    def __init__(self, *, strict: bool | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.hooks = Hooks(self.pm)
        self.registries = Registries()
        self.records: dict[str, PluginRecord] = {}
        self.strict = os.environ.get("RNNKIT_STRICT_PLUGINS") == "1" if strict is None else strict
        self.disabled = set(_env_list("RNNKIT_DISABLE_PLUGINS"))

    # ----------------------------------------------------------------- loading
    def load_entry_points(self, distribution: str | None = None) -> None:
        """Load every plugin declared in the ``rnnvision_kit`` entry-point group (built-ins
        included), or only those of ``distribution`` (``"rnnvision-kit"``: the built-ins)."""
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            if distribution and (dist is None or dist.metadata["Name"] != distribution):
                continue
            record = PluginRecord(
                name=ep.name,
                source="entry point",
                target=ep.value,
                version=dist.version if dist else "",
                distribution=dist.metadata["Name"] if dist else "",
            )
            self._load(record, ep.load)

    def load_local(self, specs: Iterable[str], source: str = "--plugin") -> None:
        """Load plugins named by module path or ``.py`` file (``--plugin`` / ``RNNKIT_PLUGINS``)."""
        for spec in specs:
            name = Path(spec).stem if spec.endswith(".py") else spec
            self._load(
                PluginRecord(name=name, source=source, target=spec), lambda s=spec: _import(s)
            )

    def load_object(self, plugin: object, name: str) -> PluginRecord:
        """Register an already imported module or object as a plugin (tests, embedding)."""
        return self._load(
            PluginRecord(name=name, source="object", target=repr(plugin)), lambda: plugin
        )

    def load_core(self) -> None:
        """The core's own hook implementations (the shared sequence heads), as plugin ``core``."""
        from rnnvision_kit import builtins

        self._load(
            PluginRecord(name="core", source="core", target=builtins.__name__), lambda: builtins
        )

    def load_default(self, local: Iterable[str] = ()) -> None:
        """The core's heads, entry points, then ``RNNKIT_PLUGINS``, then ``--plugin`` values."""
        self.load_core()
        self.load_entry_points()
        self.load_local(_env_list("RNNKIT_PLUGINS"), source="RNNKIT_PLUGINS")
        self.load_local(local, source="--plugin")

    def _load(self, record: PluginRecord, loader: Any) -> PluginRecord:
        if record.name in self.disabled:
            return record
        if record.name in self.records:
            existing = self.records[record.name]
            record.error = (
                f"plugin name {record.name!r} is already taken by {existing.target} "
                f"({existing.source})"
            )
            self.records[f"{record.name} ({record.target})"] = record
            self._fail(record, PluginError(record.error))
            return record
        self.records[record.name] = record
        try:
            plugin = loader()
            self.pm.register(plugin, name=record.name)
        except Exception as error:  # a plugin may fail in any way; isolate it
            self._fail(record, error)
            return record
        unknown = _unknown_hooks(self.pm, plugin)
        if unknown:  # a misspelt hook name would otherwise be ignored silently
            self.pm.unregister(name=record.name)
            self._fail(record, PluginError(f"unknown hook(s): {', '.join(unknown)}"))
            return record
        try:
            self._register_from(record)
        except Exception as error:
            self.registries.remove_plugin(record.name)
            record.registered.clear()
            self.pm.unregister(name=record.name)
            self._fail(record, error)
        return record

    def _register_from(self, record: PluginRecord) -> None:
        for kind, hook in self.hooks.register_hooks().items():
            registry = self.registries[kind]
            names = record.registered.setdefault(kind, [])

            def register(name: str, factory: Any, _r=registry, _n=names, **meta: Any) -> Any:
                _r.add(name, factory, record.name, **meta)
                _n.append(name)
                return factory

            call_own(hook, record.name, register=register)
            if not names:
                del record.registered[kind]

    def _fail(self, record: PluginRecord, error: BaseException) -> None:
        record.error = record.error or one_line(error)
        if self.strict:
            raise PluginError(f"plugin {record.name!r} ({record.target}) failed: {record.error}")
        warn(f"plugin {record.name!r} is broken: {record.error}")

    # --------------------------------------------------------------- commands
    def add_commands(self, cli: Any) -> None:
        """Let each working plugin add click commands to ``cli``; a failing plugin is reported.

        Each plugin adds to its own copy of the group, so that what it added is known even when
        ``cli`` already holds its commands (a second ``main()`` in one process), and a plugin that
        fails or takes a command name already in use adds nothing.
        """
        claimed: dict[str, str] = {}  # command name -> plugin, in this call
        for record in list(self.records.values()):
            if record.broken:
                continue
            view = copy.copy(cli)
            view.commands = {}
            try:
                call_own(self.hooks.commands(), record.name, cli=view)
                for name, command in view.commands.items():
                    owner = claimed.get(name) or _core_command_owner(cli.commands.get(name))
                    if owner and cli.commands.get(name) is not command:
                        raise PluginError(f"command {name!r} is already provided by {owner}")
            except Exception as error:
                self._fail(record, error)
                continue
            cli.commands.update(view.commands)
            claimed.update(dict.fromkeys(view.commands, f"plugin {record.name!r}"))
            record.commands = sorted(view.commands)

    # ---------------------------------------------------------------- queries
    @property
    def broken(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.broken]

    @property
    def events(self) -> PluginEvents:
        """The runner events of the loaded plugins, for the runner."""
        return PluginEvents(self)

    def _drop(self, plugin_name: str, where: str, error: BaseException) -> None:
        """A plugin raised in a runner event: unregister it and report it once."""
        record = self.records.get(plugin_name)
        if record is None:
            raise error
        self.pm.unregister(name=plugin_name)
        record.error = f"in {where}: {one_line(error)}"
        self._fail(record, error)


class Hooks:
    """Every call of a hook goes through here: the hook callers by kind, and the runner events.
    No hook is named by a string anywhere else."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def register_hooks(self) -> dict[str, pluggy.HookCaller]:
        """Registry kind -> its registration hook."""
        hook = self.pm.hook
        return {
            "tasks": hook.rnnkit_register_tasks,
            "datasets": hook.rnnkit_register_datasets,
            "backbones": hook.rnnkit_register_backbones,
            "heads": hook.rnnkit_register_heads,
            "layers": hook.rnnkit_register_layers,
            "metrics": hook.rnnkit_register_metrics,
        }

    def commands(self) -> pluggy.HookCaller:
        return self.pm.hook.rnnkit_register_commands


def call_own(hook: pluggy.HookCaller, plugin_name: str, **kwargs: Any) -> None:
    """Call one plugin's implementation of ``hook``, passing only the arguments it accepts."""
    for impl in hook.get_hookimpls():
        if impl.plugin_name == plugin_name:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})


class PluginEvents:
    """The runner events (``rnnvision_kit.runner.events.RunEvents``) of a host's plugins: each
    implementation is called in turn; one that raises is reported and dropped, the rest go on."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    def _notify(self, hook: pluggy.HookCaller, **kwargs: Any) -> None:
        for impl in hook.get_hookimpls():
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as error:
                self.host._drop(impl.plugin_name, hook.name, error)

    def on_run_start(self, run: Run) -> None:
        self._notify(self.host.pm.hook.rnnkit_on_run_start, run=run)

    def on_epoch_end(self, run: Run | None, epoch: int, metrics: dict[str, float]) -> None:
        self._notify(self.host.pm.hook.rnnkit_on_epoch_end, run=run, epoch=epoch, metrics=metrics)

    def on_run_end(self, run: Run, summary: dict[str, Any]) -> None:
        self._notify(self.host.pm.hook.rnnkit_on_run_end, run=run, summary=summary)

    def on_exception(self, run: Run, error: BaseException) -> None:
        self._notify(self.host.pm.hook.rnnkit_on_exception, run=run, error=error)


def _import(spec: str) -> ModuleType:
    """Import a plugin given as a dotted module name or a path to a ``.py`` file."""
    if spec.endswith(".py"):
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise RnnkitError(f"{spec}: plugin file not found")
        module_name = f"rnnkit_local_plugin_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        assert loader_spec is not None and loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]  # no half-initialised module left behind
            raise
        return module
    return importlib.import_module(spec)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Names of ``plugin``'s hook implementations that match no specification."""
    unknown = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None and not any(
            impl.plugin is plugin and impl.optionalhook for impl in caller.get_hookimpls()
        ):
            unknown.append(caller.name)
    return sorted(unknown)


def _core_command_owner(command: Any) -> str | None:
    """``"rnnkit"`` when ``command`` is one of the core's own commands, else None."""
    module = getattr(getattr(command, "callback", None), "__module__", "") or ""
    return "rnnkit" if module.split(".")[0] == "rnnvision_kit" else None


def build_host(local_plugins: Iterable[str] = (), *, strict: bool | None = None) -> PluginHost:
    """A host with entry-point plugins, ``RNNKIT_PLUGINS`` and the given local plugins loaded."""
    host = PluginHost(strict=strict)
    host.load_default(local_plugins)
    return host
