"""``rnnkit stream`` for video-predict: the next frame after each new frame, the recurrent state
carried (one ``model.step`` per frame, as the offline model reads its context).

Each frame that arrives is scored against the prediction the model made for it after the
previous frame: ``mse`` (squared error summed over the frame's pixels in [0, 1], OpenSTL's per
frame MSE, as the ``mse`` metric) beside ``copy_last_mse`` (the previous frame taken as the
prediction), an online figure of how well the model foresees this source. A record every
``ctx.every`` frames; at the end the means over every scored frame. With ``--out FILE.mp4``
a side-by-side video: each frame that arrived (left) beside what the model had predicted for
it (right; black for the first frame), one frame every ``ctx.every``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import torch

from rnnkit_videopredict.models import FramePredictor, convert_channels
from rnnkit_videopredict.predict import even, to_rgb8
from rnnvision_kit import StreamContext
from rnnvision_kit.data import VideoWriter


def frame_mse(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    """Squared error of a ``C,H,W`` prediction (clamped to [0, 1]) summed over its pixels."""
    return float((prediction.float().clamp(0, 1) - truth.float()).pow(2).sum())


def side_by_side(frame: torch.Tensor, prediction: torch.Tensor | None) -> np.ndarray:
    """``H,2W,3`` uint8: ``frame`` beside ``prediction`` (black when None), both ``C,H,W``."""
    right = torch.zeros_like(frame) if prediction is None else prediction
    pair = torch.stack([frame, convert_channels(right, frame.shape[0])])
    left_rgb, right_rgb = to_rgb8(pair)
    return np.concatenate([left_rgb, right_rgb], axis=1)


def stream(ctx: StreamContext) -> Iterator[dict[str, Any]]:
    """Records ``{"frame", "time_s", "mse", "copy_last_mse"}`` (the scores of the prediction
    made for this frame; none for the first frame), one every ``ctx.every`` frames, then
    ``{"steps", "scored", "mean_mse", "mean_copy_last_mse"}`` (and ``video``)."""
    model = cast(FramePredictor, ctx.model)
    channels, out = ctx.spec.channels, model.out_channels
    writer = None
    if ctx.video_out is not None:
        ctx.video_out.parent.mkdir(parents=True, exist_ok=True)
        writer = VideoWriter(ctx.video_out, fps=ctx.frames.fps / ctx.every)
    state: Any = None
    expected: torch.Tensor | None = None  # the prediction for the frame that arrives next
    previous: torch.Tensor | None = None  # the last frame read, in the output's channels
    steps = scored = 0
    total = total_copy = 0.0
    try:
        for frame in ctx.frames:
            x = convert_channels(frame.image, channels)
            truth = convert_channels(x, out)
            record: dict[str, Any] = {"frame": frame.index, "time_s": round(frame.time_s, 3)}
            if expected is not None and previous is not None:
                mse, copy = frame_mse(expected, truth), frame_mse(previous, truth)
                total, total_copy, scored = total + mse, total_copy + copy, scored + 1
                record |= {"mse": round(mse, 4), "copy_last_mse": round(copy, 4)}
            steps += 1
            if writer is not None and steps % ctx.every == 0:
                writer.write(even(side_by_side(x, expected)[None])[0])
            y, state = model.step(x.unsqueeze(0), state)
            expected, previous = y[0].clamp(0, 1), truth
            if steps % ctx.every == 0:
                yield record
    finally:
        if writer is not None:
            writer.close()
    summary: dict[str, Any] = {
        "steps": steps,
        "scored": scored,
        "mean_mse": round(total / scored, 4) if scored else None,
        "mean_copy_last_mse": round(total_copy / scored, 4) if scored else None,
    }
    if writer is not None:
        summary["video"] = str(ctx.video_out)
    yield summary
