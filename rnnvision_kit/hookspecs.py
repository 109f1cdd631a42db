"""The plugin contract: pluggy hook specifications (project ``rnnvision_kit``, prefix ``rnnkit_``).

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names match these
specifications. Registration hooks receive ``register(name, factory, **meta)``; factories are
called only when the thing is used, so heavy imports belong inside them.

Specifications may gain arguments, never lose or rename them: an implementation may accept
fewer arguments than its specification. ``docs/plugins.md`` quotes these docstrings; a test keeps
the two in sync.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "rnnvision_kit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def rnnkit_register_tasks(register: Any) -> None:
    """Register tasks: ``register(name, factory, description=...)``; ``factory()`` returns a Task."""


@hookspec
def rnnkit_register_datasets(register: Any) -> None:
    """Register data sources: ``register(name, factory, kind=..., description=...)``; ``factory(config) -> DataBundle``."""


@hookspec
def rnnkit_register_backbones(register: Any) -> None:
    """Register frame/image encoders: ``register(name, factory)``; ``factory(**options) -> nn.Module``."""


@hookspec
def rnnkit_register_heads(register: Any) -> None:
    """Register sequence heads: ``register(name, factory)``; ``factory(input_size, num_classes, **options) -> nn.Module``."""


@hookspec
def rnnkit_register_metrics(register: Any) -> None:
    """Register metrics: ``register(name, factory)``; ``factory(num_classes, **options) -> torchmetrics.Metric``."""


@hookspec
def rnnkit_register_commands(cli: Any) -> None:
    """Add commands to the ``rnnkit`` click group: ``cli.add_command(command)``."""


@hookspec
def rnnkit_on_run_start(run: Any) -> None:
    """Called on rank 0 when a run starts, with the ``Run`` (config, run folder, task)."""


@hookspec
def rnnkit_on_epoch_end(run: Any, epoch: int, metrics: dict[str, float]) -> None:
    """Called on rank 0 after each epoch's validation with the epoch's scalar metrics."""


@hookspec
def rnnkit_on_run_end(run: Any, summary: dict[str, Any]) -> None:
    """Called on rank 0 when a run ends normally, with the summary written to ``summary.json``."""


@hookspec
def rnnkit_on_exception(run: Any, error: BaseException) -> None:
    """Called on rank 0 when a run stops with an exception (interrupts included)."""
