"""``load(run)`` -> :class:`Predictor`: a trained run's model, ready for Python.

The run is read as ``rnnkit predict``, ``stream`` and ``export`` read it (``runner.pipeline``:
the task, the config, the spec and the checkpoint's weights, loaded with ``weights_only=True``),
once; each method then calls the task's own capability, as the command does, and returns what
the command prints or writes as JSON.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from rnnvision_kit.api.host import caller_state, plugin_host
from rnnvision_kit.api.inputs import (
    as_batch,
    as_float,
    as_paths,
    as_uint8,
    is_path,
    layout,
    read_files,
    resized,
    write_inputs,
)
from rnnvision_kit.config import RunConfig, apply_mapping
from rnnvision_kit.dataspec import DataSpec
from rnnvision_kit.errors import CheckpointError, ConfigError, TaskError
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.device import select_device
from rnnvision_kit.runner.pipeline import SavedRun, TaskHandle, load_run, open_task, rebuild
from rnnvision_kit.runner.rundir import Checkpoint, RunDir
from rnnvision_kit.task import PredictContext, StreamContext, check_horizon

if TYPE_CHECKING:
    from rnnvision_kit.runner.export import ExportResult

Prediction = dict[str, Any]  # one record, as `rnnkit predict --json` writes it
EXPECTED = "a run folder (with config.yaml) or a checkpoint file (best.pt, last.pt)"


def load(
    run: str | os.PathLike[str],
    device: str | torch.device | None = None,
    *,
    plugins: Sequence[str] = (),
) -> Predictor:
    """The model of a run, in eval mode on ``device`` (None: the run's ``train.device``,
    ``auto`` picks CUDA when there is one), with its task, config and data spec.

    ``run`` is a run folder (its best.pt, else last.pt, as every command reads it), a
    checkpoint file in a run folder (``RUN/last.pt``), a checkpoint file on its own (the
    config it recorded is used) or what :func:`~rnnvision_kit.fit` returned (a path-like).
    ``plugins`` loads local plugin modules or files, as ``rnnkit --plugin`` does."""
    registries = plugin_host(plugins).registries
    path = Path(os.fspath(run)).expanduser()
    with caller_state():
        saved = read_run(registries, path)
        built = rebuild(registries, saved)
    chosen = select_device(str(device) if device is not None else saved.config.train.device)
    return Predictor(registries, saved, built.model.to(chosen).eval(), chosen)


def read_run(registries: Registries, path: Path) -> SavedRun:
    """The saved run ``path`` names (see :func:`load`); anything else is one line saying
    what was expected."""
    if path.is_dir():
        if not RunDir(path).is_run():
            raise CheckpointError(
                f"{path}: not a run folder (no {RunDir.CONFIG}); expected {EXPECTED}"
            )
        return load_run(registries, path, "best", "load")
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; expected {EXPECTED}")
    which = which_checkpoint(path)
    if which is not None and RunDir(path.parent).is_run():
        return load_run(registries, path.parent, which, "load")
    try:
        state = load_checkpoint(path)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; expected {EXPECTED}") from None
    return saved_checkpoint(registries, path, state)


def which_checkpoint(path: Path) -> Checkpoint | None:
    """``best`` for a file named best.pt, ``last`` for last.pt, else None."""
    if path.name == RunDir.BEST:
        return "best"
    return "last" if path.name == RunDir.LAST else None


def saved_checkpoint(registries: Registries, path: Path, state: dict[str, Any]) -> SavedRun:
    """A checkpoint file read on its own: the task, config and spec it recorded."""
    recorded = dict(state.get("config") or {})
    task_name = recorded.pop("task", None)
    if not isinstance(task_name, str):
        raise CheckpointError(f"{path}: the checkpoint records no task")
    task = open_task(registries, task_name)
    config = task.default_config()
    apply_mapping(config, recorded)
    config.task = task_name
    spec = DataSpec.from_dict(state["spec"])
    return SavedRun(path.parent, task, config, spec, state, path)


class Predictor:
    """A run's model with what its task does to raw input around it (see :func:`load`).

    ``model`` (an ``nn.Module`` in eval mode on ``device``), ``spec`` (the data spec saved with
    the checkpoint: class names, size, normalisation), ``config`` (the run's settings),
    ``task`` (name, plugin, kind and capabilities: ``task.supports("stream")``),
    ``checkpoint`` (the file the weights came from) and ``run_dir``. ``predict``, ``stream``
    and ``export`` need the task capability of that name; without it they raise a
    ``TaskError`` naming it."""

    def __init__(
        self, registries: Registries, saved: SavedRun, model: nn.Module, device: torch.device
    ) -> None:
        self._registries = registries
        self._saved = saved
        self.model = model
        self.device = device

    # ------------------------------------------------------------------------ what it is
    @property
    def task(self) -> TaskHandle:
        return self._saved.task

    @property
    def spec(self) -> DataSpec:
        return self._saved.spec

    @property
    def config(self) -> RunConfig:
        return self._saved.config

    @property
    def checkpoint(self) -> Path:
        return self._saved.checkpoint_path

    @property
    def run_dir(self) -> Path:
        """The run folder (for a checkpoint on its own: the folder that holds it)."""
        return self._saved.dir

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.spec.class_names)

    def __repr__(self) -> str:
        return (
            f"Predictor(task={self.task.name!r}, checkpoint='{self.checkpoint}', "
            f"device={self.device})"
        )

    def _require(self, capability: str) -> None:
        """A ``TaskError`` naming ``capability`` when the task does not declare it."""
        if not self.task.supports(capability):
            offered = ", ".join(self.task.capabilities) or "training and evaluation only"
            raise TaskError(
                f"task {self.task.name!r} (plugin {self.task.plugin!r}) does not support "
                f"{capability} (it supports: {offered})",
                capability,
            )

    def _what(self) -> str:
        return f"task {self.task.name!r}"

    # ------------------------------------------------------------------------ input
    def preprocess(self, x: Any) -> torch.Tensor:
        """What the task feeds its model, from raw input: float32 in [0, 1] (the model
        normalises with the spec's mean and std itself), channels first, at the spec's size,
        with the batch axis, on ``device``: ``B,C,H,W`` images or ``B,T,C,H,W`` clips.

        ``x``: a path or a list of paths (an image; a video file or frame folder, every frame
        of it), or a tensor or NumPy array (``uint8``, or float in [0, 1]; channels first, with
        or without the batch axis). ``self.model(self.preprocess(x))`` is the raw output."""
        kind = self.task.kind
        dims = layout(kind, self.task.name)
        paths = as_paths(x)
        if paths is not None:
            batch = read_files(paths, kind, self.spec)
        else:
            batch = as_batch(x, dims, self.spec.channels, self._what())[0]
        return resized(as_float(batch.to(self.device)), (self.spec.height, self.spec.width))

    # ------------------------------------------------------------------------ predict
    def predict(
        self,
        x: Any,
        *,
        top_k: int = 5,
        out_dir: str | os.PathLike[str] | None = None,
        horizon: int | None = None,
    ) -> Prediction | list[Prediction]:
        """The task's prediction records, those ``rnnkit predict --json`` writes: for
        classification ``{"file", "top": [{"label", "score"}, ...]}`` (and a ``timeline`` of a
        video longer than a clip), for seg-refine where the masks went.

        ``x``: a path (one record), a list of paths (a list), or a tensor or NumPy array
        (``uint8``, or float in [0, 1], channels first: ``B,C,H,W`` images, ``B,T,C,H,W``
        clips; without B: one record). Arrays are read exactly as files are: the task's
        ``predict`` reads them as lossless 8-bit PNG frames, and their records name them
        ``input[i]``. A file that cannot be read raises a ``DataError``. Files a task writes
        (plots, masks) go to ``out_dir``, by default ``RUN_DIR/predict``. ``horizon``: frames
        to predict, for a task that predicts frames (video-predict; ``rnnkit predict
        --horizon``)."""
        self._require("predict")
        check_horizon(horizon, self.spec, self.task.name, "horizon")
        out = (
            Path(out_dir).expanduser() if out_dir is not None else RunDir(self.run_dir).predict_dir
        )
        paths = as_paths(x)
        if paths is not None:
            records = self._predict_files(paths, top_k, out, horizon)
            return records[0] if is_path(x) and len(records) == 1 else records
        kind = self.task.kind
        dims = layout(kind, self.task.name)
        batch, batched = as_batch(x, dims, self.spec.channels, self._what())
        with tempfile.TemporaryDirectory(prefix="rnnkit-input-") as folder:
            files = write_inputs(as_uint8(batch), kind, Path(folder))
            records = self._predict_files(files, top_k, out, horizon)
        names = {str(file): f"input[{i}]" for i, file in enumerate(files)}
        for record in records:
            if record.get("file") in names:
                record["file"] = names[record["file"]]
        return records if batched or len(records) != 1 else records[0]

    def _predict_files(
        self, files: Sequence[Path], top_k: int, out: Path, horizon: int | None = None
    ) -> list[Prediction]:
        """The task's ``predict``, once per file (as ``runner.run.predict_files``), raising
        the first file's error instead of recording it."""
        ctx = PredictContext(
            self.model,
            tuple(files),
            self.config,
            self.spec,
            self.device,
            top_k,
            out,
            every_file=tuple(files),  # for output names no two inputs share
            horizon=horizon,
        )
        records: list[Prediction] = []
        with caller_state(), torch.inference_mode():  # a task's plots switch matplotlib
            for file in files:
                records.extend(self.task.predict(dataclasses.replace(ctx, files=(file,))))
        return records

    # ------------------------------------------------------------------------ stream
    def stream(
        self,
        frames: str | os.PathLike[str] | Iterable[Any],
        *,
        every: int = 1,
        top_k: int = 5,
        fps: float | None = None,
        max_frames: int | None = None,
        timeout: float | None = 10.0,
        out_dir: str | os.PathLike[str] | None = None,
    ) -> Iterator[Prediction]:
        """The task's stream records (those ``rnnkit stream`` writes as JSON lines), made as
        the frames come, the model's recurrent state carried from frame to frame: for
        video-action ``{"frame", "time_s", "top"}`` then the label timeline, for seg-refine a
        mask per frame.

        ``frames``: an iterable of frames (``C,H,W`` tensors or arrays, ``uint8`` or float in
        [0, 1], such as a ``T,C,H,W`` clip or a generator; times from ``fps``, 25 unless
        given), or a source ``rnnkit stream`` reads (a video file, a frame folder, a camera
        such as ``/dev/video0``, a URL; ``timeout``: seconds to wait for a frame). ``every``:
        a record every N frames; ``max_frames``: stop after N; ``out_dir``: files the task
        writes, by default ``RUN_DIR/stream/<source name>``. The task's capability is checked
        now; the frames are read as the generator is iterated."""
        from rnnvision_kit.data.livestream import FrameStream, as_trained, stream_protocols
        from rnnvision_kit.runner.stream import output_paths
        from rnnvision_kit.task import StreamFrame

        self._require("stream")
        if every < 1:
            raise ConfigError(f"stream(every={every}): must be >= 1")
        if max_frames is not None and max_frames < 1:
            raise ConfigError(f"stream(max_frames={max_frames}): must be >= 1")
        size = (self.spec.height, self.spec.width)
        feed: Any
        if isinstance(frames, str | os.PathLike):
            source = os.fspath(frames)
            stream_protocols(source)  # a bad source name: an error now
            feed = FrameStream(  # as rnnkit stream reads it (rnnvision_kit.runner.stream)
                source,
                size,
                record=StreamFrame,
                device=self.device,
                timeout=timeout,
                max_frames=max_frames,
                **as_trained(self.spec),
            )
        else:
            from rnnvision_kit.api.frames import FrameFeed

            feed = FrameFeed(
                frames,
                size,
                channels=self.spec.channels,
                device=self.device,
                fps=fps,
                max_frames=max_frames,
                what=self._what(),
            )
        out = (
            Path(out_dir).expanduser()
            if out_dir is not None
            else output_paths(None, self.run_dir, feed.name)[1]
        )
        ctx = StreamContext(
            self.model, feed, self.config, self.spec, self.device, every, top_k, out
        )
        return self._records(ctx, feed)

    def _records(self, ctx: StreamContext, feed: Any) -> Iterator[Prediction]:
        """The task's records, each made under ``torch.inference_mode()`` (the caller's code
        between them runs outside it), as JSON-able values; the source closed at the end."""
        from rnnvision_kit.runner.records import to_jsonable

        records = self.task.stream(ctx)
        try:
            while True:
                with torch.inference_mode():
                    try:
                        record = next(records)
                    except StopIteration:
                        return
                yield to_jsonable(record)
        finally:
            close = getattr(records, "close", None)  # the task's generator: its finally blocks
            if close is not None:
                close()
            feed.close()

    # ------------------------------------------------------------------------ export
    def export(
        self,
        path: str | os.PathLike[str] | None = None,
        format: Literal["onnx", "exported-program"] = "onnx",
    ) -> ExportResult:
        """``rnnkit export``: the run's model as ONNX (``format="onnx"``, needs the export
        extra) or a ``torch.export`` program (``"exported-program"``, ``.pt2``), its recurrent
        state as explicit inputs and outputs, checked against PyTorch before it is written to
        ``path`` (default ``RUN_DIR/export/model.onnx`` or ``model.pt2``) with its JSON
        sidecar. Returns what was written and measured."""
        from rnnvision_kit.runner.export import export_run

        self._require("export")
        which = which_checkpoint(self.checkpoint)
        if which is None or not RunDir(self.run_dir).is_run():
            raise CheckpointError(
                f"{self.checkpoint}: export reads a run folder (best.pt or last.pt beside "
                f"{RunDir.CONFIG}); load the run folder"
            )
        with caller_state():
            return export_run(
                self._registries,
                self.run_dir,
                fmt=format,
                out=Path(path).expanduser() if path is not None else None,
                checkpoint=which,
            )
