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
from typing import Any

import numpy as np
import torch
from torch import nn
from torchmetrics import MetricCollection

from rnnvision_kit.config import (
    RunConfig,
    apply_mapping,
    layered,
    load_yaml,
    parse_data_source,
    validate,
)
from rnnvision_kit.dataspec import DataSpec
from rnnvision_kit.errors import (
    CheckpointError,
    ConfigError,
    PluginError,
    RnnkitError,
    TaskError,
    rethrown,
    warn,
)
from rnnvision_kit.layers import check_head
from rnnvision_kit.registry import Entry, Registries
from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.distributed import DistInfo
from rnnvision_kit.runner.resume import position
from rnnvision_kit.task import (
    CAPABILITY_METHODS,
    DataBundle,
    DataCheck,
    DataContext,
    Exportable,
    ExportContext,
    MetricsContext,
    ModelContext,
    PredictContext,
    Purpose,
    ReportContext,
    StepContext,
    StepOutput,
    StreamContext,
    Task,
    declared_defaults,
)


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
            raise RnnkitError(
                f"task {self.name!r} (plugin {self.plugin!r}) does not support {capability} "
                f"(it supports: {offered})"
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
        with self.blame("build_data"):
            return self.task.build_data(ctx)

    def build_model(self, ctx: ModelContext) -> nn.Module:
        with self.blame("build_model"):
            return self.task.build_model(ctx)

    def step(self, ctx: StepContext, model: nn.Module, batch: Any) -> StepOutput:
        with self.blame("step"):
            return self.task.step(ctx, model, batch)

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        with self.blame("metrics"):
            return self.task.metrics(ctx)

    def update_metrics(self, metrics: MetricCollection, output: StepOutput) -> None:
        with self.blame("update_metrics"):
            self.task.update_metrics(metrics, output)

    def predict(self, ctx: PredictContext) -> list[dict[str, Any]]:
        self.require("predict")
        with self.blame("predict"):
            return self.task.predict(ctx)  # type: ignore[attr-defined]

    def check_data(self, ctx: DataContext) -> DataCheck:
        self.require("check-data")
        with self.blame("check_data"):
            return self.task.check_data(ctx)  # type: ignore[attr-defined]

    def report(self, ctx: ReportContext) -> None:
        if self.supports("report"):
            with self.blame("report"):
                self.task.report(ctx)  # type: ignore[attr-defined]

    def stream(self, ctx: StreamContext) -> Iterator[dict[str, Any]]:
        """The task's stream records, each ``next`` behind blame()."""
        self.require("stream")
        with self.blame("stream"):
            yield from self.task.stream(ctx)  # type: ignore[attr-defined]

    def export(self, ctx: ExportContext) -> Exportable:
        self.require("export")
        with self.blame("export"):
            exportable = self.task.export(ctx)  # type: ignore[attr-defined]
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
    source (no path) when ``plugin`` is no source."""
    return layered(
        task.default_config(),
        config_file=config_file,
        data=data,
        settings=settings,
        overrides=overrides,
        sources=registries.datasets if registries is not None else (),
    )


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


def load_run(
    registries: Registries, run_dir: Path, checkpoint_name: str = "best.pt", action: str = "use"
) -> SavedRun:
    """Task, config, spec and checkpoint of a finished (or interrupted) run folder. A missing
    ``best.pt`` falls back to ``last.pt``, with a warning line; neither is one line saying
    there is no checkpoint to ``action`` (export, predict, ...)."""
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / "config.yaml").is_file():
        raise RnnkitError(f"{run_dir}: not a run folder (no config.yaml)")
    names = [checkpoint_name] + (["last.pt"] if checkpoint_name == "best.pt" else [])
    found = [run_dir / name for name in names if (run_dir / name).is_file()]
    if not found:
        raise CheckpointError(
            f"{run_dir}: no checkpoint to {action} ({' or '.join(names)} missing; did the run "
            "finish an epoch?)"
        )
    path = found[0]
    checkpoint = load_checkpoint(path)
    if path.name != checkpoint_name:
        warn(_fallback_note(run_dir, checkpoint))
    saved = load_yaml(run_dir / "config.yaml")
    task_name = saved.get("task")
    if not isinstance(task_name, str):
        raise CheckpointError(f"{run_dir / 'config.yaml'}: no task recorded")
    trained = (checkpoint.get("config") or {}).get("task")
    if trained is not None and trained != task_name:
        raise CheckpointError(
            f"{path}: a checkpoint of task {trained!r}, but {run_dir / 'config.yaml'} is a run "
            f"of {task_name!r}"
        )
    task = open_task(registries, task_name)
    config = task.default_config()
    apply_mapping(config, {k: v for k, v in saved.items() if k != "task"})
    config.task = task_name
    spec = DataSpec.from_dict(checkpoint["spec"])
    return SavedRun(run_dir, task, config, spec, checkpoint, path)


def _fallback_note(run_dir: Path, last: Mapping[str, Any]) -> str:
    """The warning of a run used through ``last.pt`` for want of ``best.pt``: deleted (the run
    validated an epoch, which writes best.pt) or never written (stopped before validating)."""
    where = position(int(last.get("epoch", 0)), int(last.get("batch_in_epoch", 0)))
    validated = int((last.get("early_stopping") or {}).get("best_epoch", -1)) >= 0
    if validated:
        return f"{run_dir / 'best.pt'} not found; using last.pt ({where})"
    return f"{run_dir} has no best.pt (no epoch validated yet); using last.pt ({where})"


# ------------------------------------------------------------------------------------ build


@dataclass(frozen=True)
class Built:
    """What :func:`build` returns: the validated config, the data (None for ``predict``), the
    spec and the model (on the CPU; checkpoint weights loaded when given)."""

    task: TaskHandle
    config: RunConfig
    data: DataBundle | None
    spec: DataSpec
    model: nn.Module


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
    dist: DistInfo = DistInfo(),
) -> Built:
    """Validate ``config``, set threads and seed, build the data (unless ``purpose`` is
    ``predict``, which takes ``spec``) and the model, then load ``weights`` into it. For
    ``train``, ``model.init_from`` (any task's model config that has it) copies the matching
    tensors of another run's checkpoint first; what it left out is one warning line."""
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
    model = task.build_model(
        ModelContext(config, spec, registries, task.name, task.plugin, purpose)
    )
    if weights is not None:
        load_weights(model, weights, weights_source)
    source = getattr(config.model, "init_from", None)
    if purpose == "train" and source:
        from rnnvision_kit.runner.transfer import init_from

        note = init_from(model, source)
        if note and dist.is_main:
            warn(note)
    return Built(task, config, data, spec, model)


def load_for_inference(
    registries: Registries,
    run_dir: Path,
    capability: str,
    checkpoint_name: str = "best.pt",
    require: bool = True,
) -> tuple[SavedRun, Built]:
    """A run folder's task (which must support ``capability``, unless not ``require``d: then
    it only names the purpose in messages) and its model built from the saved spec with the
    checkpoint's weights, on the CPU (predict, stream, export, a sweep's timing)."""
    saved = load_run(registries, run_dir, checkpoint_name, capability)
    if require:
        saved.task.require(capability)
    built = build(
        saved.task,
        registries,
        saved.config,
        "predict",
        spec=saved.spec,
        weights=saved.checkpoint["model"],
        weights_source=str(saved.checkpoint_path),
    )
    return saved, built


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
    ctx = task.metrics_context(config, spec, registries)
    own = task.metrics(ctx)
    extra: dict[str, Any] = {}
    for name in config.eval.metrics:
        key = name.rpartition(":")[2]
        if key in own or key in extra:
            raise ConfigError(f"eval.metrics: {name!r} clashes with a metric named {key!r}")
        extra[key] = ctx.metric(name)
    return own, MetricCollection(extra, compute_groups=False)


def metric_names(own: MetricCollection, extra: MetricCollection, split: str) -> list[str]:
    return [f"{split}/loss", *(f"{split}/{name}" for name in [*own, *extra])]


def files_of(values: Sequence[str]) -> tuple[Path, ...]:
    return tuple(Path(v).expanduser() for v in values)
