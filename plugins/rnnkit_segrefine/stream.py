"""``rnnkit stream`` for seg-refine: a mask after each new frame, refined by the ConvGRU/ConvLSTM
one step per frame with its state carried (one segmenter call per frame).

Only a unidirectional refinement streams (``model.bidirectional=false``; image mode and
``refine=none`` too): frame by frame it gives the offline pass's refined masks. Every
``ctx.every`` frames a record and either an index PNG (``ctx.out_dir/<frame>.png``, at the
source's size) or, with ``--out FILE.mp4``, a frame of an overlay video at the model's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import torch

from rnnkit_segrefine.model import SegRefiner, upsample_logits
from rnnkit_segrefine.readers import write_index_png
from rnnkit_segrefine.report import overlay, palette
from rnnvision_kit import ConfigError, StreamContext
from rnnvision_kit.data import VideoWriter


def streamable(model: Any) -> None:
    """Raise a one-line ConfigError when ``model`` cannot run frame by frame."""
    blocker = getattr(model, "stream_blocker", "it has no per-step API (encode_frame, step)")
    if blocker is not None:
        raise ConfigError(f"this run's model cannot stream: {blocker}")


def stream(ctx: StreamContext) -> Iterator[dict[str, Any]]:
    """Records ``{"frame", "time_s", "mask" (or "video"), "class_fractions"}``, one every
    ``ctx.every`` frames; then ``{"frames": n, "masks" | "video": where}``."""
    model, spec = cast(SegRefiner, ctx.model), ctx.spec  # this task's model
    streamable(model)
    names = spec.class_names
    colours = palette(spec.num_classes)
    writer = None
    if ctx.video_out is not None:
        ctx.video_out.parent.mkdir(parents=True, exist_ok=True)
        writer = VideoWriter(ctx.video_out, fps=ctx.frames.fps / ctx.every)
    else:
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
    state, steps = None, 0
    try:
        for frame in ctx.frames:
            refined, state = model.step(model.encode_frame(frame.image.unsqueeze(0)), state)
            steps += 1
            if steps % ctx.every:
                continue
            record: dict[str, Any] = {"frame": frame.index, "time_s": round(frame.time_s, 3)}
            if writer is not None:
                labels = refined[0].argmax(0).cpu()
                rgb = (frame.image.permute(1, 2, 0).cpu() * 255 + 0.5).to(torch.uint8).numpy()
                writer.write(overlay(rgb, labels.numpy(), colours))
            else:
                labels = upsample_logits(refined.float(), ctx.frames.size)[0].argmax(0).cpu()
                path = ctx.out_dir / f"{frame.index:06d}.png"
                write_index_png(path, labels.numpy().astype(np.uint8))
                record["mask"] = str(path)
            counts = torch.bincount(labels.flatten(), minlength=spec.num_classes).double()
            fractions = (counts / max(1.0, float(counts.sum()))).tolist()
            record["class_fractions"] = {
                name: round(v, 6) for name, v in zip(names, fractions, strict=True)
            }
            yield record
    finally:
        if writer is not None:
            writer.close()
    where = {"video": str(ctx.video_out)} if writer is not None else {"masks": str(ctx.out_dir)}
    yield {"frames": steps, **where}
