"""rnnvision-kit: recurrent neural networks for vision, as a plugin-based toolkit.

Public API (everything else may change): what this module exports (the hook marker, the Task
contract, configuration dataclasses, registries and errors), plus ``rnnvision_kit.testing``
(helpers for plugin authors) and ``rnnvision_kit.classification`` (metrics and reports shared by
classification tasks). Importing this package does not import torch.
"""

from __future__ import annotations

from rnnvision_kit.config import DataConfig, RunConfig, TrainConfig
from rnnvision_kit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    PluginError,
    RegistryError,
    RnnkitError,
)
from rnnvision_kit.hookspecs import hookimpl
from rnnvision_kit.registry import Entry, Registries, Registry, lazy
from rnnvision_kit.task import DataBundle, DataSpec, StepOutput, Task

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataBundle",
    "DataConfig",
    "DataError",
    "DataSpec",
    "Entry",
    "PluginError",
    "Registries",
    "Registry",
    "RegistryError",
    "RnnkitError",
    "RunConfig",
    "StepOutput",
    "Task",
    "TrainConfig",
    "__version__",
    "hookimpl",
    "lazy",
]
