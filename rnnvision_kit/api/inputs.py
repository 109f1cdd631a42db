"""What :class:`~rnnvision_kit.api.Predictor` accepts: file paths, or images and clips as torch
tensors or NumPy arrays, checked against the task's data kind and spec.

Arrays are channels first, one layout per data kind (``LAYOUTS``), with or without the batch
axis, ``uint8`` or floating point in [0, 1]. Anything else is one ``DataError`` line naming
the layout the task expects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnvision_kit.dataspec import DataSpec
from rnnvision_kit.errors import DataError, reason

if TYPE_CHECKING:
    import torch

# data kind -> the axes of one input (a batch adds B in front)
LAYOUTS: dict[str, tuple[str, ...]] = {
    "image": ("C", "H", "W"),
    "video": ("T", "C", "H", "W"),
    "segmentation": ("T", "C", "H", "W"),
}
FRAME = ("C", "H", "W")  # one frame of a stream
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def as_paths(value: Any) -> list[Path] | None:
    """``value`` as file paths (a path, or a list or tuple of paths), else None."""
    if is_path(value):
        return [Path(os.fspath(value)).expanduser()]
    if isinstance(value, list | tuple) and value and all(is_path(v) for v in value):
        return [Path(os.fspath(v)).expanduser() for v in value]
    return None


def layout(kind: str, task: str) -> tuple[str, ...]:
    """The axes of one input of a task of ``kind``; a kind without arrays is one line."""
    if kind not in LAYOUTS:
        raise DataError(
            f"task {task!r} reads {kind} data: give file paths (tensors and arrays are read "
            f"for {', '.join(LAYOUTS)} data)"
        )
    return LAYOUTS[kind]


def expected(dims: tuple[str, ...], channels: int, batch: bool = True) -> str:
    """``B,T,C,H,W or T,C,H,W with C=3, uint8 or float in [0, 1]`` (without ``batch``: one
    layout, no B)."""
    shapes = f"{','.join(('B', *dims))} or {','.join(dims)}" if batch else ",".join(dims)
    return f"{shapes} with C={channels}, uint8 or float in [0, 1]"


def as_tensor(value: Any) -> torch.Tensor:
    """A tensor or NumPy array as a tensor (arrays are shared, not copied, where they can be)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        try:
            return torch.from_numpy(np.ascontiguousarray(value))
        except TypeError:
            raise DataError(f"a NumPy array of dtype {value.dtype} is not an image") from None
    raise DataError(
        f"input of type {type(value).__name__}: expected a path, a list of paths, a torch "
        "tensor or a NumPy array"
    )


def as_batch(
    value: Any, dims: tuple[str, ...], channels: int, what: str, *, batch: bool = True
) -> tuple[torch.Tensor, bool]:
    """``value`` with the batch axis (added when missing) and whether it had one; its shape,
    channels and dtype (``uint8``, or floating point in [0, 1]) checked. ``what`` names the
    reader in messages (``task 'video-action'``); without ``batch`` a batch axis is refused."""
    import torch

    tensor = as_tensor(value)
    shape = tuple(tensor.shape)
    wanted = expected(dims, channels, batch)
    ranks = (len(dims), len(dims) + 1) if batch else (len(dims),)
    if tensor.dim() not in ranks or 0 in shape or shape[-3] != channels:
        raise DataError(f"input of shape {shape}: {what} expects {wanted}")
    if tensor.is_floating_point():
        low, high = (float(v) for v in tensor.aminmax())
        if not (low >= 0.0 and high <= 1.0):  # also False for NaN
            raise DataError(
                f"input values from {low:g} to {high:g}: {what} expects {wanted} (divide "
                "uint8 values by 255, or pass them as uint8)"
            )
    elif tensor.dtype != torch.uint8:
        dtype = str(tensor.dtype).removeprefix("torch.")
        raise DataError(f"input of dtype {dtype}: {what} expects {wanted}")
    batched = tensor.dim() == len(dims) + 1
    return (tensor if batched else tensor.unsqueeze(0)), batched


def as_float(batch: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1] (``uint8 / 255``)."""
    import torch

    return batch.float().div(255.0) if batch.dtype == torch.uint8 else batch.float()


def as_uint8(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (floats in [0, 1] times 255, rounded), on the CPU."""
    import torch

    if batch.dtype == torch.uint8:
        return batch.cpu()
    return batch.float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu()


def resized(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Floats ``..., C, H, W`` resized (bilinear, antialiased) to ``size = (H, W)``."""
    import torch.nn.functional as F

    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    lead = batch.shape[:-3]
    flat = batch.reshape(-1, *batch.shape[-3:])
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(*lead, *out.shape[-3:])


# ----------------------------------------------------------------------------- files


def read_image(path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """An image file as uint8 ``H,W,C`` (gray or RGB), resized (bilinear) to ``size``."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB")
            if converted.size != (size[1], size[0]):
                converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.array(converted, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as error:  # PIL raises assorted errors on damaged files
        raise DataError(f"{path}: not a readable image ({reason(error)})") from None
    return array[..., None] if array.ndim == 2 else array


def read_file(path: Path, kind: str, spec: DataSpec) -> torch.Tensor:
    """One file as uint8 channels first at the spec's size: an image ``C,H,W`` for image
    data; for video and segmentation data, every frame of a video file or frame folder (an
    image file is one frame), ``T,C,H,W``."""
    import torch

    size = (spec.height, spec.width)
    if kind == "image" or path.suffix.lower() in IMAGE_SUFFIXES:
        image = torch.from_numpy(read_image(path, spec.channels, size)).permute(2, 0, 1)
        return image if kind == "image" else image.unsqueeze(0)
    from rnnvision_kit.data import FrameSource

    if not path.exists():
        raise DataError(f"{path}: file not found")
    source = FrameSource(path)
    info = source.probe()
    frames = source.read(range(info.num_frames), info, size=size)
    return frames[:, :1] if spec.channels == 1 else frames


def read_files(paths: Sequence[Path], kind: str, spec: DataSpec) -> torch.Tensor:
    """Files as one uint8 batch (:func:`read_file`); videos must have as many frames."""
    import torch

    items = [read_file(path, kind, spec) for path in paths]
    shapes = {tuple(item.shape) for item in items}
    if len(shapes) > 1:
        counts = ", ".join(f"{p.name}: {i.shape[0]}" for p, i in zip(paths, items, strict=True))
        raise DataError(f"cannot batch videos of different lengths ({counts}); one at a time")
    return torch.stack(items)


def write_inputs(batch: torch.Tensor, kind: str, folder: Path) -> list[Path]:
    """A uint8 batch as the files a task's ``predict`` reads, losslessly (PNG): an image file
    per item of image data, a frame folder per item of video and segmentation data
    (``FOLDER/input-<i>``)."""
    from PIL import Image

    def save(frame: torch.Tensor, path: Path) -> None:  # C,H,W
        array = frame.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)

    files = []
    for i, item in enumerate(batch):
        if kind == "image":
            files.append(folder / f"input-{i}.png")
            save(item, files[-1])
            continue
        files.append(folder / f"input-{i}")
        files[-1].mkdir()
        for t, frame in enumerate(item):
            save(frame, files[-1] / f"{t:05d}.png")
    return files
