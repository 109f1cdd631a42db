"""``rnnkit predict`` for seg-refine: one index PNG mask per frame of a video file or a folder of
frames, or per image; masks have the input's own size. Long videos are read and refined in
chunks, the recurrent state carried from chunk to chunk.

Outputs are named by the input's file name with its extension (``clip.mp4_masks/00000.png``,
``photo.jpg_mask.png``), prefixed by its folders where two inputs of one call share a name
(``PredictContext.output_path``), so that no output overwrites another."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image

from rnnkit_segrefine.config import SegRefineConfig
from rnnkit_segrefine.model import SegRefiner, upsample_logits
from rnnkit_segrefine.readers import IMAGE_SUFFIXES, write_index_png
from rnnvision_kit import DataError, DataSpec, PredictContext, RnnkitError, reason
from rnnvision_kit.data import NOT_VIDEO_SUFFIXES, FrameSource

Reader = Callable[[int, int], torch.Tensor]  # (start, stop) -> uint8 T,3,h,w at the model size


def read_image(
    path: Path, size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, tuple[int, int]]:
    """uint8 ``3,H,W`` (resized to ``size`` when given) and the original ``(H, W)``."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = " ".join(str(error).split())[:80] or type(error).__name__
        raise DataError(f"{path}: not a readable image ({reason})") from None
    original = (rgb.height, rgb.width)
    if size is not None and original != size:
        rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1), original


def _open(path: Path, size: tuple[int, int]) -> tuple[str, int, tuple[int, int], Reader]:
    """(kind, frame count, original (H, W), reader) of a video file, frame folder or image."""
    source = FrameSource(path)
    if source.is_folder:
        return _open_folder(source, size)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        image, original = read_image(path, size)
        return "image", 1, original, lambda start, stop: image[None]
    if suffix in NOT_VIDEO_SUFFIXES:
        images = ", ".join(IMAGE_SUFFIXES)
        raise DataError(f"{path}: not a video, image ({images}) or folder of frames")
    info = source.probe()  # any other file: a video if PyAV reads one

    def read_video(start: int, stop: int) -> torch.Tensor:
        return source.read(range(start, stop), info, size=size)

    return "video", info.num_frames, (info.height, info.width), read_video


def _open_folder(
    source: FrameSource, size: tuple[int, int]
) -> tuple[str, int, tuple[int, int], Reader]:
    """A frame folder's frames in frame order; each must have the first one's size (its mask
    is written at that size)."""
    files = [Path(f) for f in source.frame_files()]
    if not files:
        raise DataError(f"{source.path}: folder holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    _, original = read_image(files[0])

    def read_folder(start: int, stop: int) -> torch.Tensor:
        frames = []
        for file in files[start:stop]:
            frame, shape = read_image(file, size)
            if shape != original:
                raise DataError(
                    f"{file}: frame is {shape[1]}x{shape[0]} but {files[0].name} is "
                    f"{original[1]}x{original[0]} (WxH)"
                )
            frames.append(frame)
        return torch.stack(frames)

    return "frames", len(files), original, read_folder


@contextlib.contextmanager
def _writing(folder: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise RnnkitError(
            f"{folder}: folder cannot be written ({reason(error)}); --out DIR"
        ) from None


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


MASKS_SUFFIX = "_masks"  # the folder of a video's or frame folder's masks: clip.mp4_masks/
MASK_SUFFIX = "_mask.png"  # an image's mask: photo.jpg_mask.png


def predict(ctx: PredictContext) -> list[dict[str, Any]]:
    """One record per input of ``ctx.files``, its masks at ``ctx.output_path`` (never shared by
    two inputs of the call, ``a.mp4`` and ``a.avi`` included)."""
    model = cast(SegRefiner, ctx.model)  # this task's model, of a seg-refine run
    config = cast(SegRefineConfig, ctx.config)
    return [
        predict_file(
            model, Path(file), config, ctx.spec, ctx.out_dir, ctx.device, name=ctx.output_path
        )
        for file in ctx.files
    ]


def _beside(out_dir: Path, file: Path, suffix: str) -> Path:
    return out_dir / f"{file.name}{suffix}"


def predict_file(
    model: SegRefiner,
    path: Path,
    config: SegRefineConfig,
    spec: DataSpec,
    out_dir: Path,
    device: torch.device | None = None,
    name: Callable[[Path, str], Path] | None = None,
) -> dict[str, Any]:
    """Write the masks of one input under ``out_dir`` and return its JSON-able record; the model
    (a SegRefiner in eval mode) runs on ``device`` (default: where its parameters are). ``name``
    gives an output's path from the input and a suffix (``PredictContext.output_path``; default
    ``out_dir/<file name><suffix>``). A folder that cannot be written is one line naming it (the
    masks are the prediction)."""
    size = (spec.height, spec.width)
    kind, count, original, read = _open(path, size)
    if device is None:
        device = next(model.parameters()).device
    name = name or partial(_beside, out_dir)
    chunk = max(1, int(getattr(spec, "clip_len", 0) or config.data.clip_len))
    image_mask = name(path, MASK_SUFFIX)
    target = image_mask.parent if kind == "image" else name(path, MASKS_SUFFIX)
    with _writing(target):
        target.mkdir(parents=True, exist_ok=True)
    pixels = torch.zeros(spec.num_classes, dtype=torch.long)
    state, written = None, []
    for start, stop in _chunks(count, chunk):
        frames = read(start, stop).to(device, torch.float32).div_(255.0)
        logits, state = model.stream(frames[None], state)
        labels = upsample_logits(logits[0].float(), original).argmax(1).cpu()
        pixels += torch.bincount(labels.flatten(), minlength=spec.num_classes)
        for offset, mask in enumerate(labels):
            file = image_mask if kind == "image" else target / f"{start + offset:05d}.png"
            with _writing(target):
                write_index_png(file, mask.numpy())
            written.append(file)
    fractions = (pixels.double() / max(1, int(pixels.sum()))).tolist()
    record: dict[str, Any] = {
        "file": str(path),
        "kind": kind,
        "frames": len(written),
        "size": [original[1], original[0]],
        "class_fractions": {
            name: round(v, 6) for name, v in zip(spec.class_names, fractions, strict=True)
        },
    }
    if kind == "image":
        record["mask"] = str(written[0])
    else:
        record["masks"] = str(target)
    return record
