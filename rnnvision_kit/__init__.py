"""rnnvision-kit: recurrent neural networks for vision, as a plugin-based toolkit.

Public API (everything else may change): what this module exports (the hook marker and the
``register`` protocols, the Task contract and its context records, data specs, configuration,
registries and errors), and the packages ``rnnvision_kit.data`` (video I/O, samplers, video
data sets, cache), ``rnnvision_kit.nn`` (sequence layers, recurrent blocks, heads, encoders),
``rnnvision_kit.classification`` (metrics and reports of classification tasks),
``rnnvision_kit.runner`` (checkpoint reading, record writers) and ``rnnvision_kit.testing``
(helpers for plugin authors). Importing this module does not import torch.

The Python front door, ``rnnvision_kit.api`` (docs/python.md), is imported on first use:
``fit`` and ``evaluate`` run what ``rnnkit run`` and ``rnnkit eval`` run, ``load`` reads a run
folder or checkpoint as a ``Predictor`` (``predict``, ``stream``, ``export``).
"""

from __future__ import annotations

from rnnvision_kit.baselines import MeasuredBaseline
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
from rnnvision_kit.lazyexports import lazy_exports
from rnnvision_kit.progress import Progress, track
from rnnvision_kit.registry import Entry, Registries, Registry, lazy
from rnnvision_kit.task import (
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
    ReportContext,
    Reports,
    StepContext,
    StepOutput,
    StreamContext,
    StreamFrame,
    Streams,
    Task,
)

__version__ = "0.1.0"

# The front door's names, imported when first used (PEP 562): torch comes with them. (Not
# imported under TYPE_CHECKING either: rnnvision_kit.api -> runner -> rnnvision_kit would be
# an import circle, tests/test_import_graph.py.)
_FRONT_DOOR = ("Evaluation", "FitResult", "Predictor", "evaluate", "fit", "load")


__getattr__, __dir__ = lazy_exports(globals(), dict.fromkeys(_FRONT_DOOR, "rnnvision_kit.api"))


__all__ = [
    "BuiltModel",
    "CheckpointError",
    "ChecksData",
    "ConfigError",
    "DataBundle",
    "DataCheck",
    "DataConfig",
    "DataContext",
    "DataError",
    "DataSpec",
    "Entry",
    "EvalConfig",
    "Evaluation",
    "ExportContext",
    "Exportable",
    "Exports",
    "FitResult",
    "HeadConfig",
    "ImageSpec",
    "LayerSettings",
    "MeasuredBaseline",
    "MetricsContext",
    "ModelConfig",
    "ModelContext",
    "Normalisation",
    "PluginError",
    "PredictContext",
    "Progress",
    "Predictor",
    "Predicts",
    "RegisterBackbone",
    "RegisterDataSource",
    "RegisterHead",
    "RegisterLayer",
    "RegisterMetric",
    "RegisterTask",
    "Registries",
    "Registry",
    "RegistryError",
    "ReportContext",
    "Reports",
    "RnnkitError",
    "Rule",
    "RunConfig",
    "RunInterrupted",
    "SegmentationSpec",
    "StepContext",
    "StepOutput",
    "StreamContext",
    "StreamFrame",
    "Streams",
    "Task",
    "TaskError",
    "TrainConfig",
    "UnreadableItem",
    "VideoSpec",
    "build_sequence_head",
    "evaluate",
    "fit",
    "hookimpl",
    "layer_settings",
    "lazy",
    "load",
    "reason",
    "require_classes",
    "setting",
    "track",
    "split_fractions_rule",
    "warn",
    "__version__",
]
