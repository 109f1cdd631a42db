"""Export of the seg-refine model: frames (and, for a unidirectional refinement, its state) in,
refined logits out, with a dynamic time axis.

The refinement's ConvGRU/ConvLSTM runs a Python loop over the frames, which a tracing exporter
unrolls to the example's length: the exported model would then only take clips of that length
(the dynamic-length freeze). For ONNX the recurrence therefore runs in TorchScript functions
(:func:`convgru_layer`, :func:`convlstm_layer`) that the TorchScript-based exporter writes as an
ONNX ``Loop`` over the time axis, on the model's own weights; everything else (segmenter,
down-sampling, the gated combination) is the model's code. ``rnnkit export`` checks the result
against the model itself: frame by frame through its per-step API (``encode_frame``, ``step``,
what ``rnnkit stream`` runs) for a unidirectional refinement, its ``forward`` otherwise.

- unidirectional video refinement (``model.bidirectional=false``): ``frames B,T,3,H,W`` and one
  state per layer (GRU ``state<i>``; LSTM ``state<i>_h`` and ``state<i>_c``, ``B,hidden,h,w`` at
  the refinement's resolution) -> ``logits B,T,K,H,W`` and the states after the last frame;
- bidirectional refinement, image mode, ``refine=none``: ``frames -> logits``, a whole clip.

An exported program (``torch.export``) has no TorchScript loop: it runs the model's own code with
a fixed time axis, one frame per call (a refinement that streams) or ``clip_len`` frames.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit_segrefine.model import SegRefiner, TemporalRefiner
from rnnvision_kit import Exportable, ExportContext, SegmentationSpec
from rnnvision_kit.nn import ConvGRUCell, ConvLSTMCell


def _time_major(flat: Tensor, like: Tensor) -> Tensor:
    """``B*T,C,h,w`` (batch-major, as the frames were flattened) -> ``T,B,C,h,w``; the sizes
    come from ``like`` (``B,T,...``) at run time, so the time axis stays dynamic."""
    return flat.reshape(
        like.size(0), like.size(1), flat.size(1), flat.size(2), flat.size(3)
    ).transpose(0, 1)


def convgru_layer(
    xg: Tensor,
    like: Tensor,
    h0: Tensor | None,
    gate_weight: Tensor,
    candidate_weight: Tensor,
    padding: list[int],
    dilation: list[int],
    reverse: bool,
) -> tuple[Tensor, Tensor]:
    """One ConvGRU direction over a clip, as ``ConvGRUCell.step`` computes it.

    ``xg`` is the input convolution of all frames (``B*T,3*hid,h,w``, batch-major), ``h0`` the
    initial state ``B,hid,h,w`` (None: zeros). Returns the outputs ``B*T,hid,h,w`` (same order)
    and the last state."""
    x = _time_major(xg, like)
    hid = candidate_weight.size(0)
    steps = x.size(0)
    if h0 is None:
        h = torch.zeros(x.size(1), hid, x.size(3), x.size(4), dtype=x.dtype, device=x.device)
    else:
        h = h0
    outputs: list[Tensor] = []
    for i in range(steps):
        t = steps - 1 - i if reverse else i
        xt = x[t]
        rz = torch.sigmoid(xt[:, : 2 * hid] + F.conv2d(h, gate_weight, None, 1, padding, dilation))
        r = rz[:, :hid]
        z = rz[:, hid:]
        n = torch.tanh(
            xt[:, 2 * hid :] + F.conv2d(r * h, candidate_weight, None, 1, padding, dilation)
        )
        h = h + z * (n - h)
        outputs.append(h)
    out = torch.stack(outputs, 0)
    if reverse:
        out = out.flip([0])
    out = out.transpose(0, 1)
    return out.reshape(-1, out.size(2), out.size(3), out.size(4)), h


def convlstm_layer(
    xg: Tensor,
    like: Tensor,
    h0: Tensor | None,
    c0: Tensor | None,
    hidden_weight: Tensor,
    padding: list[int],
    dilation: list[int],
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """One ConvLSTM direction over a clip, as ``ConvLSTMCell.step`` computes it; like
    :func:`convgru_layer`, with the cell state ``c`` besides ``h``."""
    x = _time_major(xg, like)
    hid = hidden_weight.size(1)
    steps = x.size(0)
    zeros = torch.zeros(x.size(1), hid, x.size(3), x.size(4), dtype=x.dtype, device=x.device)
    h = zeros if h0 is None else h0
    c = zeros if c0 is None else c0
    outputs: list[Tensor] = []
    for i in range(steps):
        t = steps - 1 - i if reverse else i
        gates = x[t] + F.conv2d(h, hidden_weight, None, 1, padding, dilation)
        ifo = torch.sigmoid(gates[:, : 3 * hid])
        g = torch.tanh(gates[:, 3 * hid :])
        c = ifo[:, :hid] * g + ifo[:, hid : 2 * hid] * c
        h = ifo[:, 2 * hid :] * torch.tanh(c)
        outputs.append(h)
    out = torch.stack(outputs, 0)
    if reverse:
        out = out.flip([0])
    out = out.transpose(0, 1)
    return out.reshape(-1, out.size(2), out.size(3), out.size(4)), h, c


_SCRIPTED: dict[str, Any] = {}


def scripted(function: Any) -> Any:
    """``torch.jit.script(function)``, compiled once (its deprecation warning silenced: the
    TorchScript-based ONNX exporter is what writes the loop)."""
    name = function.__name__
    if name not in _SCRIPTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _SCRIPTED[name] = torch.jit.script(function)
    return _SCRIPTED[name]


def _conv_args(conv: nn.Conv2d) -> tuple[list[int], list[int]]:
    return [int(p) for p in conv.padding], [int(d) for d in conv.dilation]


def state_names(refiner: TemporalRefiner) -> list[str]:
    """Input names of a unidirectional refinement's states, layer by layer."""
    lstm = isinstance(refiner.rnn.cells[0], ConvLSTMCell)
    names = []
    for layer in range(refiner.rnn.num_layers):
        names += [f"state{layer}_h", f"state{layer}_c"] if lstm else [f"state{layer}"]
    return names


class SegClip(nn.Module):
    """``(frames B,T,3,H,W in [0, 1], *states) -> (refined logits B,T,K,H,W, *states_out)``,
    the recurrence in TorchScript loops (see the module docstring). ``states`` only for a
    unidirectional video refinement; otherwise a bidirectional one starts from zeros."""

    def __init__(self, model: SegRefiner, frame: tuple[int, int, int], carry: bool) -> None:
        super().__init__()
        self.model, self.frame, self.carry = model, frame, carry

    def forward(self, frames: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        refiner = model.refiner
        flat = frames.reshape(-1, *self.frame)
        x = (flat - model.mean) / model.std
        logits = model.segmenter(x)
        carried: list[Tensor] = []
        if refiner is None:
            refined = logits
        elif refiner.mode == "image":
            refined = refiner._iterate(x, logits)
        else:
            probs = logits.softmax(1)
            hidden = refiner._down(torch.cat([probs, x], 1))
            hidden, carried = self._recur(hidden, frames, list(states))
            refined = refiner._combine(hidden, logits, probs)
        refined = refined.reshape(frames.shape[0], frames.shape[1], *refined.shape[1:])
        return (refined, *carried)

    def _recur(self, x: Tensor, like: Tensor, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        refiner = self.model.refiner
        assert refiner is not None  # a video refinement
        rnn = refiner.rnn
        d = rnn.num_directions
        carried: list[Tensor] = []
        for layer in range(rnn.num_layers):
            outs = []
            for direction in range(d):
                cell = cast("ConvGRUCell | ConvLSTMCell", rnn.cells[layer * d + direction])
                xg = cell.input_conv(x)
                reverse = direction == 1
                if isinstance(cell, ConvGRUCell):
                    h0 = states.pop(0) if self.carry else None
                    padding, dilation = _conv_args(cell.gate_conv)
                    out, h = scripted(convgru_layer)(
                        xg,
                        like,
                        h0,
                        cell.gate_conv.weight,
                        cell.candidate_conv.weight,
                        padding,
                        dilation,
                        reverse,
                    )
                    carried.append(h)
                else:
                    h0 = states.pop(0) if self.carry else None
                    c0 = states.pop(0) if self.carry else None
                    padding, dilation = _conv_args(cell.hidden_conv)
                    out, h, c = scripted(convlstm_layer)(
                        xg, like, h0, c0, cell.hidden_conv.weight, padding, dilation, reverse
                    )
                    carried += [h, c]
                outs.append(out)
            x = outs[0] if d == 1 else torch.cat(outs, 1)
        return x, carried if self.carry else []


class SegStep(nn.Module):
    """The model's own per-step API on ``frames B,1,3,H,W`` (one frame per call): for an
    exported program, which cannot hold a TorchScript loop."""

    def __init__(self, model: SegRefiner, lstm: bool) -> None:
        super().__init__()
        self.model, self.lstm = model, lstm

    def forward(self, frames: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        refined, state = self.model.step(
            self.model.encode_frame(frames[:, 0]), _nested(list(states), self.lstm)
        )
        return (refined.unsqueeze(1), *_flat(state))


class SegWhole(nn.Module):
    """The model's own forward (refined logits) on a clip of a fixed length."""

    def __init__(self, model: SegRefiner) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor) -> tuple[Tensor]:
        return (self.model(frames)[0],)


def _nested(states: list[Tensor], lstm: bool) -> list[Any]:
    """Flat state tensors -> the per-layer form ``step`` takes (a tensor, or ``(h, c)``)."""
    if lstm:
        return [(states[i], states[i + 1]) for i in range(0, len(states), 2)]
    return list(states)


def _flat(state: list[Any]) -> list[Tensor]:
    return [t for part in state for t in (part if isinstance(part, tuple) else (part,))]


def frame_by_frame(model: SegRefiner, frames: Tensor, states: list[Tensor], lstm: bool) -> tuple:
    """The reference of a refinement that streams: ``encode_frame`` and ``step`` per frame,
    as ``rnnkit stream`` runs the model."""
    state: list[Any] = _nested(states, lstm)
    refined: list[Tensor] = []
    for t in range(frames.shape[1]):
        step, state = model.step(model.encode_frame(frames[:, t]), state)
        refined.append(step)
    return (torch.stack(refined, 1), *_flat(state))


def _buffer(model: nn.Module, name: str) -> list[float]:
    return [float(v) for v in getattr(model, name).flatten()]


def export_model(ctx: ExportContext) -> Exportable:
    """What ``rnnkit export`` writes for a seg-refine run (see the module docstring)."""
    # this task's model and the spec of its segmentation data
    model, spec = cast(SegRefiner, ctx.model), cast(SegmentationSpec, ctx.spec)
    model.tta = "none"  # the exported graph is the plain model (TTA is an evaluation choice)
    frame = (spec.channels, spec.height, spec.width)
    refiner = model.refiner
    blocker = getattr(model, "stream_blocker", "it has no per-step API")
    video = refiner is not None and refiner.mode == "video"
    carry = video and blocker is None  # a unidirectional video refinement: explicit states
    lstm = video and refiner is not None and isinstance(refiner.rnn.cells[0], ConvLSTMCell)
    names = state_names(refiner) if carry and refiner is not None else []
    program = ctx.format == "exported-program"
    stream = blocker is None
    fixed_time = (1 if stream else spec.clip_len) if program else None
    zero_state = _flat(model.initial_state(torch.zeros(1, spec.num_classes + 3, *frame[1:])))

    def batch(n: int) -> int:
        if fixed_time is not None:
            return n
        return 2 if n % 2 == 0 or n > 3 else 1  # traced with batch 2, checked with 1 and 2

    def sample(n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        b = batch(n)
        frames = torch.rand(b, fixed_time or n, *frame, generator=generator)
        if not carry:
            return (frames,)
        shapes = [(b, *z.shape[1:]) for z in zero_state]
        return (frames, *(torch.randn(s, generator=generator) * 0.5 for s in shapes))

    if program:
        module: nn.Module = SegStep(model, lstm) if stream else SegWhole(model)
    else:
        module = SegClip(model, frame, carry)
    axes = {0: "batch"} if fixed_time else {0: "batch", 1: "time"}
    dynamic = {"frames": axes, "logits": axes}
    for name in names:
        dynamic[name] = dynamic[f"{name}_out"] = {0: "batch"}
    reference: Callable[..., tuple[Tensor, ...]]
    if stream:  # frame by frame through the per-step API, as rnnkit stream runs it

        def stepped(frames: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
            return frame_by_frame(model, frames, list(states), lstm)

        reference = stepped
    else:

        def whole(frames: Tensor) -> tuple[Tensor, ...]:
            return (model(frames)[0],)

        reference = whole

    h, w = frame[1:]
    if stream:
        mode = "stream"
        chunk = "one new frame (T = 1)" if fixed_time else "T >= 1 new frames in order"
        step = (
            f"frames: B,T,3,H,W float32 RGB in [0, 1] at frame_size, {chunk}"
            + (", and the states (zeros before the first frame)" if names else "")
            + " -> logits B,T,K,H,W, the refined logits of each frame (argmax over K: the mask)"
            + (", and the states to pass with the next frames" if names else "; no state")
        )
    else:
        mode = "clip"
        clip = f"{fixed_time} frames" if fixed_time else "any number of frames"
        step = (
            f"frames: B,T,3,H,W float32 RGB in [0, 1] at frame_size, a whole clip of {clip} "
            "-> logits B,T,K,H,W (argmax over K: the masks); the refinement reads the clip "
            "forwards and backwards, so it does not stream; no state"
        )
    info: dict[str, Any] = {
        "mode": mode,
        "step": step,
        "preprocessing": {"mean": _buffer(model, "mean"), "std": _buffer(model, "std")},
        "clip_frames": spec.clip_len,
        "ignore_index": spec.ignore_index,
        "mask_size": [h, w],
    }
    if not stream:
        info["why_not_stream"] = f"this model cannot stream: {blocker}"
    if names:
        info["state_layout"] = (
            "batch, hidden_channels, ceil(H / refine_stride), ceil(W / refine_stride) per layer"
            + ("; for a ConvLSTM the hidden state h, then the cell state c" if lstm else "")
        )
    return Exportable(
        module=module,
        inputs=("frames", *names),
        outputs=("logits", *(f"{n}_out" for n in names)),
        sample=sample,
        dynamic_axes=dynamic,
        states={n: f"{n}_out" for n in names},
        vary="batch" if fixed_time else "time",
        reference=reference,
        info=info,
    )
