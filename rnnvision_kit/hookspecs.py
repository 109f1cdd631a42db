"""The plugin contract: pluggy hook specifications (project ``rnnvision_kit``, prefix ``rnnkit_``).

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names match these
specifications. Registration hooks receive a ``register`` callable (typed below, one Protocol
per kind); factories are called only when the thing is used, so heavy imports belong inside them.

Specifications may gain arguments, never lose or rename them: an implementation may accept
fewer arguments than its specification. ``docs/plugins.md`` quotes these docstrings; a test keeps
the two in sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from rnnvision_kit.runner.events import Run

PROJECT = "rnnvision_kit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class RegisterTask(Protocol):
    """``register`` of ``rnnkit_register_tasks``; ``factory()`` returns a ``Task``.

    ``config``, optional, returns the task's defaults (a ``RunConfig``) without importing torch,
    e.g. ``lazy("my_plugin.config:defaults")``: commands then check settings before the task's
    module is imported, and it replaces ``Task.default_config()``."""

    def __call__(
        self,
        name: str,
        factory: Callable[[], Any],
        *,
        kind: str,
        description: str = "",
        capabilities: Iterable[str] = (),
        config: Callable[[], Any] | None = None,
    ) -> Callable[[], Any]: ...


class RegisterDataSource(Protocol):
    """``register`` of ``rnnkit_register_datasets``; ``factory(config: RunConfig) -> DataBundle``.

    ``reads`` names the ``data.*`` settings the source reads beyond ``DataConfig``'s own; other
    keywords are kept in ``Entry.meta`` for the plugin's own use."""

    def __call__(
        self,
        name: str,
        factory: Callable[[Any], Any],
        *,
        kind: str,
        description: str = "",
        reads: Iterable[str] = (),
        **meta: Any,
    ) -> Callable[[Any], Any]: ...


class RegisterBackbone(Protocol):
    """``register`` of ``rnnkit_register_backbones``; ``factory(**options) -> nn.Module`` whose
    forward maps ``B,C,H,W`` to ``B,F`` and whose ``out_features`` is F. video-action passes
    ``feature_dim``, ``weights`` (a local file) and ``pretrained`` (a weights name); ``None``
    values are dropped. ``family=True`` registers a family: ``NAME:MODEL`` calls
    ``factory(MODEL, **options)``; ``models=`` lists its members for ``rnnkit backbones``."""

    def __call__(
        self, name: str, factory: Callable[..., Any], *, description: str = "", **meta: Any
    ) -> Callable[..., Any]: ...


class RegisterHead(Protocol):
    """``register`` of ``rnnkit_register_heads``; ``factory(input_size, num_classes, **options)
    -> nn.Module`` mapping ``B,T,F`` to ``B,K`` logits: a whole head (``mean``), for what is not
    a stack of sequence layers (register those with ``rnnkit_register_layers``). The built-in
    tasks pass ``hidden_size``, ``num_layers``, ``bidirectional``, ``pooling`` and ``dropout``."""

    def __call__(
        self, name: str, factory: Callable[..., Any], *, description: str = ""
    ) -> Callable[..., Any]: ...


class RegisterLayer(Protocol):
    """``register`` of ``rnnkit_register_layers``; ``factory(input_size, hidden_size, **settings)
    -> SequenceLayer`` (``rnnvision_kit.nn.SequenceLayer``: ``B,T,F -> B,T,H``, parallel mode,
    ``initial_state``, ``step``, ``scan``, ``state_spec``, ``causal``).

    ``settings``: a dataclass of the layer's own settings (a ``rnnvision_kit.LayerSettings``
    subclass whose fields are declared with ``setting(...)``), set as ``model.layer.NAME`` and
    passed to the factory as keywords; it must not import torch. ``block``: how a head stacks
    the layer: ``plain`` (layer on layer), ``residual`` (pre-norm residual blocks, the default),
    ``glu`` (the same with a GELU + GLU output, as S4/S5/LRU) or ``own`` (the layer has its own
    norms and residuals). ``causal``: whether it can stream
    (listed by ``rnnkit layers``). ``train_scale``: the training the layer needs relative to a
    task's defaults, ``{"lr": 0.333, "epochs": 2}`` (multipliers of ``train.lr`` and
    ``train.epochs``, applied when the user sets neither; e.g. attention trains at a lower
    learning rate than a recurrence). A task builds heads from these with
    ``rnnvision_kit.build_sequence_head``."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str = "",
        settings: type | None = None,
        block: str = "residual",
        causal: bool = True,
        train_scale: Mapping[str, float] | None = None,
    ) -> Callable[..., Any]: ...


class RegisterMetric(Protocol):
    """``register`` of ``rnnkit_register_metrics``; ``factory(spec: DataSpec, **options) ->
    torchmetrics.Metric``, updated with ``(preds, targets)`` of ``StepOutput``."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        kinds: Iterable[str],
        description: str = "",
    ) -> Callable[..., Any]: ...


@hookspec
def rnnkit_register_tasks(register: RegisterTask) -> None:
    """Register tasks: ``register(name, factory, kind=..., description=..., capabilities=[...],
    config=...)``."""


@hookspec
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    """Register data sources: ``register(name, factory, kind=..., description=..., reads=[...])``."""


@hookspec
def rnnkit_register_backbones(register: RegisterBackbone) -> None:
    """Register frame/image encoders: ``register(name, factory, description=...)``."""


@hookspec
def rnnkit_register_heads(register: RegisterHead) -> None:
    """Register sequence heads: ``register(name, factory, description=...)``."""


@hookspec
def rnnkit_register_layers(register: RegisterLayer) -> None:
    """Register sequence layers: ``register(name, factory, description=..., settings=...,
    block=..., causal=...)``."""


@hookspec
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    """Register metrics: ``register(name, factory, kinds=[...], description=...)``."""


@hookspec
def rnnkit_register_commands(cli: click.Group) -> None:
    """Add commands to the ``rnnkit`` click group: ``cli.add_command(command)``."""


@hookspec
def rnnkit_on_run_start(run: Run) -> None:
    """Called on rank 0 when a run starts, with the ``Run`` (config, run folder, task)."""


@hookspec
def rnnkit_on_epoch_end(run: Run, epoch: int, metrics: dict[str, float]) -> None:
    """Called on rank 0 after each epoch's validation with the epoch's scalar metrics."""


@hookspec
def rnnkit_on_run_end(run: Run, summary: dict[str, Any]) -> None:
    """Called on rank 0 when a run ends normally, with the summary written to ``summary.json``."""


@hookspec
def rnnkit_on_exception(run: Run, error: BaseException) -> None:
    """Called on rank 0 when a run stops with an exception (interrupts included)."""
