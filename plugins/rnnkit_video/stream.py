"""``rnnkit stream`` for video-action: class probabilities after each new frame, with a carried
recurrent state (one encoder call and one head step per frame), and a label timeline.

The model reads every ``spec.stride``-th frame of the source, the spacing it was trained on
(``rnnkit stream`` passes the others over: they count as read, not processed), frames fitted
to its size as it was trained (``spec.resize``: crop, pad or stretch);
after each frame it read, the logits equal the offline model's on all the frames read so far
(a unidirectional head with ``last`` pooling; others cannot stream). A record every
``ctx.every`` frames read; at the end one record with the timeline: the top label's segments.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from rnnvision_kit import ConfigError, StreamContext
from rnnvision_kit.classification import top_k as top_labels

if TYPE_CHECKING:
    from rnnkit_video.model import ClipClassifier


def streamable(model: Any) -> None:
    """Raise a one-line ConfigError when ``model`` cannot run frame by frame."""
    blocker = getattr(model, "stream_blocker", "it has no per-step API (encode_frame, step)")
    if blocker is not None:
        raise ConfigError(f"this run's model cannot stream: {blocker}")


def stream(ctx: StreamContext) -> Iterator[dict[str, Any]]:
    """Records ``{"frame", "time_s", "top"}`` every ``ctx.every`` frames the model reads, then
    ``{"timeline": [{"label", "start_s", "end_s", "steps"}, ...], "steps": n, "frames_read": m}``
    (``steps``: frames processed; ``frames_read``: frames taken from the source)."""
    model, spec = cast("ClipClassifier", ctx.model), ctx.spec
    streamable(model)
    if ctx.video_out is not None:
        raise ConfigError(
            f"--out {ctx.video_out}: video-action writes records, not a video; "
            "give a .jsonl file or a folder"
        )
    stride = max(1, int(getattr(spec, "stride", 1) or 1))
    names = spec.class_names
    state = None
    steps = 0
    timeline: list[dict[str, Any]] = []
    for frame in ctx.frames:
        if frame.index % stride:
            continue
        logits, state = model.step(model.encode_frame(frame.image.unsqueeze(0)), state)
        steps += 1
        label = names[int(logits[0].argmax())]
        if timeline and timeline[-1]["label"] == label:
            timeline[-1]["end_s"] = frame.time_s
            timeline[-1]["steps"] += 1
        else:
            timeline.append(
                {"label": label, "start_s": frame.time_s, "end_s": frame.time_s, "steps": 1}
            )
        if steps % ctx.every == 0:
            yield {
                "frame": frame.index,
                "time_s": round(frame.time_s, 3),
                "top": top_labels(logits[0], names, ctx.top_k),
            }
    for segment in timeline:
        segment["start_s"] = round(segment["start_s"], 3)
        segment["end_s"] = round(segment["end_s"], 3)
    yield {
        "timeline": timeline,
        "steps": steps,
        "frames_read": int(getattr(ctx.frames, "read", steps)),
    }
