"""The one path every command builds through: task, config, validation, data, model, weights.

``rnnkit run``, ``eval``, ``predict``, ``check-data`` and the plugin conformance check call, in
this order, :func:`open_task`, :func:`configure` (or :func:`load_run`), then :func:`build`.
Every task method is called through a :class:`TaskHandle`, which turns a plugin's exception into
one line naming the task, its plugin and the method.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from rnnvision_kit.config import (
    RunConfig,
    apply_recorded,
    layered,
    load_yaml,
    parse_data_source,
    user_keys,
    validate,
)
from rnnvision_kit.dataspec import DataSpec, check_bundle
from rnnvision_kit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    PluginError,
    RnnkitError,
    TaskError,
    rethrown,
    warn,
)
from rnnvision_kit.layers import check_head, scale_training
from rnnvision_kit.registry import Entry, Registries
from rnnvision_kit.runner.distributed import DistInfo
from rnnvision_kit.runner.rundir import Checkpoint, RunDir
from rnnvision_kit.task import (
    CAPABILITY_METHODS,
    BuiltModel,
    ChecksData,
    DataBundle,
    DataCheck,
    DataContext,
    Exportable,
    ExportContext,
    Exports,
    MetricsContext,
    ModelContext,
    Normalisation,
    PredictContext,
    Predicts,
    Purpose,
    ReportContext,
    Reports,
    StepContext,
    StepOutput,
    StreamContext,
    Streams,
    Task,
    declared_defaults,
)

if TYPE_CHECKING:  # torchmetrics is imported where metrics are built (not by predict)
    from torchmetrics import MetricCollection


class TaskHandle:
    """A task with its registration (name, plugin, kind, capabilities). Each method calls the
    task's own; whatever it raises besides an ``RnnkitError`` becomes a one-line ``TaskError``
    naming task, plugin and method (the original is its cause, shown with ``--debug``)."""

    def __init__(self, entry: Entry, task: Task, requested: str = "") -> None:
        self.entry, self.task = entry, task
        self.name, self.plugin = entry.name, entry.plugin
        self.requested = requested or entry.name  # as the user named it (maybe plugin:name)
        self.kind: str = entry.meta["kind"]
        self.capabilities = entry.capabilities

    def blame(self, method: str) -> AbstractContextManager[None]:
        """Plain exceptions of the task's ``method`` become one line naming task and plugin."""
        where = f"task {self.name!r} (plugin {self.plugin!r}) failed in {method}"
        return rethrown(lambda problem: TaskError(f"{where}: {problem}", method))

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def require(self, capability: str) -> None:
        if not self.supports(capability):
            offered = ", ".join(self.capabilities) or "training and evaluation only"
            raise TaskError(
                f"task {self.name!r} (plugin {self.plugin!r}) does not support {capability} "
                f"(it supports: {offered})",
                capability,
            )

    # The task's methods, each behind blame().
    def default_config(self) -> RunConfig:
        """The defaults declared at registration (``config=``), else ``Task.default_config()``."""
        declared = declared_defaults(self.entry, self.requested)
        if declared is not None:
            return declared
        with self.blame("default_config"):
            config = self.task.default_config()
        config.task = self.requested
        return config

    def build_data(self, ctx: DataContext) -> DataBundle:
        """The task's data. Data the task builds itself (it overrides ``build_data``) is
        checked against its kind's item format, as ``ctx.open_source()`` checks a source's."""
        with self.blame("build_data"):
            bundle = self.task.build_data(ctx)
        if type(self.task).build_data is not Task.build_data:
            self._check_built_data(bundle)
        return bundle

    def _check_built_data(self, bundle: Any) -> None:
        where = f"task {self.name!r} (plugin {self.plugin!r})"
        if not isinstance(bundle, DataBundle):
            raise TaskError(
                f"{where} failed in build_data: it returned {type(bundle).__name__}, not a "
                "DataBundle",
                "build_data",
            )
        try:
            check_bundle(bundle, self.kind, self.name)
        except DataError as error:
            problem = str(error).removeprefix(f"data source {self.name!r}: ")
            raise DataError(
                f"{where}: the data its build_data returned does not fit {self.kind} data: "
                f"{problem}"
            ) from None

    def build_model(self, ctx: ModelContext) -> nn.Module:
        """The task's model (what :meth:`make_model` returns, without the normalisation)."""
        return self.make_model(ctx).model

    def make_model(self, ctx: ModelContext) -> BuiltModel:
        """The task's model and the normalisation it chose (None when it returned a bare
        module, as tasks written before ``BuiltModel`` do)."""
        with self.blame("build_model"):
            made = self.task.build_model(ctx)
        if isinstance(made, BuiltModel):
            return made
        if not isinstance(made, nn.Module):
            raise TaskError(
                f"task {self.name!r} (plugin {self.plugin!r}) failed in build_model: it "
                f"returned {type(made).__name__}, not an nn.Module or a BuiltModel",
                "build_model",
            )
        return BuiltModel(made)

    def step(self, ctx: StepContext, model: nn.Module, batch: Any) -> StepOutput:
        with self.blame("step"):
            return self.task.step(ctx, model, batch)

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        with self.blame("metrics"):
            return self.task.metrics(ctx)

    def update_metrics(self, metrics: MetricCollection, output: StepOutput) -> None:
        with self.blame("update_metrics"):
            self.task.update_metrics(metrics, output)

    # The optional capabilities: open_task checked that a task defines the method of each
    # capability it declares, so that require() makes the task that capability's Protocol.
    def predict(self, ctx: PredictContext) -> list[dict[str, Any]]:
        self.require("predict")
        task = cast(Predicts, self.task)
        with self.blame("predict"):
            return task.predict(ctx)

    def check_data(self, ctx: DataContext) -> DataCheck:
        self.require("check-data")
        task = cast(ChecksData, self.task)
        with self.blame("check_data"):
            return task.check_data(ctx)

    def report(self, ctx: ReportContext) -> None:
        if self.supports("report"):
            task = cast(Reports, self.task)
            with self.blame("report"):
                task.report(ctx)

    def stream(self, ctx: StreamContext) -> Iterator[dict[str, Any]]:
        """The task's stream records, each ``next`` behind blame()."""
        self.require("stream")
        task = cast(Streams, self.task)
        with self.blame("stream"):
            yield from task.stream(ctx)

    def export(self, ctx: ExportContext) -> Exportable:
        self.require("export")
        task = cast(Exports, self.task)
        with self.blame("export"):
            exportable = task.export(ctx)
        if not isinstance(exportable, Exportable):
            raise TaskError(
                f"task {self.name!r} (plugin {self.plugin!r}) failed in export: it returned "
                f"{type(exportable).__name__}, not an Exportable",
                "export",
            )
        return exportable

    # Contexts for this task.
    def data_context(
        self, config: RunConfig, registries: Registries, purpose: Purpose, *, deep: bool = False
    ) -> DataContext:
        return DataContext(config, registries, self.name, self.plugin, self.kind, purpose, deep)

    def metrics_context(
        self, config: RunConfig, spec: DataSpec, registries: Registries
    ) -> MetricsContext:
        return MetricsContext(config, spec, registries, self.name, self.plugin, self.kind)


def open_task(registries: Registries, name: str) -> TaskHandle:
    """The task registered as ``name`` (bare or ``plugin:name``), checked against the contract:
    a ``Task`` whose methods match the capabilities it declared."""
    entry = registries.tasks.get(name)
    where = f"plugin {entry.plugin!r}: task {entry.name!r}"
    try:
        task = entry.factory()
    except RnnkitError:
        raise
    except Exception as error:
        raise PluginError(
            f"{where}: its factory failed: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(task, Task):
        raise PluginError(f"{where}: the factory returned {type(task).__name__}, not a Task")
    for capability, method in CAPABILITY_METHODS.items():
        declared = capability in entry.capabilities
        defined = callable(getattr(task, method, None))
        if declared and not defined:
            raise PluginError(f"{where} declares {capability} but has no {method}() method")
        if defined and not declared:
            raise PluginError(
                f"{where} has a {method}() method but does not declare capability {capability!r}"
            )
    return TaskHandle(entry, task, name)


# ---------------------------------------------------------------------------- configuration


def configure(
    task: TaskHandle,
    *,
    config_file: str | None = None,
    data: str | None = None,
    settings: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    registries: Registries | None = None,
) -> RunConfig:
    """The task's defaults < a YAML file < ``--data`` < ``settings`` (CLI shortcuts, dotted keys)
    < ``--set`` overrides (:func:`~rnnvision_kit.config.layered`). Not yet validated:
    :func:`build` does that. With ``registries``, ``--data plugin:name`` names a qualified
    source (no path) when ``plugin`` is no source, and the chosen layer's ``train_scale``
    applies to the training settings left at the task's defaults (as ``rnnkit run``)."""
    overrides = tuple(overrides)
    config = layered(
        task.default_config(),
        config_file=config_file,
        data=data,
        settings=settings,
        overrides=overrides,
        sources=registries.datasets if registries is not None else (),
    )
    if registries is not None:
        scale_training(registries, config, user_keys(config_file, settings, overrides))
    return config


def data_source(text: str, registries: Registries | None = None) -> tuple[str, str | None]:
    """``--data NAME[:PATH]`` as (source, path); with ``registries``, ``plugin:name`` (no path)
    is read as a qualified source name when ``plugin`` is not itself a source."""
    return parse_data_source(text, registries.datasets if registries is not None else ())


@dataclass(frozen=True)
class SavedRun:
    """A run folder read back: its task, config, data spec and one checkpoint."""

    dir: Path
    task: TaskHandle
    config: RunConfig
    spec: DataSpec
    checkpoint: dict[str, Any]
    checkpoint_path: Path

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.dir)

    @property
    def normalisation(self) -> Normalisation | None:
        """The input normalisation the checkpoint recorded (None in checkpoints written before
        it was recorded: their ``config.yaml`` holds ``model.mean``/``model.std``)."""
        recorded = self.checkpoint.get("normalisation")
        return Normalisation.from_dict(recorded) if isinstance(recorded, dict) else None


def load_run(
    registries: Registries, run_dir: Path, checkpoint: Checkpoint = "best", action: str = "use"
) -> SavedRun:
    """Task, config, spec and checkpoint (``best``: best.pt, else last.pt with a warning line;
    or ``last``) of a finished or interrupted run folder; no checkpoint is one line saying there
    is none to ``action`` (export, predict, ...)."""
    folder = RunDir(run_dir)
    if not folder.is_run():
        raise RnnkitError(f"{folder}: not a run folder (no {RunDir.CONFIG})")
    found = folder.read_checkpoint(checkpoint, action)
    saved = load_yaml(folder.config)
    task_name = saved.get("task")
    if not isinstance(task_name, str):
        raise CheckpointError(f"{folder.config}: no task recorded")
    trained = (found.state.get("config") or {}).get("task")
    if trained is not None and trained != task_name:
        raise CheckpointError(
            f"{found.path}: a checkpoint of task {trained!r}, but {folder.config} is a run "
            f"of {task_name!r}"
        )
    task = open_task(registries, task_name)
    config = task.default_config()
    apply_recorded(config, {k: v for k, v in saved.items() if k != "task"})
    config.task = task_name
    spec = DataSpec.from_dict(found.state["spec"])
    return SavedRun(folder.path, task, config, spec, found.state, found.path)


# ------------------------------------------------------------------------------------ build


@dataclass(frozen=True)
class Built:
    """What :func:`build` returns: the validated config, the data (None for ``predict``), the
    spec, the model (on the CPU; checkpoint weights loaded when given) and the input
    normalisation the task chose for it (None when it named none)."""

    task: TaskHandle
    config: RunConfig
    data: DataBundle | None
    spec: DataSpec
    model: nn.Module
    normalisation: Normalisation | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build(
    task: TaskHandle,
    registries: Registries,
    config: RunConfig,
    purpose: Purpose,
    *,
    spec: DataSpec | None = None,
    weights: Mapping[str, torch.Tensor] | None = None,
    weights_source: str = "checkpoint",
    normalisation: Normalisation | None = None,
    dist: DistInfo = DistInfo(),
) -> Built:
    """Validate ``config``, set threads and seed, build the data (unless ``purpose`` is
    ``predict``, which takes ``spec``) and the model (given the ``normalisation`` a saved run
    recorded), then load ``weights`` into it. For ``train``, ``model.init_from`` (any task's
    model config that has it) copies the matching tensors of another run's checkpoint first;
    what it left out is one warning line."""
    validate(config)
    check_head(registries, config.model)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    seed_everything(config.seed)
    data = None
    if purpose != "predict":
        # Rank 0 builds first so that generated data sets are written into the cache only once.
        if dist.enabled and not dist.is_main:
            torch.distributed.barrier()
        data = task.build_data(task.data_context(config, registries, purpose))
        if dist.enabled and dist.is_main:
            torch.distributed.barrier()
        spec = data.spec
    if spec is None:
        raise ValueError("build(purpose='predict') needs the spec of the checkpoint")
    made = task.make_model(
        ModelContext(config, spec, registries, task.name, task.plugin, purpose, normalisation)
    )
    model = made.model
    if weights is not None:
        load_weights(model, weights, weights_source)
    source = getattr(config.model, "init_from", None)
    if purpose == "train" and source:
        from rnnvision_kit.runner.transfer import init_from

        note = init_from(model, source)
        if note and dist.is_main:
            warn(note)
    return Built(task, config, data, spec, model, made.normalisation or normalisation)


def load_for_inference(
    registries: Registries,
    run_dir: Path,
    capability: str,
    checkpoint: Checkpoint = "best",
    require: bool = True,
) -> tuple[SavedRun, Built]:
    """A run folder's task (which must support ``capability``, unless not ``require``d: then
    it only names the purpose in messages) and its model built from the saved spec with the
    checkpoint's weights, on the CPU (predict, stream, export, a sweep's timing)."""
    saved = load_run(registries, run_dir, checkpoint, capability)
    if require:
        saved.task.require(capability)
    return saved, rebuild(registries, saved)


def rebuild(registries: Registries, saved: SavedRun) -> Built:
    """The model of a saved run, built from its spec and the normalisation its checkpoint
    recorded, with the checkpoint's weights, on the CPU; no data is built."""
    return build(
        saved.task,
        registries,
        saved.config,
        "predict",
        spec=saved.spec,
        weights=saved.checkpoint["model"],
        weights_source=str(saved.checkpoint_path),
        normalisation=saved.normalisation,
    )


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load a state dict strictly, or raise one line naming ``source`` and the first mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if wrong:
        key = wrong[0]
        raise CheckpointError(
            f"{source}: weights do not fit the model: {key} has shape "
            f"{tuple(state[key].shape)} in the checkpoint, {tuple(own[key].shape)} in the model "
            f"({len(wrong)} mismatch(es); different classes, input size or settings?)"
        )
    if missing or unexpected:
        first = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CheckpointError(
            f"{source}: weights do not fit the model: {first} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected; another model or task?)"
        )
    model.load_state_dict(state)


# ---------------------------------------------------------------------------------- metrics


def build_metrics(
    task: TaskHandle, registries: Registries, config: RunConfig, spec: DataSpec
) -> tuple[MetricCollection, MetricCollection]:
    """The task's own metrics, and the registered ones ``eval.metrics`` adds (updated by the
    runner with ``StepOutput.preds`` and ``targets``)."""
    from torchmetrics import MetricCollection

    ctx = task.metrics_context(config, spec, registries)
    own = task.metrics(ctx)
    extra: dict[str, Any] = {}
    for name in config.eval.metrics:
        key = name.rpartition(":")[2]
        if key in own or key in extra:
            raise ConfigError(f"eval.metrics: {name!r} clashes with a metric named {key!r}")
        extra[key] = ctx.metric(name)
    return own, MetricCollection(extra, compute_groups=False)


def files_of(values: Sequence[str]) -> tuple[Path, ...]:
    return tuple(Path(v).expanduser() for v in values)
