"""``rnnkit predict`` for video-predict: what comes after the end of a video.

The video (or frame folder) is read at the run's frame size and channels (grey: luma), its
LAST ``data.context`` frames are the context, and the model rolls out ``--horizon`` frames
(default: the run's ``data.eval_horizon``, else ``data.horizon``) on its own predictions. Written
next to each other in ``ctx.out_dir`` (``--out``, else ``RUN_DIR/predict``), named after the
input (``PredictContext.output_path``, so that no two inputs share a file):
``<name>_predicted.mp4`` and ``<name>_predicted.gif`` (the predicted frames) and
``<name>_strip.png`` (the context frames, a gap, then the predicted ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from rnnkit_videopredict.config import PredictConfig
from rnnkit_videopredict.models import FramePredictor, convert_channels
from rnnvision_kit import DataError, PredictContext
from rnnvision_kit.data import FrameSource, write_video

GAP = 4  # pixels between the context and the prediction in a strip
DEFAULT_FPS = 10.0  # of the written video when the source tells none


def as_channels(frames: torch.Tensor, channels: int) -> torch.Tensor:
    """``T,3,H,W`` uint8 RGB frames as float32 in [0, 1] with ``channels`` channels (grey:
    luma), as the ``videoframes`` source reads them."""
    return convert_channels(frames.float().div_(255), channels)


def rollout(model: FramePredictor, context: torch.Tensor, horizon: int) -> torch.Tensor:
    """The ``horizon`` frames after ``context`` (``B,T,C,H,W``): ``B,horizon,out,H,W`` in
    [0, 1], each fed back as the next input (``FramePredictor.forward``)."""
    steps = context.shape[1]
    preds = model(context, steps, horizon)
    return preds[:, steps - 1 :].clamp(0, 1)


def to_rgb8(frames: torch.Tensor) -> np.ndarray:
    """``T,C,H,W`` frames in [0, 1] (C 1 or 3) as ``T,H,W,3`` uint8."""
    rgb = convert_channels(frames.detach().float().cpu().clamp(0, 1), 3)
    return (rgb.permute(0, 2, 3, 1) * 255 + 0.5).to(torch.uint8).numpy()


def even(frames: np.ndarray) -> np.ndarray:
    """``T,H,W,3`` frames padded (edge pixels repeated) to an even height and width, as
    yuv420p video needs."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def write_gif(path: Path, frames: np.ndarray, fps: float) -> Path:
    """``T,H,W,3`` uint8 frames as a looping GIF."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    duration = max(20, round(1000 / max(fps, 1e-6)))  # ms per frame
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=duration, loop=0, optimize=False
    )
    return path


def strip(rows: Sequence[Sequence[np.ndarray]], gap: int = GAP) -> np.ndarray:
    """Rows of groups of ``T,H,W,3`` frames side by side, groups ``gap`` white pixels apart
    (every group of a column as wide as the widest)."""
    lines = []
    for groups in rows:
        parts: list[np.ndarray] = []
        for k, group in enumerate(groups):
            if k:
                parts.append(np.full((group.shape[1], gap, 3), 255, np.uint8))
            parts.extend(group)
        lines.append(np.concatenate(parts, axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]
    separator = np.full((gap, width, 3), 255, np.uint8)
    out = [lines[0]]
    for line in lines[1:]:
        out += [separator, line]
    return np.concatenate(out, axis=0)


def write_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path


def predict(ctx: PredictContext) -> list[dict[str, Any]]:
    """One record per file of ``ctx.files`` (a video file or a folder of frames)."""
    return [predict_video(ctx, Path(file)) for file in ctx.files]


def predict_video(ctx: PredictContext, path: Path) -> dict[str, Any]:
    """Roll out after the last ``data.context`` frames of ``path``; the record names the
    written files, the context and horizon used and the input's frame count."""
    config = cast(PredictConfig, ctx.config)  # a video-predict run's
    spec, model = ctx.spec, cast(FramePredictor, ctx.model)
    context = int(getattr(spec, "context", config.data.context))
    horizon = ctx.horizon or config.data.test_horizon
    source = FrameSource(path)
    info = source.probe()
    n = info.num_frames
    if n < context:
        raise DataError(
            f"{path}: {n} frames, fewer than the run's {context}-frame context (data.context)"
        )
    first = n - context
    raw = source.read(range(first, n), info, size=(spec.height, spec.width))
    frames = as_channels(raw, spec.channels).unsqueeze(0).to(ctx.device)
    predicted = rollout(model, frames, horizon)[0]
    fps = info.fps if info.fps and info.fps > 0 else DEFAULT_FPS
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    rgb = to_rgb8(predicted)
    video = write_video(ctx.output_path(path, "_predicted.mp4"), even(rgb), fps=max(1, round(fps)))
    gif = write_gif(ctx.output_path(path, "_predicted.gif"), rgb, fps)
    png = write_png(ctx.output_path(path, "_strip.png"), strip([[to_rgb8(frames[0]), rgb]]))
    return {
        "file": str(path),
        "frames": n,
        "fps": round(fps, 3),
        "context": context,
        "context_frames": [first, n - 1],
        "horizon": horizon,
        "video": str(video),
        "gif": str(gif),
        "strip_png": str(png),
    }
