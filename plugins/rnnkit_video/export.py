"""Export of the video-action model, built on its per-step API (``rnnkit_video.model``).

A model that streams (causal layers, unidirectional, ``last`` pooling) is exported as a chunk
step: ``frames B,T,3,H,W`` (any ``T >= 1`` new frames) and the state in, the logits after each
frame and the next state out; fed frame after frame with the state passed back, it gives what
``rnnkit stream`` gives. The state is one input per tensor of the head's ``state_spec()``,
``state_<name>`` (e.g. ``state_layer0_h``), continued by the output ``state_<name>_out``. Another model (bidirectional, ``mean``/``attention`` pooling, the
``mean`` head) is exported as a whole clip with a dynamic time axis: ``frames -> logits B,K``.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from rnnkit_video.model import ClipClassifier
from rnnvision_kit import Exportable, ExportContext, VideoSpec


def _features(model: ClipClassifier, frames: torch.Tensor, frame: tuple[int, ...]) -> torch.Tensor:
    """``encode_frame`` on every frame of ``frames B,T,C,H,W``: ``B,T,F``. The frames are
    flattened with the frame's own size written out, so that the exporter knows ``C,H,W``
    (a pooling layer needs them) while ``B`` and ``T`` stay dynamic."""
    features = model.encode_frame(frames.reshape(-1, *frame))
    return features.reshape(frames.shape[0], frames.shape[1], -1)


class ChunkStep(nn.Module):
    """``(frames B,T,C,H,W in [0, 1], *state) -> (logits B,T,K, *state_out)``: one encoder call
    per frame (``encode_frame``) and the head's ``scan`` over the chunk."""

    def __init__(self, model: ClipClassifier, frame: tuple[int, ...]) -> None:
        super().__init__()
        self.model, self.frame = model, frame

    def forward(self, frames: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, after = self.model.scan(_features(self.model, frames, self.frame), state)
        return (logits, *after)


class WholeClip(nn.Module):
    """``frames B,T,C,H,W in [0, 1] -> (logits B,K,)``: the model's forward (``encode_frame``
    per frame, then the head over the clip)."""

    def __init__(self, model: ClipClassifier, frame: tuple[int, ...]) -> None:
        super().__init__()
        self.model, self.frame = model, frame

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.model.head(_features(self.model, frames, self.frame)),)


def frame_by_frame(model: ClipClassifier, frames: torch.Tensor, *state: torch.Tensor) -> tuple:
    """The reference: ``encode_frame`` and ``step`` one frame at a time, as ``rnnkit stream``
    runs the model."""
    logits: list[torch.Tensor] = []
    carried = tuple(state)
    for t in range(frames.shape[1]):
        step_logits, carried = model.step(model.encode_frame(frames[:, t]), carried)
        logits.append(step_logits)
    return (torch.stack(logits, 1), *carried)


def _buffer(model: nn.Module, name: str) -> list[float]:
    return [float(v) for v in getattr(model, name).flatten()]


def export_model(ctx: ExportContext) -> Exportable:
    """A chunk step (frames + state -> logits after each frame + state) for a model that
    streams, else the whole clip. ``torch.export`` unrolls ``nn.GRU``/``LSTM`` over time, so
    an exported program has a fixed time axis: one frame per call (stream) or the training
    clip's length (clip); its batch axis is dynamic."""
    # this task's model and the spec of its video data
    model, spec = cast(ClipClassifier, ctx.model), cast(VideoSpec, ctx.spec)
    frame = (spec.channels, spec.height, spec.width)
    stride = max(1, int(spec.stride or 1))
    program = ctx.format == "exported-program"
    blocker = getattr(model, "stream_blocker", "it has no per-step API")
    stream = blocker is None
    fixed_time = (1 if stream else spec.num_frames) if program else None
    read = (
        f"read one frame in {stride} of the video (the spacing the model was trained on)"
        if stride > 1
        else "read every frame of the video"
    )
    info = {
        "mode": "stream" if stream else "clip",
        "preprocessing": {"mean": _buffer(model, "mean"), "std": _buffer(model, "std")},
        "stride": stride,
        "fps": spec.fps,
        # the rate of the frames the model saw: one in stride of the videos' frames
        "model_fps": round(spec.fps / stride, 6) if spec.fps else None,
        "clip_frames": spec.num_frames,
    }
    if spec.fps is None:
        info["fps_note"] = (
            "the training videos had no single frame rate (the data spec recorded none); "
            f"the model saw one frame in {stride} of each video at its own rate"
        )

    def batch(n: int) -> int:  # the varied size is the time axis, or the batch when T is fixed
        if fixed_time is not None:
            return n
        return 2 if n % 2 == 0 or n > 3 else 1  # traced with batch 2, checked with 1 and 2

    def frames_of(n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(batch(n), fixed_time or n, *frame, generator=generator)

    frames_axes = {0: "batch"} if fixed_time else {0: "batch", 1: "time"}
    vary = "batch" if fixed_time else "time"
    if stream:
        specs = model.head.state_spec()
        names = [f"state_{spec.name}" for spec in specs]
        outs = [f"{name}_out" for name in names]

        def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
            frames = frames_of(n, generator)
            state = [  # non-zero, as mid-video
                torch.rand(t.shape, generator=generator) * 1.8 - 0.9
                if t.dtype.is_floating_point
                else t + n
                for t in model.initial_state(frames.shape[0])
            ]
            return (frames, *state)

        chunk = "one new frame (T = 1)" if fixed_time else "T >= 1 new frames in order"
        layout = ", ".join(
            f"{name}: batch, {', '.join(map(str, spec.shape))}"
            for name, spec in zip(names, specs, strict=True)
        )
        return Exportable(
            module=ChunkStep(model, frame),
            inputs=("frames", *names),
            outputs=("logits", *outs),
            sample=sample,
            dynamic_axes={
                "frames": frames_axes,
                "logits": frames_axes,
                **{name: {0: "batch"} for name in names + outs},
            },
            states=dict(zip(names, outs, strict=True)),
            reference=lambda frames, *state: frame_by_frame(model, frames, *state),
            info={
                **info,
                "step": (
                    f"frames: B,T,3,H,W float32 RGB in [0, 1] at frame_size, {chunk}, and "
                    "the state tensors (zeros before the first frame) -> logits B,T,K, the "
                    "logits after each of those frames (logits[:, -1] is the prediction for "
                    "the video so far), and the state_*_out tensors, the state to pass with "
                    f"the next frames; {read}"
                ),
                "state_layout": layout,
            },
            vary=vary,
        )
    clip = f"{fixed_time} frames" if fixed_time else "any number of frames"
    return Exportable(
        module=WholeClip(model, frame),
        inputs=("frames",),
        outputs=("logits",),
        sample=lambda n, generator: (frames_of(n, generator),),
        dynamic_axes={"frames": frames_axes, "logits": {0: "batch"}},
        reference=lambda frames: (model(frames),),
        info={
            **info,
            "why_not_stream": f"this model cannot stream: {blocker}",
            "step": (
                f"frames: B,T,3,H,W float32 RGB in [0, 1] at frame_size, a whole clip of {clip} "
                f"(trained on {spec.num_frames}; {read}) -> logits B,K; no state"
            ),
        },
        vary=vary,
    )
