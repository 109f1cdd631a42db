"""rnnvision-kit: recurrent neural networks for vision, as a plugin-based toolkit.

Public API (everything else may change): what this module exports (the hook marker and the
``register`` protocols, the Task contract and its context records, data specs, configuration,
registries and errors), and the packages ``rnnvision_kit.data`` (video I/O, samplers, video
data sets, cache), ``rnnvision_kit.nn`` (sequence layers, recurrent blocks, heads, encoders),
``rnnvision_kit.classification`` (metrics and reports of classification tasks),
``rnnvision_kit.runner`` (checkpoint reading, record writers) and ``rnnvision_kit.testing``
(helpers for plugin authors). Importing this module does not import torch.
"""

from __future__ import annotations

from rnnvision_kit.config import (
    DataConfig,
    EvalConfig,
    ModelConfig,
    Rule,
    RunConfig,
    TrainConfig,
    setting,
    split_fractions_rule,
)
from rnnvision_kit.dataspec import (
    DataSpec,
    ImageSpec,
    SegmentationSpec,
    VideoSpec,
    require_classes,
)
from rnnvision_kit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    PluginError,
    RegistryError,
    RnnkitError,
    RunInterrupted,
    TaskError,
    UnreadableItem,
    reason,
    warn,
)
from rnnvision_kit.hookspecs import (
    RegisterBackbone,
    RegisterDataSource,
    RegisterHead,
    RegisterLayer,
    RegisterMetric,
    RegisterTask,
    hookimpl,
)
from rnnvision_kit.layers import HeadConfig, LayerSettings, build_sequence_head, layer_settings
from rnnvision_kit.registry import Entry, Registries, Registry, lazy
from rnnvision_kit.task import (
    BuiltModel,
    DataBundle,
    DataCheck,
    DataContext,
    Exportable,
    ExportContext,
    MetricsContext,
    ModelContext,
    Normalisation,
    PredictContext,
    ReportContext,
    StepContext,
    StepOutput,
    StreamContext,
    StreamFrame,
    Task,
)

__version__ = "0.1.0"

__all__ = [
    "BuiltModel",
    "CheckpointError",
    "ConfigError",
    "DataBundle",
    "DataCheck",
    "DataConfig",
    "DataContext",
    "DataError",
    "DataSpec",
    "Entry",
    "EvalConfig",
    "ExportContext",
    "Exportable",
    "ImageSpec",
    "MetricsContext",
    "ModelConfig",
    "ModelContext",
    "Normalisation",
    "PluginError",
    "PredictContext",
    "RegisterBackbone",
    "RegisterDataSource",
    "RegisterHead",
    "RegisterLayer",
    "HeadConfig",
    "LayerSettings",
    "build_sequence_head",
    "layer_settings",
    "RegisterMetric",
    "RegisterTask",
    "Registries",
    "Registry",
    "RegistryError",
    "ReportContext",
    "RnnkitError",
    "Rule",
    "RunConfig",
    "RunInterrupted",
    "SegmentationSpec",
    "StepContext",
    "StepOutput",
    "StreamContext",
    "StreamFrame",
    "Task",
    "TaskError",
    "TrainConfig",
    "UnreadableItem",
    "VideoSpec",
    "__version__",
    "hookimpl",
    "lazy",
    "reason",
    "require_classes",
    "setting",
    "split_fractions_rule",
    "warn",
]
