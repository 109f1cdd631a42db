"""``rnnkit export``: a run's model as ONNX (or a ``torch.export`` program), checked against PyTorch.

The task says what to export (``Task.export`` returns an :class:`~rnnvision_kit.task.Exportable`):
a module whose recurrent state is an explicit input and output, so that the exported model
streams, with names, dynamic axes and sample inputs.

ONNX goes through torch.onnx's TorchScript-based exporter (``dynamo=False``). The dynamo-based
one writes ``nn.GRU`` as an ONNX ``GRU`` with ``linear_before_reset=0`` while PyTorch's GRU is the
``linear_before_reset=1`` variant, wrong outputs without an error (pytorch #189225, onnxscript
#2852), and it can freeze a dynamic time axis to the example's length (pytorch #191855).
Whichever exporter runs, the result is checked before anything is written: onnxruntime (or the
reloaded program) against PyTorch at several sizes of the varied axis, none of them the size the
export traced with, and a difference above the tolerance fails the export with one line.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from rnnvision_kit.atomicfile import staged_file, writable_folder
from rnnvision_kit.errors import ConfigError, RnnkitError
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.pipeline import load_run, rebuild
from rnnvision_kit.runner.records import to_jsonable, write_json
from rnnvision_kit.runner.rundir import Checkpoint
from rnnvision_kit.task import Exportable, ExportContext

FORMATS = {"onnx": ".onnx", "exported-program": ".pt2"}
EXTRA = "pip install 'rnnvision-kit[export]'"
OPSET = 17
TRACE_SIZE = 2  # the size of the varied axis the export traces with; the checks use others
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_run` wrote and measured."""

    path: Path  # the model file
    sidecar: Path  # its JSON description
    format: str  # onnx or exported-program
    task: str
    mode: str  # what the task says the export does (stream, clip, image, ...)
    checked_with: str  # e.g. "onnxruntime 1.18.0"
    vary: str  # the axis whose sizes were checked
    differences: dict[int, float]  # size -> largest absolute difference over all outputs
    tolerance: float

    @property
    def largest(self) -> float:
        return max(self.differences.values())


def require_export_modules(fmt: str) -> None:
    """One line naming the extra to install when onnx or onnxruntime is missing."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    if fmt != "onnx":
        return
    missing = []
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise RnnkitError(
            f"rnnkit export --format onnx needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {EXTRA}"
        )


def export_run(
    registries: Registries,
    run_dir: Path,
    *,
    fmt: str = "onnx",
    out: Path | None = None,
    checkpoint: Checkpoint = "best",
    tolerance: float = TOLERANCE,
) -> ExportResult:
    """Export a run's checkpoint (``best``: best.pt, else last.pt; or ``last``) through its
    task's ``export``, check it against PyTorch, then write the model (default
    ``RUN_DIR/export/model.onnx`` or ``model.pt2``) and its JSON sidecar (the file name plus
    ``.json``). A task without export says so before any missing module is named."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    saved = load_run(registries, run_dir, checkpoint, "export")
    saved.task.require("export")
    require_export_modules(fmt)
    built = rebuild(registries, saved)
    folder = saved.run_dir.export_dir
    path = Path(out).expanduser() if out else folder / f"model{FORMATS[fmt]}"
    writable_folder(path.parent)  # before the export's work
    model = built.model.cpu().eval()
    ctx = ExportContext(model, saved.config, built.spec, fmt)
    exportable = saved.task.export(ctx)
    exportable.module.eval()
    where = f"export of {saved.task.name}"
    with _staged(path) as staged:
        if fmt == "onnx":
            export_onnx(exportable, staged)
            checked_with, differences = check_onnx(exportable, staged, tolerance, where)
        else:
            export_program(exportable, staged)
            checked_with, differences = check_program(exportable, staged, tolerance, where)
    result = ExportResult(
        path,
        path.with_name(path.name + ".json"),
        fmt,
        saved.task.name,
        str(exportable.info.get("mode", "")),
        checked_with,
        exportable.vary,
        differences,
        tolerance,
    )
    write_json(result.sidecar, sidecar(exportable, result, saved, built.spec))
    return result


def _staged(path: Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary file beside ``path`` (same suffix), renamed to it only when the block
    succeeds, with the umask's permissions."""
    return staged_file(path, prefix=f".{path.stem}.", suffix=path.suffix)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' deprecation and tracer warnings off: the numeric checks are what count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------------- ONNX


def export_onnx(exportable: Exportable, path: Path, opset: int = OPSET) -> None:
    """Write ``exportable.module`` to ``path`` with the TorchScript-based exporter (see the
    module docstring for why not the dynamo-based one); adaptive average pools run as fixed
    pooling matrices first (:func:`fixed_adaptive_pools`)."""
    args = tuple(exportable.sample(TRACE_SIZE, torch.Generator().manual_seed(TRACE_SIZE)))
    module = fixed_adaptive_pools(copy.deepcopy(exportable.module), args)
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=False,
                input_names=list(exportable.inputs),
                output_names=list(exportable.outputs),
                dynamic_axes={k: dict(v) for k, v in exportable.dynamic_axes.items()},
                opset_version=opset,
                do_constant_folding=True,
            )
    except Exception as error:
        raise RnnkitError(
            f"torch.onnx cannot export this model: {type(error).__name__}: {_first_line(error)}"
        ) from error


def pooling_matrix(size: int, out: int) -> torch.Tensor:
    """``out x size``: row ``i`` averages the window ``AdaptiveAvgPool`` uses for output ``i``."""
    matrix = torch.zeros(out, size)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class FixedAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` for one input size, as two matrix products: the TorchScript
    exporter cannot write an adaptive pool whose output is not 1x1 once the batch is dynamic."""

    rows: torch.Tensor  # buffers: out_H x H, and W x out_W
    columns: torch.Tensor

    def __init__(self, size: tuple[int, int], out: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", pooling_matrix(size[0], out[0]))
        self.register_buffer("columns", pooling_matrix(size[1], out[1]).t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows, x), self.columns)


def fixed_adaptive_pools(module: nn.Module, args: tuple[torch.Tensor, ...]) -> nn.Module:
    """``module`` with each ``nn.AdaptiveAvgPool2d`` whose output is not 1x1 replaced by a
    :class:`FixedAdaptiveAvgPool2d` for the input size it sees on ``args``."""
    seen: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, child in module.named_modules():
        if isinstance(child, nn.AdaptiveAvgPool2d):

            def record(_: nn.Module, inputs: tuple, __: Any, name: str = name) -> None:
                seen[name] = tuple(inputs[0].shape[-2:])

            hooks.append(child.register_forward_hook(record))
    if not hooks:
        return module
    try:
        with torch.no_grad():
            module(*args)
    finally:
        for hook in hooks:
            hook.remove()
    for name, size in seen.items():
        pool = cast(nn.AdaptiveAvgPool2d, module.get_submodule(name))  # hooked above
        given = pool.output_size
        wanted = (given, given) if given is None or isinstance(given, int) else tuple(given)
        pair = [s if w is None else int(w) for w, s in zip(wanted, size, strict=True)]
        out = (pair[0], pair[1])
        if out == (1, 1):
            continue  # exported as GlobalAveragePool
        parent, _, attr = name.rpartition(".")
        setattr(module.get_submodule(parent), attr, FixedAdaptiveAvgPool2d(size, out))
    return module


def check_onnx(
    exportable: Exportable, path: Path, tolerance: float, where: str = "export"
) -> tuple[str, dict[int, float]]:
    """Run ``path`` with onnxruntime (CPU) at every size of ``exportable.sizes`` and compare with
    PyTorch; returns ``("onnxruntime X.Y", {size: largest difference})``."""
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path))
        options = ort.SessionOptions()
        options.log_severity_level = 4  # errors come back as exceptions
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise RnnkitError(
            f"{where}: onnxruntime cannot load the model: {_first_line(error)}"
        ) from error

    def run(inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
        feed = {name: t.numpy() for name, t in zip(exportable.inputs, inputs, strict=True)}
        return session.run(list(exportable.outputs), feed)

    return f"onnxruntime {ort.__version__}", compare(exportable, run, tolerance, where)


# --------------------------------------------------------------------- exported program


def export_program(exportable: Exportable, path: Path) -> None:
    """Write ``torch.export.export(module, ...)`` to ``path`` (``.pt2``), the axes of
    ``dynamic_axes`` dynamic."""
    args = tuple(exportable.sample(TRACE_SIZE, torch.Generator().manual_seed(TRACE_SIZE)))
    dims: dict[str, Any] = {}
    shapes: list[Any] = []  # per input its dims; forward(x, *states): the states' as a tuple
    for name in exportable.inputs:
        axes = exportable.dynamic_axes.get(name, {})
        shapes.append(
            {axis: dims.setdefault(label, torch.export.Dim(label)) for axis, label in axes.items()}
            or None
        )
    params = inspect.signature(exportable.module.forward).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):  # forward(x, *states): nest the states
        fixed = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        if len(shapes) > fixed:
            shapes = [*shapes[:fixed], tuple(shapes[fixed:])]
    try:
        with _quiet():
            program = torch.export.export(
                exportable.module, args, dynamic_shapes=tuple(shapes), strict=False
            )
            torch.export.save(program, str(path))
    except Exception as error:
        raise RnnkitError(
            f"torch.export cannot export this model: {type(error).__name__}: "
            f"{_first_line(error)} (use --format onnx)"
        ) from error


def check_program(
    exportable: Exportable, path: Path, tolerance: float, where: str = "export"
) -> tuple[str, dict[int, float]]:
    """Reload the program from ``path`` and compare it with PyTorch at every size."""
    with _quiet():
        module = torch.export.load(str(path)).module()

    def run(inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
        with torch.no_grad():
            outputs = module(*inputs)
        return [t.numpy() for t in _as_tuple(outputs)]

    return f"torch.export (torch {torch.__version__})", compare(exportable, run, tolerance, where)


# ------------------------------------------------------------------------------ checks


def compare(
    exportable: Exportable,
    run: Callable[[tuple[torch.Tensor, ...]], Sequence[np.ndarray]],
    tolerance: float,
    where: str = "export",
) -> dict[int, float]:
    """Largest absolute difference between ``run`` (the exported model) and PyTorch
    (``exportable.reference``, else its module) at each size; a failure or a difference above
    ``tolerance`` raises one line naming output and size."""
    reference = exportable.reference or exportable.module
    differences: dict[int, float] = {}
    for size in exportable.sizes:
        inputs = tuple(exportable.sample(size, torch.Generator().manual_seed(1000 + size)))
        at = f"{exportable.vary}={size} (exported with {exportable.vary}={TRACE_SIZE})"
        with torch.no_grad():
            expected = [t.detach().float().numpy() for t in _as_tuple(reference(*inputs))]
        try:
            got = list(run(inputs))
        except Exception as error:
            raise RnnkitError(
                f"{where}: the exported model fails on {at}: {_first_line(error)} "
                "(a dynamic axis frozen to the example's size?)"
            ) from error
        if len(got) != len(exportable.outputs) or len(expected) != len(got):
            raise RnnkitError(
                f"{where}: {len(got)} outputs from the exported model, {len(expected)} from "
                f"PyTorch, {len(exportable.outputs)} named"
            )
        largest = 0.0
        for name, want, have in zip(exportable.outputs, expected, got, strict=True):
            if tuple(want.shape) != tuple(have.shape):
                raise RnnkitError(
                    f"{where}: output {name} has shape {tuple(have.shape)} at {at}, PyTorch "
                    f"gives {tuple(want.shape)} (a dynamic axis frozen to the example's size?)"
                )
            diff = float(np.max(np.abs(want - have))) if want.size else 0.0
            if not np.isfinite(diff):
                diff = float("inf")
            if diff > tolerance:
                raise RnnkitError(
                    f"{where}: the exported model differs from PyTorch by {diff:.3g} on output "
                    f"{name} at {at}, above the tolerance {tolerance:g}; nothing was written"
                )
            largest = max(largest, diff)
        differences[size] = largest
    return differences


def _as_tuple(value: Any) -> tuple[torch.Tensor, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


# ------------------------------------------------------------------------------ sidecar


def _shape(tensor: torch.Tensor, axes: dict[int, str]) -> list[int | str]:
    return [axes.get(i, int(n)) for i, n in enumerate(tensor.shape)]


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


# How a user brings frames to frame_size, as training did (the spec's ``resize``).
RESIZE_NOTES: dict[str, str] = {
    "stretch": "resize frames to frame_size (aspect ratio not kept)",
    "crop": (
        "resize frames so that they cover frame_size (the short side fits, aspect ratio kept), "
        "then centre-crop to frame_size"
    ),
    "pad": (
        "resize frames so that they fit inside frame_size (the long side fits, aspect ratio "
        "kept), then centre them on a black frame_size canvas"
    ),
}


def sidecar(exportable: Exportable, result: ExportResult, saved: Any, spec: Any) -> dict[str, Any]:
    """The JSON description of an export: tensors (names, shapes with the dynamic axes named,
    dtypes), states, the input's preprocessing, class names, and what was checked."""
    args = tuple(exportable.sample(TRACE_SIZE, torch.Generator().manual_seed(TRACE_SIZE)))
    with torch.no_grad():
        outs = _as_tuple(exportable.module(*args))
    axes = exportable.dynamic_axes
    info = dict(exportable.info)
    resize = getattr(spec, "resize", "stretch")  # specs of other kinds: frames stretched

    def tensors(names: Sequence[str], values: Sequence[torch.Tensor]) -> list[dict[str, Any]]:
        return [
            {"name": n, "shape": _shape(v, axes.get(n, {})), "dtype": _dtype(v)}
            for n, v in zip(names, values, strict=True)
        ]

    shapes = {n: _shape(v, axes.get(n, {})) for n, v in zip(exportable.inputs, args, strict=True)}
    dtypes = {n: _dtype(v) for n, v in zip(exportable.inputs, args, strict=True)}
    states = [
        {"input": i, "output": o, "shape": shapes[i], "dtype": dtypes[i], "initial": "zeros"}
        for i, o in exportable.states.items()
    ]
    data = {
        "format": result.format,
        "file": result.path.name,
        "task": saved.task.name,
        "plugin": saved.task.plugin,
        "run": str(saved.dir),
        "checkpoint": saved.checkpoint_path.name,
        "exporter": (
            f"torch.onnx TorchScript-based exporter (dynamo=False), opset {OPSET}"
            if result.format == "onnx"
            else "torch.export"
        ),
        "torch": torch.__version__,
        "inputs": tensors(exportable.inputs, args),
        "outputs": tensors(exportable.outputs, outs),
        "states": states,
        "preprocessing": {
            "channels": spec.channels,
            "frame_size": [spec.height, spec.width],
            "size_order": "height, width",
            "value_range": [0.0, 1.0],
            "color": "RGB" if spec.channels == 3 else "gray" if spec.channels == 1 else "",
            "mean": list(spec.mean),
            "std": list(spec.std),
            "normalised_by_model": True,
            "resize": resize,
            "note": (
                f"{RESIZE_NOTES.get(resize, RESIZE_NOTES['stretch'])}, "
                "scale to [0, 1] (uint8 / 255), channels first; "
                "the model subtracts mean and divides by std itself"
            ),
            **info.pop("preprocessing", {}),
        },
        "class_names": list(spec.class_names),
        "spec": spec.to_dict(),
        **info,
        "check": {
            "against": "PyTorch (CPU, float32)",
            "runtime": result.checked_with,
            "axis": result.vary,
            "traced_with": TRACE_SIZE,
            "largest_difference": {str(k): v for k, v in result.differences.items()},
            "tolerance": result.tolerance,
        },
    }
    return to_jsonable(data)
