"""The Task contract the runner drives. A task is the only place where task-specific logic lives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnvision_kit.config import RunConfig
from rnnvision_kit.errors import RnnkitError

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset
    from torchmetrics import MetricCollection

    from rnnvision_kit.registry import Registries


@dataclass
class DataSpec:
    """What a model needs to know about the data: class names and an input description.

    Saved in checkpoints so that ``rnnkit predict`` can rebuild the model without the data set.
    ``info`` holds plain values only (e.g. ``{"channels": 1, "height": 28, "width": 28}``).
    """

    class_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class DataBundle:
    """Train, validation and test data sets (map-style) plus their spec."""

    train: Dataset
    val: Dataset
    test: Dataset
    spec: DataSpec
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


@dataclass
class DataCheck:
    """What ``rnnkit check-data`` prints: a table of findings, summary lines, and whether any
    of the data is usable (the command exits non-zero when none is)."""

    headers: list[str]
    rows: list[Sequence[Any]]
    notes: list[str] = field(default_factory=list)
    usable: bool = True


@dataclass
class StepOutput:
    """One forward pass: the loss to minimise, and predictions/targets for the metrics."""

    loss: torch.Tensor
    preds: torch.Tensor
    targets: torch.Tensor


class Task:
    """Base class for tasks. Subclasses set ``name``/``description`` and implement the methods.

    The runner owns devices, precision, backward, clipping, optimizer, schedule, checkpoints and
    logging; a task owns its data, model, forward step, metrics, prediction and plots.
    """

    name: str = ""
    description: str = ""
    registry_name: str = ""  # set by the host to the name the task was registered under

    def default_config(self) -> RunConfig:
        """The task's defaults: data source, model settings, training settings, monitored metric."""
        raise NotImplementedError

    def build_data(self, config: RunConfig, registries: Registries) -> DataBundle:
        """Build train/val/test data sets, usually through ``registries.datasets``."""
        raise NotImplementedError

    def build_model(self, config: RunConfig, spec: DataSpec, registries: Registries) -> nn.Module:
        """Build the model, usually from ``registries.backbones`` and ``registries.heads``."""
        raise NotImplementedError

    def step(self, model: nn.Module, batch: Any) -> StepOutput:
        """One forward pass on a batch already on the model's device."""
        raise NotImplementedError

    def metrics(self, config: RunConfig, spec: DataSpec) -> MetricCollection:
        """Evaluation metrics; scalar ones are logged, others (per-class, confusion) saved."""
        raise NotImplementedError

    def update_metrics(self, metrics: MetricCollection, output: StepOutput) -> None:
        """Feed one step's output to the metrics."""
        metrics.update(output.preds, output.targets)

    def check_data(self, config: RunConfig, registries: Registries) -> DataCheck:
        """Scan the configured data once without training: unreadable or suspicious files, class
        counts (for ``rnnkit check-data``)."""
        raise RnnkitError(f"task {self.name!r} does not support check-data")

    def predict(
        self,
        model: nn.Module,
        files: Sequence[str],
        config: RunConfig,
        spec: DataSpec,
        *,
        top_k: int = 5,
        out_dir: Path | None = None,
    ) -> list[dict[str, Any]]:
        """Predictions for user files, one JSON-able record per file (for ``rnnkit predict``)."""
        raise RnnkitError(f"task {self.name!r} does not support predict")

    def report(
        self,
        run_dir: Path,
        split: str,
        results: dict[str, Any],
        spec: DataSpec,
        *,
        model: nn.Module | None = None,
        config: RunConfig | None = None,
    ) -> None:
        """Write task-specific plots for an evaluated split (default: nothing). ``model`` (the
        best checkpoint's) and ``config`` are passed when the override accepts them."""
