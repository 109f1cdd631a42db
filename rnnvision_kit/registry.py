"""Named registries (tasks, datasets, backbones, heads, layers, metrics) that remember who registered what.

Every entry is reachable as ``plugin:name``. A bare name claimed by two plugins is an ambiguity
error when used; one plugin registering a name twice is an error at once; an unknown name lists
the known ones and the closest match.

An entry registered with ``family=True`` stands for many: ``FAMILY:MODEL`` (e.g. ``tv:resnet50``)
resolves, when no plugin ``FAMILY`` registered ``MODEL``, to the family's factory bound to
``MODEL`` (``factory(MODEL, **options)``); its ``models`` meta, when given, lists the members
(``models(pattern, pretrained) -> [(name, weights), ...]``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnvision_kit.errors import PluginError, RegistryError, rethrown

KINDS = ("tasks", "datasets", "backbones", "heads", "layers", "metrics")


@dataclass(frozen=True)
class Entry:
    """One registered factory and where it came from."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """``factory(*args, **kwargs)``; an exception that is not an ``RnnkitError`` becomes a
        one-line PluginError naming this entry and the plugin that registered it."""
        what = "data source" if self.kind == "datasets" else self.kind[:-1]
        where = f"{what} {self.qualified_name!r} (plugin {self.plugin!r}) failed"
        with rethrown(lambda problem: PluginError(f"{where}: {problem}")):
            return self.factory(*args, **kwargs)

    @property
    def is_family(self) -> bool:
        """True for an entry that stands for many (``FAMILY:MODEL``)."""
        return bool(self.meta.get("family"))

    def member(self, model: str) -> Entry:
        """The entry of ``FAMILY:MODEL``: this family's factory bound to ``model``."""
        factory = self.factory

        def bound(*args: Any, **kwargs: Any) -> Any:
            return factory(model, *args, **kwargs)

        meta = {**self.meta, "family": False, "member_of": self.name}
        return Entry(self.kind, f"{self.name}:{model}", bound, self.plugin, meta)

    @property
    def capabilities(self) -> tuple[str, ...]:
        """What a task declared it supports besides training (tasks only)."""
        return tuple(self.meta.get("capabilities", ()))


def lazy(target: str, *bound: Any) -> Callable[..., Any]:
    """A factory for ``register`` that imports ``"package.module:attribute"`` only when called,
    then calls the attribute with ``bound`` first and the call's own arguments after.

    ``lazy("my_plugin.task:MyTask")`` builds the task; ``lazy("my_plugin.data:open_source",
    "shapes")`` calls ``open_source("shapes", config)``. Registering this way keeps torch and
    other heavy imports off the start-up path of ``rnnkit tasks`` and ``rnnkit plugins``.
    """
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"lazy target {target!r}: expected 'package.module:attribute'")

    def factory(*args: Any, **kwargs: Any) -> Any:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return obj(*bound, *args, **kwargs)

    name = attribute.rpartition(".")[2]
    parts = [name, *(getattr(b, "__name__", str(b)) for b in bound)]  # a bound lazy: its name
    factory.__name__ = factory.__qualname__ = "_".join(parts).replace("-", "_")
    factory.__doc__ = f"lazy {target}" + (f" bound to {bound!r}" if bound else "")
    return factory


# What each kind's ``register(...)`` requires beyond name and factory.
REQUIRED_META = {"tasks": ("kind",), "datasets": ("kind",), "metrics": ("kinds",)}
CAPABILITIES = ("predict", "check-data", "report", "stream", "export")


def _names(value: Any, what: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(item, str) and item for item in items):
        raise RegistryError(f"{what}: expected a list of names, got {value!r}")
    return items


def _checked_meta(kind: str, name: str, plugin: str, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with list values as tuples, or a RegistryError naming plugin, entry and key."""
    what = f"plugin {plugin!r}: {kind[:-1]} {name!r}"
    for key in REQUIRED_META.get(kind, ()):
        if not meta.get(key):
            raise RegistryError(f"{what} needs {key}=... when registered")
    meta = dict(meta)
    if "kind" in meta and not isinstance(meta["kind"], str):
        raise RegistryError(f"{what}: kind must be a string, got {meta['kind']!r}")
    for key in ("capabilities", "reads", "kinds"):
        if key in meta:
            meta[key] = _names(meta[key], f"{what}: {key}")
    if kind == "tasks" and meta.get("config") is not None and not callable(meta["config"]):
        raise RegistryError(
            f"{what}: config must be a callable returning the task's RunConfig, e.g. "
            f"lazy('my_plugin.config:defaults'), got {meta['config']!r}"
        )
    if kind == "layers":
        _check_layer_meta(what, meta)
    unknown = sorted(set(meta.get("capabilities", ())) - set(CAPABILITIES))
    if kind == "tasks" and unknown:
        raise RegistryError(
            f"{what}: unknown capabilities {unknown} (known: {', '.join(CAPABILITIES)})"
        )
    return meta


def _check_layer_meta(what: str, meta: dict[str, Any]) -> None:
    """A layer's ``block``, ``causal`` and ``settings`` (a dataclass), or a RegistryError."""
    if meta.get("block", "residual") not in ("plain", "residual", "glu", "own"):
        raise RegistryError(
            f"{what}: block must be plain, residual, glu or own, got {meta['block']!r}"
        )
    if not isinstance(meta.get("causal", True), bool):
        raise RegistryError(f"{what}: causal must be true or false, got {meta['causal']!r}")
    settings = meta.get("settings")
    if settings is not None and not (
        isinstance(settings, type) and dataclasses.is_dataclass(settings)
    ):
        raise RegistryError(
            f"{what}: settings must be a dataclass (a LayerSettings subclass), got {settings!r}"
        )
    scale = meta.get("train_scale") or {}
    if not isinstance(scale, Mapping) or any(
        key not in ("lr", "epochs")
        or isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value < float("inf")
        for key, value in scale.items()
    ):
        raise RegistryError(
            f"{what}: train_scale must map lr and/or epochs to positive numbers, got {scale!r}"
        )


class Registry:
    """A registry of one kind: ``name -> [Entry, ...]`` (one entry per registering plugin)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, list[Entry]] = {}

    def add(self, name: str, factory: Callable[..., Any], plugin: str, **meta: Any) -> Entry:
        """Record ``factory`` under ``name`` for ``plugin``; a plugin may not register a name twice."""
        if not isinstance(name, str) or not name or ":" in name:
            raise RegistryError(f"plugin {plugin!r}: invalid {self.kind} name {name!r}")
        if not callable(factory):
            raise RegistryError(f"plugin {plugin!r}: {self.kind} {name!r} factory is not callable")
        meta = _checked_meta(self.kind, name, plugin, meta)
        entries = self._entries.setdefault(name, [])
        if any(e.plugin == plugin for e in entries):
            raise RegistryError(f"plugin {plugin!r} registered {self.kind} {name!r} twice")
        entry = Entry(self.kind, name, factory, plugin, meta)
        entries.append(entry)
        return entry

    def remove_plugin(self, plugin: str) -> None:
        """Forget everything ``plugin`` registered (used to roll back a failing plugin)."""
        for name in list(self._entries):
            kept = [e for e in self._entries[name] if e.plugin != plugin]
            if kept:
                self._entries[name] = kept
            else:
                del self._entries[name]

    def __iter__(self) -> Iterator[Entry]:
        for name in sorted(self._entries):
            yield from self._entries[name]

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except RegistryError:
            return False
        return True

    def names(self) -> list[str]:
        """Usable names: bare where unique, ``plugin:name`` where a bare name is ambiguous."""
        out: list[str] = []
        for name in sorted(self._entries):
            entries = self._entries[name]
            out.extend([name] if len(entries) == 1 else [e.qualified_name for e in entries])
        return out

    def _candidates(self, name: str) -> list[Entry]:
        plugin, _, bare = name.rpartition(":")
        candidates = self._entries.get(bare, [])
        if plugin:
            candidates = [e for e in candidates if e.plugin == plugin]
        return candidates

    def get(self, name: str) -> Entry:
        """Resolve a bare or ``plugin:name`` name to its entry, or raise a helpful RegistryError.

        ``FAMILY:MODEL`` (or ``plugin:FAMILY:MODEL``) resolves to a member of a family entry
        when no plugin named ``FAMILY`` registered ``MODEL``."""
        candidates = self._candidates(name)
        prefix, _, model = name.rpartition(":")
        if not candidates and prefix and model:
            candidates = [e.member(model) for e in self._candidates(prefix) if e.is_family]
        if len(candidates) == 1:
            if candidates[0].is_family:
                raise RegistryError(
                    f"{self.kind[:-1]} {name!r} is a family: name one of its models as "
                    f"'{name}:MODEL' (list them: rnnkit {self.kind} '{name}:*')"
                )
            return candidates[0]
        if len(candidates) > 1:
            choices = ", ".join(e.qualified_name for e in candidates)
            raise RegistryError(
                f"{self.kind[:-1]} name {name!r} is registered by several plugins; use one of: {choices}"
            )
        known = self.names()
        close = difflib.get_close_matches(name, known + list(self._entries), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        families = {e.name for e in self if e.is_family}
        shown = [f"{n}:MODEL" if n.rpartition(":")[2] in families else n for n in known]
        listing = ", ".join(shown) if shown else "none registered"
        raise RegistryError(f"unknown {self.kind[:-1]} {name!r} (known: {listing}){hint}")

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the factory registered as ``name``; ``None`` keyword arguments are dropped so that
        unset options never override a factory's defaults. A factory's exception that is not an
        ``RnnkitError`` becomes one line naming the entry and its plugin (``PluginError``)."""
        return self.get(name).create(*args, **{k: v for k, v in kwargs.items() if v is not None})


class Registries:
    """The registries a plugin host fills: ``tasks``, ``datasets``, ``backbones``, ``heads``,
    ``layers``, ``metrics``."""

    def __init__(self) -> None:
        self.tasks = Registry("tasks")
        self.datasets = Registry("datasets")
        self.backbones = Registry("backbones")
        self.heads = Registry("heads")
        self.layers = Registry("layers")
        self.metrics = Registry("metrics")

    def __getitem__(self, kind: str) -> Registry:
        if kind not in KINDS:
            raise KeyError(kind)
        return getattr(self, kind)

    def remove_plugin(self, plugin: str) -> None:
        for kind in KINDS:
            self[kind].remove_plugin(plugin)
