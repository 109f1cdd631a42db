"""``rnnkit predict`` for video-action: top-k labels per video, and a timeline for long videos.

A video no longer than a clip gets the average of ``data.test_clips`` uniform clips (as many
TSN clips at offsets within the segments for a model trained on segments). A longer one is read as clips in a sliding window (hop:
half a clip span); each window gets its top-k, the video the average of the windows' logits, and a
PNG plot in ``ctx.out_dir`` (``--out``, else ``RUN_DIR/predict``) shows the class scores over time
(a plot that cannot be written is a warning line; the record has no ``timeline_png`` then).

A model that can stream also gets ``stream``: the answer ``rnnkit stream`` gives for the file, its
recurrent state run over every ``stride``-th frame of the whole video and read after the last one
(one more pass over the frames, through the task's own ``stream``). The two answers differ by
design: clips (or windows) see ``num_frames`` frames each and are averaged; the streamed state
has seen the whole video, and weighs its end most.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from rnnkit_video.config import VideoActionConfig
from rnnvision_kit import (
    ConfigError,
    PredictContext,
    StreamContext,
    StreamFrame,
    VideoSpec,
    reason,
    warn,
)
from rnnvision_kit.classification import top_k as top_labels
from rnnvision_kit.data import (
    FrameSource,
    FrameStream,
    VideoInfo,
    apply_short_policy,
    as_trained,
    clip_span,
    segment_clip_indices,
    uniform_clip_indices,
)

WINDOWS_PER_READ = 32  # windows decoded and classified together (bounds memory on long videos)
PLOTTED_CLASSES = 8


def _logits(
    model: nn.Module,
    source: FrameSource,
    info: VideoInfo,
    clips: list[list[int]],
    config: VideoActionConfig,
    spec: VideoSpec,
    device: torch.device,
) -> torch.Tensor:
    """Logits ``(len(clips), K)`` of clips given as frame index lists."""
    policy = config.data.short_policy
    out = []
    for first in range(0, len(clips), WINDOWS_PER_READ):
        chunk = clips[first : first + WINDOWS_PER_READ]
        flat = [i for clip in chunk for i in apply_short_policy(clip, info.num_frames, policy)]
        frames = source.read(flat, info, size=(spec.height, spec.width), resize=spec.resize)
        frames = frames.to(device, torch.float32).div_(255.0)
        out.append(model(frames.view(len(chunk), spec.num_frames, *frames.shape[1:])).float().cpu())
    return torch.cat(out)


def window_starts(num_frames: int, span: int, hop: int) -> list[int]:
    """Starts of clips of ``span`` frames every ``hop`` frames; the last one ends at the end."""
    last = num_frames - span
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)
    return starts


def predict(ctx: PredictContext) -> list[dict[str, Any]]:
    """One record per file of ``ctx.files`` (a video file or a folder of frames)."""
    return [predict_video(ctx, Path(file)) for file in ctx.files]


def predict_video(ctx: PredictContext, path: Path) -> dict[str, Any]:
    """One JSON-able record: file, frames, fps, top-k; plus timeline (and its PNG) when long.

    Clip length and stride are the model's (``ctx.spec``); sampling, test clips and the short
    policy are the run's ``data.*`` settings."""
    config = cast(VideoActionConfig, ctx.config)  # a video-action run's
    d, spec, k = config.data, ctx.spec, ctx.top_k
    assert isinstance(spec, VideoSpec)
    source = FrameSource(path)
    info = source.probe()
    n, span = info.num_frames, clip_span(spec.num_frames, spec.stride)
    record: dict[str, Any] = {
        "file": str(path),
        "frames": n,
        "fps": round(info.fps, 3),
        "duration_s": round(info.duration, 3),
    }

    def logits_of(clips: list[list[int]]) -> torch.Tensor:
        return _logits(ctx.model, source, info, clips, config, spec, ctx.device)

    if n <= span:
        if d.sampling == "segment":
            clips = segment_clip_indices(n, spec.num_frames, d.test_clips)
        else:
            clips = uniform_clip_indices(n, spec.num_frames, spec.stride, d.test_clips)
        record["top"] = top_labels(logits_of(clips).mean(0), spec.class_names, k)
        return _with_stream(record, ctx, path)
    starts = window_starts(n, span, max(1, span // 2))
    clips = [[s + i * spec.stride for i in range(spec.num_frames)] for s in starts]
    logits = logits_of(clips)
    record["top"] = top_labels(logits.mean(0), spec.class_names, k)
    _with_stream(record, ctx, path)
    record["timeline"] = [
        {
            "start_s": round(s / info.fps, 3),
            "end_s": round((s + span) / info.fps, 3),
            "top": top_labels(row, spec.class_names, k),
        }
        for s, row in zip(starts, logits, strict=True)
    ]
    png = ctx.output_path(path, "_timeline.png")
    centres = [(s + span / 2) / info.fps for s in starts]
    try:
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        title = png.name.removesuffix("_timeline.png")  # the name it is told apart by
        plot_timeline(centres, torch.softmax(logits, dim=-1), spec.class_names, png, title)
    except OSError as error:  # a read-only run folder: the prediction still counts
        warn(
            f"{ctx.out_dir}: timeline plot of {path.name} not written ({reason(error)}); --out DIR"
        )
        return record
    record["timeline_png"] = str(png)
    return record


def _with_stream(record: dict[str, Any], ctx: PredictContext, path: Path) -> dict[str, Any]:
    """``record`` with ``stream`` (:func:`streamed`) when the model can stream."""
    answer = streamed(ctx, path)
    if answer is not None:
        record["stream"] = answer
    return record


def streamed(ctx: PredictContext, path: Path) -> dict[str, Any] | None:
    """What ``rnnkit stream`` answers for ``path`` at its end: ``{"top", "time_s", "steps",
    "frames_read"}`` (and ``ended`` when the file stalled or broke first), the top-k of the recurrent state after the last frame the model read
    (every ``spec.stride``-th, fitted to its size as ``rnnkit stream`` fits them), from this
    task's ``stream``; None when the model cannot stream (a bidirectional head, or pooling
    other than ``last``)."""
    from rnnkit_video.stream import stream, streamable

    try:
        streamable(ctx.model)
    except ConfigError:
        return None
    spec = ctx.spec
    frames = FrameStream(  # as rnnkit stream reads a file (rnnvision_kit.runner.stream)
        str(path),
        (spec.height, spec.width),
        record=StreamFrame,
        device=ctx.device,
        **as_trained(spec),
    )
    sctx = StreamContext(ctx.model, frames, ctx.config, spec, ctx.device, 1, ctx.top_k, ctx.out_dir)
    last: dict[str, Any] = {}
    try:
        for step in stream(sctx):  # a record per frame read (every=1), then the closing one
            last.update(step)
    finally:
        frames.close()
    if "top" not in last:  # no frame read
        return None
    answer = {key: last[key] for key in ("top", "time_s", "steps", "frames_read")}
    if frames.ended not in (None, "end"):  # a stall or read error cut it short
        answer["ended"] = frames.ended
    return answer


def plot_timeline(
    times: list[float],
    scores: torch.Tensor,
    class_names: Sequence[str],
    path: Path,
    title: str,
) -> None:
    """Class probabilities over time: the classes that score highest anywhere, one line each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak = scores.max(dim=0).values
    shown = peak.argsort(descending=True)[: min(PLOTTED_CLASSES, len(class_names))].tolist()
    fig, ax = plt.subplots(figsize=(9, 4))
    for k in shown:
        ax.plot(times, scores[:, k].tolist(), marker="o", markersize=3, label=class_names[k])
    ax.set(xlabel="time (s, window centre)", ylabel="probability", ylim=(0, 1.02), title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
