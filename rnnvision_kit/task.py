"""The Task contract the runner drives. A task is the only place where task-specific logic lives.

A task is stateless: every method receives what it needs through a frozen context record (which
may gain fields in later versions, as pluggy's records do) and keeps nothing on ``self`` from one
call to the next. What a task supports beyond training (``predict``, ``check-data``, ``report``,
``stream``, ``export``) is declared when it is registered, and the methods of exactly those
capabilities are defined: one Protocol each says the method's signature (:class:`Predicts`,
:class:`ChecksData`, :class:`Reports`, :class:`Streams`, :class:`Exports`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from rnnvision_kit.config import RunConfig
from rnnvision_kit.dataspec import DataBundle, DataSpec
from rnnvision_kit.errors import ConfigError, DataError, PluginError, RegistryError, rethrown
from rnnvision_kit.registry import CAPABILITIES

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset
    from torchmetrics import Metric, MetricCollection

    from rnnvision_kit.baselines import MeasuredBaseline
    from rnnvision_kit.data.livestream import FrameStream
    from rnnvision_kit.registry import Entry, Registries

Purpose = Literal["train", "eval", "predict", "check-data", "check"]
Capability = Literal["predict", "check-data", "report", "stream", "export"]
# capability (``rnnvision_kit.registry.CAPABILITIES``) -> the Task method that provides it
CAPABILITY_METHODS: dict[str, str] = {c: c.replace("-", "_") for c in CAPABILITIES}


@dataclass
class DataCheck:
    """What ``rnnkit check-data`` prints: a table of findings, summary lines, and whether any
    of the data is usable (the command exits non-zero when none is)."""

    headers: list[str]  # column names of the table
    rows: list[Sequence[Any]]  # one finding per row (a class count, a bad file and its reason)
    notes: list[str] = field(default_factory=list)  # summary lines printed under the table
    usable: bool = True  # False when nothing is readable: the command exits 1


@dataclass
class StepOutput:
    """One forward pass: the loss to minimise, and predictions/targets for the metrics.

    ``preds``/``targets`` are what metrics added with ``eval.metrics`` receive: for tasks of kind
    ``image`` and ``video`` logits ``B,K`` and class ids ``B``; for ``segmentation`` logits
    ``B,T,K,H,W`` and class ids ``B,T,H,W``.
    """

    loss: torch.Tensor  # a scalar, the mean over the batch
    preds: torch.Tensor  # detached predictions (logits) for the metrics
    targets: torch.Tensor  # their targets; targets.shape[0] counts the samples


# ------------------------------------------------------------------------------ contexts


@dataclass(frozen=True)
class DataContext:
    """What ``build_data`` and ``check_data`` receive."""

    config: RunConfig  # the validated run config (data.*, model.*, train.*, eval.*)
    registries: Registries  # tasks, datasets, backbones, heads, metrics of all plugins
    task: str  # the name the task is registered under
    plugin: str  # the plugin that registered it
    kind: str  # the data kind the task reads: image, video, segmentation (or a plugin's own)
    purpose: Purpose  # train, eval, predict, check-data (rnnkit check-data), check (conformance)
    deep: bool = False  # check-data --deep: decode every frame of every file, not just probe

    def source(self) -> Entry:
        """The entry of ``data.source``: of this task's kind, with every ``data.*`` setting it
        declares (``reads=``) present in this task's config; otherwise a one-line error."""
        entry = self.registries.datasets.get(self.config.data.source)
        provided = entry.meta.get("kind", "unknown")
        if provided != self.kind:
            raise DataError(
                f"data source {entry.name!r} provides {provided} data; "
                f"task {self.task} needs {self.kind} data"
            )
        for setting in entry.meta.get("reads", ()):
            if not hasattr(self.config.data, setting):
                raise DataError(
                    f"data source {entry.qualified_name!r} reads data.{setting}, which task "
                    f"{self.task}'s settings ({type(self.config.data).__name__}) lack"
                )
        return entry

    def open_source(self) -> DataBundle:
        """The data bundle of ``data.source``, its items and spec checked against the kind's
        contract (see ``rnnvision_kit.dataspec``)."""
        from rnnvision_kit.dataspec import check_bundle

        entry = self.source()
        bundle = entry.create(self.config)
        if not isinstance(bundle, DataBundle):
            raise DataError(
                f"data source {entry.qualified_name!r} returned {type(bundle).__name__}, "
                "not a DataBundle"
            )
        check_bundle(bundle, self.kind, entry.qualified_name)
        if self.kind == "video":  # samples, set_epoch and list_samples (docs/plugins.md)
            from rnnvision_kit.data.contract import check_video_source

            check_video_source(entry.qualified_name, bundle, entry.meta.get("list_samples"))
        return bundle


@dataclass(frozen=True)
class Normalisation:
    """The per-channel mean and std a model normalises its input (values in [0, 1]) with,
    and where they came from: ``model.mean/std`` (the settings), ``data`` (the data's spec),
    ``imagenet`` (a task's default without weights: ImageNet's statistics) or the name of the
    pretrained weights that asked for them."""

    mean: tuple[float, ...]  # subtracted from each channel
    std: tuple[float, ...]  # then each channel divided by it
    source: str = "data"  # model.mean/std, data, or the weights' name (tv:resnet18 IMAGENET1K_V1)

    FROM_SETTINGS: ClassVar[str] = "model.mean/std"
    FROM_DATA: ClassVar[str] = "data"
    IMAGENET: ClassVar[str] = "imagenet"

    @property
    def from_weights(self) -> bool:
        """Whether pretrained weights chose them (not the settings, the data or a default)."""
        return self.source not in (self.FROM_SETTINGS, self.FROM_DATA, self.IMAGENET)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "source": self.source}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Normalisation:
        return cls(
            tuple(float(v) for v in values["mean"]),
            tuple(float(v) for v in values["std"]),
            str(values.get("source", cls.FROM_DATA)),
        )


@dataclass(frozen=True)
class BuiltModel:
    """What ``build_model`` may return instead of a bare module: the model and the input
    normalisation it chose. The runner records the normalisation with the run (the checkpoint,
    and ``config.yaml``'s ``model.mean``/``model.std`` when weights chose it and the model
    settings have those fields) and hands it back as ``ModelContext.normalisation`` when the
    run's model is rebuilt; the config itself is never written to."""

    model: nn.Module  # the task's model
    normalisation: Normalisation | None = None  # None: the model does not normalise its input


@dataclass(frozen=True)
class ModelContext:
    """What ``build_model`` receives. For a fresh model (``ctx.fresh``) a task loads its own
    starting weights (e.g. a pretrained part); otherwise the runner loads a checkpoint after."""

    config: RunConfig  # the validated run config; read it, never write to it
    spec: DataSpec  # of the data just built, or of the checkpoint (eval, predict)
    registries: Registries  # backbones and heads to build from
    task: str  # the name the task is registered under
    plugin: str  # the plugin that registered it
    purpose: Purpose  # train: load starting weights; otherwise a checkpoint is loaded after
    # the normalisation a saved run's checkpoint recorded (eval, predict, stream, export): use
    # it, its weights are not read again; None for a fresh model or a run that recorded none
    normalisation: Normalisation | None = None

    @property
    def fresh(self) -> bool:
        """True for a new model (``train``, and the conformance ``check``): load starting weights
        (a pretrained part) here; for ``eval`` and ``predict`` the runner loads a checkpoint."""
        return self.purpose in ("train", "check")


@dataclass(frozen=True)
class StepContext:
    """What ``step`` receives besides the model and the batch."""

    config: RunConfig  # the validated run config
    spec: DataSpec  # of the data the batches come from
    training: bool  # True in training steps (the model is in train mode)


@dataclass(frozen=True)
class MetricsContext:
    """What ``metrics`` receives; ``metric(name)`` builds a registered metric."""

    config: RunConfig  # the validated run config
    spec: DataSpec  # class names and input description of the evaluated data
    registries: Registries  # the metrics registry among them
    task: str  # the name the task is registered under
    plugin: str  # the plugin that registered it: ctx.metric(f"{ctx.plugin}:name") picks its own
    kind: str  # the task's data kind; metric() checks the metric's kinds against it

    def metric(self, name: str, **options: Any) -> Metric:
        """The registered metric ``name`` (bare or ``plugin:name``) for this data; its ``kinds``
        must include this task's kind."""
        entry = self.registries.metrics.get(name)
        kinds = tuple(entry.meta.get("kinds", ()))
        if kinds and self.kind not in kinds:
            raise RegistryError(
                f"metric {entry.qualified_name!r} is for {', '.join(kinds)} data; "
                f"task {self.task} reads {self.kind} data"
            )
        return entry.create(self.spec, **options)


@dataclass(frozen=True)
class PredictContext:
    """What ``predict`` receives. The model is the run's best checkpoint, on ``device``, in eval
    mode, and the call runs under ``torch.inference_mode()``."""

    model: nn.Module  # the run's best checkpoint (last.pt if none), eval mode, on device
    files: tuple[Path, ...]  # as the user gave them (files, folders, whatever the task reads)
    config: RunConfig  # the run's saved config
    spec: DataSpec  # the checkpoint's spec (class names, size, normalisation)
    device: torch.device  # where the model is; move inputs here
    top_k: int  # labels per record a classification task returns
    out_dir: Path  # where files a task writes go: --out, else RUN_DIR/predict (may not exist yet)
    # every input of this call (``files`` may be one of them at a time): output names use it
    every_file: tuple[Path, ...] = ()
    # frames to predict (``rnnkit predict --horizon N``), for tasks whose spec has ``horizon``;
    # None: the task's default (video-predict: the run's evaluation horizon)
    horizon: int | None = None

    def output_path(self, file: Path | str, suffix: str) -> Path:
        """Where a file written for input ``file`` goes: ``out_dir/<name><suffix>``, ``<name>``
        being the input's file name with its extension (``test.mp4``), prefixed by as many of
        its folders as needed (``left-0.mp4``, ``right-0.mp4``) so that no two inputs of this
        call share an output."""
        inputs = (*self.every_file, *self.files)
        return self.out_dir / f"{unique_names(inputs)[str(Path(file))]}{suffix}"


def check_horizon(horizon: int | None, spec: DataSpec, task: str, name: str = "--horizon") -> None:
    """A one-line ConfigError unless ``horizon`` is None or a count of frames to predict for a
    run whose spec has a ``horizon`` (a task that predicts frames)."""
    if horizon is None:
        return
    if horizon < 1:
        raise ConfigError(f"{name}: must be >= 1 (got {horizon})")
    if not hasattr(spec, "horizon"):
        raise ConfigError(
            f"{name}: task {task} does not predict frames (its runs have no horizon); "
            f"leave {name} out"
        )


@dataclass(frozen=True)
class ReportContext:
    """What ``report`` receives after a split is evaluated: after training, the test split (the
    conformance check: a few test samples, maybe as a ``torch.utils.data.Subset``). The call runs
    under ``torch.inference_mode()``."""

    run_dir: Path  # write report files here
    split: str  # the evaluated split: test after training
    results: dict[str, Any]  # "<split>/<metric>" -> float, or list for per-class/confusion ones
    spec: DataSpec  # of the evaluated data
    config: RunConfig  # the run's config
    model: nn.Module  # the evaluated (best) model, in eval mode
    dataset: Dataset  # the evaluated split (a Subset in the conformance check)
    device: torch.device  # where the model is


@dataclass(frozen=True)
class StreamFrame:
    """One decoded frame of a stream (``StreamContext.frames``)."""

    index: int  # position in the source, counting frames skipped as corrupt
    time_s: float  # presentation time, seconds from the stream's first frame
    image: torch.Tensor  # 3,H,W float32 in [0, 1] at the spec's size, on the context's device


@dataclass(frozen=True)
class StreamContext:
    """What ``stream`` receives. ``frames`` yields :class:`StreamFrame` records as the source
    delivers them (a file, a frame folder, a camera, a URL) until it ends, stalls past
    ``--timeout``, reaches ``--max-frames`` or the user presses Ctrl-C; the runner counts them,
    times them and writes the records ``stream`` yields. Besides iteration, ``frames`` tells
    ``name``, ``fps`` (nominal, maybe a guess) and ``size`` (``H, W`` of the source's frames);
    reading those opens the source. Frames come resized as the spec's were (``spec.resize`` for
    ``video`` specs); for a ``video`` spec only every ``spec.stride``-th frame is delivered, as
    the model trained (the others are decoded, counted as read, and skipped). The model is the
    run's best checkpoint in eval mode on ``device``, and the call runs under
    ``torch.inference_mode()``."""

    model: nn.Module  # the run's best checkpoint (last.pt if none), eval mode, on device
    frames: FrameStream  # iterator of StreamFrame; .name, .fps, .size
    config: RunConfig  # the run's saved config
    spec: DataSpec  # the checkpoint's spec (class names, size, normalisation)
    device: torch.device  # where the model and the frames are
    every: int  # yield a record every ``every`` frames (the model still steps on every frame)
    top_k: int  # labels per record a classification task returns
    out_dir: Path  # where files a task writes go (--out DIR, else RUN_DIR/stream); may not exist
    video_out: Path | None = None  # --out FILE.mp4 (or .mkv, .avi, .webm): an overlay video


@dataclass(frozen=True)
class ExportContext:
    """What ``export`` receives. The model is the run's best checkpoint on the CPU, in eval mode.
    The call does not run under ``inference_mode``: the exporters trace the module it returns."""

    model: nn.Module  # the run's best checkpoint (last.pt if none), eval mode, on the CPU
    config: RunConfig  # the run's saved config
    spec: DataSpec  # the checkpoint's spec (class names, size, normalisation)
    format: str  # "onnx" or "exported-program" (torch.export)


@dataclass
class Exportable:
    """What ``export`` returns: a module to export, its tensors' names, and sample inputs.

    ``module(*inputs)`` takes the tensors named by ``inputs`` (in that order) and returns a tuple
    of the tensors named by ``outputs``. A recurrent state is an explicit input (``states`` maps
    it to the output that continues it), so that the exported model streams. ``sample(n, gen)``
    gives inputs with size ``n`` along the axis named ``vary`` (e.g. ``time``; random frames and
    a random non-zero state); the runner exports with ``n = 2`` and checks onnxruntime (or the
    exported program) against ``reference`` (default: ``module`` itself) at every size of
    ``sizes``. ``info`` goes to the JSON sidecar as it is (e.g. ``mode``, what a step expects).
    """

    module: nn.Module  # forward(*inputs) -> tuple of outputs; tensors only
    inputs: tuple[str, ...]  # input names, in forward's order
    outputs: tuple[str, ...]  # output names, in the order forward returns them
    sample: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]  # inputs of size n
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)  # name -> axis -> name
    states: dict[str, str] = field(default_factory=dict)  # state input -> its next-state output
    vary: str = "time"  # the dynamic axis ``sample``'s n sets (``time``, or ``batch``)
    sizes: tuple[int, ...] = (1, 3, 17)  # sizes of ``vary`` checked against PyTorch
    reference: Callable[..., tuple[torch.Tensor, ...]] | None = None  # the model's own outputs
    info: dict[str, Any] = field(
        default_factory=dict
    )  # extra sidecar fields; "preprocessing" merges


class Task:
    """Base class of tasks. The runner owns devices, precision, backward, clipping, optimizer,
    schedule, checkpoints and logging; a task owns its data, model, forward step and metrics.

    Optional capabilities, declared at registration (``capabilities=[...]``), each with its
    method, whose signature a Protocol gives (see Capabilities below): ``predict(ctx:
    PredictContext) -> list[dict]`` (``Predicts``), ``check_data(ctx: DataContext) ->
    DataCheck`` (``ChecksData``), ``report(ctx: ReportContext) -> None`` (``Reports``),
    ``stream(ctx: StreamContext) -> Iterator[dict]`` (``Streams``: one JSON-able record per frame
    or per ``ctx.every`` frames; a model that cannot stream raises a one-line ``ConfigError``
    saying why and how to train one that can), ``export(ctx: ExportContext) -> Exportable``
    (``Exports``: the module ``rnnkit export`` writes and checks).

    ``measured_baseline``: a trivial baseline the task measures itself (its metrics under a
    prefix, e.g. video-predict's ``copy_last_mse``), shown beside the model's figures; tasks of
    the classification and segmentation kinds get the majority-class baseline without it.
    """

    measured_baseline: ClassVar[MeasuredBaseline | None] = None

    def default_config(self) -> RunConfig:
        """The task's defaults: data source, model settings, training settings, monitored metric
        (not called when the task was registered with ``config=``, which returns them)."""
        raise NotImplementedError

    def build_data(self, ctx: DataContext) -> DataBundle:
        """Train/val/test data sets; by default those of ``data.source`` (``ctx.open_source()``)."""
        return ctx.open_source()

    def build_model(self, ctx: ModelContext) -> nn.Module | BuiltModel:
        """The model, usually from ``ctx.registries.backbones`` and ``ctx.registries.heads``:
        an ``nn.Module``, or a :class:`BuiltModel` that also names the input normalisation the
        task chose (e.g. pretrained weights' mean and std), for the runner to record with the
        run. Rebuilding a saved run, ``ctx.normalisation`` holds what was recorded. The config
        is read, never written: a choice made here goes into the ``BuiltModel``."""
        raise NotImplementedError

    def step(self, ctx: StepContext, model: nn.Module, batch: Any) -> StepOutput:
        """One forward pass on a batch already on the model's device."""
        raise NotImplementedError

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        """Evaluation metrics; scalar ones are logged, others (per-class, confusion) saved."""
        raise NotImplementedError

    def update_metrics(self, metrics: MetricCollection, output: StepOutput) -> None:
        """Feed one step's output to the task's own metrics."""
        metrics.update(output.preds, output.targets)


TaskFactory = Callable[[], Task]


# ------------------------------------------------------------------- optional capabilities


class Predicts(Protocol):
    """A task registered with capability ``predict`` (``rnnkit predict RUN FILES``)."""

    def predict(self, ctx: PredictContext) -> list[dict[str, Any]]:
        """One JSON-able record per input (a file, a clip, a folder of frames: whatever the
        task reads), e.g. ``{"file": ..., "top": [{"label": ..., "score": ...}]}``."""
        ...


class ChecksData(Protocol):
    """A task registered with capability ``check-data`` (``rnnkit check-data --task T``)."""

    def check_data(self, ctx: DataContext) -> DataCheck:
        """What the data of ``ctx.config`` holds and what is wrong with it, without training
        (``ctx.deep``: decode every frame, not just probe)."""
        ...


class Reports(Protocol):
    """A task registered with capability ``report``: files after a split is evaluated."""

    def report(self, ctx: ReportContext) -> None:
        """Write report files (overlays, per-sample records) into ``ctx.run_dir``."""
        ...


class Streams(Protocol):
    """A task registered with capability ``stream`` (``rnnkit stream RUN SOURCE``)."""

    def stream(self, ctx: StreamContext) -> Iterator[dict[str, Any]]:
        """One JSON-able record per frame, or per ``ctx.every`` frames, as ``ctx.frames``
        arrive; a model that cannot stream raises a one-line ``ConfigError`` saying why and how
        to train one that can."""
        ...


class Exports(Protocol):
    """A task registered with capability ``export`` (``rnnkit export RUN``)."""

    def export(self, ctx: ExportContext) -> Exportable:
        """The module ``rnnkit export`` writes (ONNX or an exported program) and checks against
        PyTorch, with its tensors' names and sample inputs."""
        ...


def declared_defaults(entry: Entry, requested: str = "") -> RunConfig | None:
    """The defaults task ``entry`` declared at registration (``config=``, a light factory such
    as ``lazy("my_plugin.config:defaults")``), ``task`` set to ``requested`` (the name as the
    user gave it); None when it declared none: ``Task.default_config()`` then gives them, which
    costs importing the task's module (torch)."""
    factory = entry.meta.get("config")
    if factory is None:
        return None
    where = f"plugin {entry.plugin!r}: task {entry.name!r}"
    with rethrown(lambda problem: PluginError(f"{where}: its config= failed: {problem}")):
        config = factory()
    if not isinstance(config, RunConfig):
        raise PluginError(f"{where}: its config= returned {type(config).__name__}, not a RunConfig")
    config.task = requested or entry.name
    return config


def unique_names(files: Sequence[Path | str]) -> dict[str, str]:
    """``str(path) -> name`` for output files: each path's file name, with as many of its
    parent folders as needed (joined by ``-``) for no two different paths to share a name."""
    paths = [Path(f) for f in dict.fromkeys(str(Path(f)) for f in files)]
    depth = 1
    while True:
        names = {str(p): "-".join(p.parts[-depth:]) for p in paths}
        taken = list(names.values())
        if len(set(taken)) == len(taken) or depth >= max((len(p.parts) for p in paths), default=1):
            return names
        depth += 1
