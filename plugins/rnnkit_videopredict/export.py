"""Export of a video-predict model as its step: one frame and the state in, the next frame and
the state out (``FramePredictor.step``), so that the exported model streams and rolls out.

The state is a flat tuple of tensors, one input each, named after the layer
(``state_layer0_h``, ``state_layer0_c`` for ConvLSTM, ``state_m`` for PredRNN's
spatiotemporal memory), each continued by the output ``<name>_out``; zeros before the first
frame. To predict ``N`` frames after a context: feed the context frames one at a time with the
state passed back, then feed each predicted ``next_frame`` (clamped to [0, 1], in the input's
channels) ``N - 1`` more times. copy-last has no state: ``frame -> next_frame``.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from rnnkit_videopredict.models import FramePredictor
from rnnvision_kit import Exportable, ExportContext


def _layer_names(layers: Any, fields: tuple[str, ...], prefix: str = "state_") -> list[str]:
    """Names of a list of per-layer states, each ``h`` or a tuple named by ``fields``."""
    names = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Tensor):
            names.append(f"{prefix}layer{i}_h")
        else:
            names.extend(f"{prefix}layer{i}_{k}" for k in fields[: len(layer)])
    return names


def _names(state: Any, count: int, fields: tuple[str, ...] = ("h", "c")) -> list[str]:
    """``state_<name>`` of each tensor of ``state`` (in ``tree_leaves`` order): layer lists
    of ``h`` or tuples named by ``fields`` (``(h, c)`` for ConvLSTM, ``(h, prev)`` for a
    shifted minGRU layer), and PredRNN's ``(layers, m)``; ``state_<i>`` for another shape."""
    try:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], Tensor):
            names = [*_layer_names(state[0], fields), "state_m"]  # predrnn
        else:
            names = _layer_names(state, fields)
    except TypeError:
        names = []
    if len(names) != count or len(set(names)) != count:
        names = [f"state_{i}" for i in range(count)]
    return names


class FrameStep(nn.Module):
    """``(frame B,C,H,W in [0, 1], *state) -> (next_frame B,out,H,W, *state_out)``."""

    def __init__(self, model: FramePredictor, spec: pytree.TreeSpec | None) -> None:
        super().__init__()
        self.model, self.spec = model, spec

    def forward(self, frame: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        before = None if self.spec is None else pytree.tree_unflatten(list(state), self.spec)
        y, after = self.model.step(frame, before)
        leaves = [] if self.spec is None else pytree.tree_leaves(after)
        return (y, *leaves)


def state_layout(
    model: FramePredictor, frame: tuple[int, ...]
) -> tuple[pytree.TreeSpec | None, list[str], list[tuple[int, ...]]]:
    """The structure of ``model``'s state, its tensors' names and shapes (without the batch),
    from one step on a black frame; None and no names for a model without state."""
    with torch.no_grad():
        _, state = model.step(torch.zeros(1, *frame), None)
    if state is None:
        return None, [], []
    leaves, spec = pytree.tree_flatten(state)
    names = _names(state, len(leaves), model.state_fields)
    return spec, names, [tuple(leaf.shape[1:]) for leaf in leaves]


def export_model(ctx: ExportContext) -> Exportable:
    """The step model (frame + state -> next frame + state), with a dynamic batch axis."""
    model = cast(FramePredictor, ctx.model)
    spec = ctx.spec
    frame = (spec.channels, spec.height, spec.width)
    tree, names, shapes = state_layout(model, frame)
    outs = [f"{name}_out" for name in names]

    def sample(n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        frames = torch.rand(n, *frame, generator=generator)
        state = [  # non-zero, as mid-video
            torch.rand(n, *shape, generator=generator) * 1.8 - 0.9 for shape in shapes
        ]
        return (frames, *state)

    axes = {name: {0: "batch"} for name in ["frame", "next_frame", *names, *outs]}
    layout = ", ".join(
        f"{name}: batch, {', '.join(map(str, shape))}"
        for name, shape in zip(names, shapes, strict=True)
    )
    kind = "grey" if spec.channels == 1 else "RGB"
    out_kind = "grey" if model.out_channels == 1 else "RGB"
    context, horizon = getattr(spec, "context", None), getattr(spec, "horizon", None)
    return Exportable(
        module=FrameStep(model, tree),
        inputs=("frame", *names),
        outputs=("next_frame", *outs),
        sample=sample,
        dynamic_axes=axes,
        states=dict(zip(names, outs, strict=True)),
        vary="batch",
        info={
            "mode": "frame-step",
            "frames_in": "one frame per call",
            "frames_out": "the predicted next frame",
            "context": context,
            "horizon": horizon,
            "step": (
                f"frame: B,{spec.channels},{spec.height},{spec.width} float32 {kind} in [0, 1] "
                + (
                    "and the state tensors (zeros before the first frame) "
                    if names
                    else "(no state) "
                )
                + f"-> next_frame: B,{model.out_channels},{spec.height},{spec.width} {out_kind}, "
                "the prediction of the frame that follows (unclamped: clamp to [0, 1])"
                + (", and the state_*_out tensors to pass with the next frame" if names else "")
                + f"; read the {context} context frames one per call, then feed each clamped "
                "next_frame back (in the input's channels) to roll out further"
            ),
            "state_layout": layout or "none",
        },
    )
