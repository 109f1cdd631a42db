"""Frame predictors: frames are cut into ``patch`` x ``patch`` patches (space to depth), run
through a stack of convolutional recurrent layers, and a 1x1 convolution decodes the next frame.

Every model has ``step(frame, state) -> (next frame, state)``; :meth:`FramePredictor.forward`
reads the context and rolls out on its own predictions for any horizon (``rollout``). Models:
``copy-last`` (repeats the last context frame), ``convlstm`` (Shi et al. 2015), ``convgru``,
``predrnn`` (ST-LSTM with the zig-zag spatiotemporal memory, Wang et al. 2017) and ``mingru``
(a convolutional minGRU: gates from the input only, so that over given inputs the recurrence
``h_t = (1 - z_t) h_{t-1} + z_t h~_t`` is one parallel linear scan over time).
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision_kit import ConfigError
from rnnvision_kit.nn import ConvGRUCell, ConvLSTMCell, linear_scan

GREY = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights


def convert_channels(x: Tensor, channels: int) -> Tensor:
    """``B,C,H,W`` (or ``B,T,C,H,W``) frames as ``channels`` channels: grey repeated to RGB,
    RGB to grey by luma; unchanged when they match."""
    have = x.shape[-3]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    if have == 3 and channels == 1:
        weights = x.new_tensor(GREY).view(3, 1, 1)
        return (x * weights).sum(-3, keepdim=True)
    raise ConfigError(f"model.out_channels: cannot turn {have} channels into {channels}")


class FramePredictor(nn.Module):
    """Patches in, ``step`` per frame, next frame out; ``forward`` runs context then rollout."""

    def __init__(self, in_channels: int, out_channels: int, patch: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.patch = in_channels, out_channels, patch

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """The next frame (``B,out,H,W``, unclamped) after ``frame`` (``B,in,H,W``)."""
        raise NotImplementedError

    def feedback(self, prediction: Tensor) -> Tensor:
        """A prediction as the next input frame: clamped to [0, 1], in the input's channels."""
        return convert_channels(prediction.clamp(0, 1), self.in_channels)

    def forward(self, frames: Tensor, context: int, horizon: int, teacher: bool = False) -> Tensor:
        """Predictions of frames ``1 .. context + horizon - 1`` (``B,T',out,H,W``) from
        ``frames`` (``B,T,in,H,W``): the context frames are read; after them each step reads
        the model's own previous prediction (``teacher``: the true frame, which ``frames``
        must then hold)."""
        check_lengths(frames, context, horizon, teacher)
        outputs: list[Tensor] = []
        state: Any = None
        for t in range(context + horizon - 1):
            x = frames[:, t] if t < context or teacher else self.feedback(outputs[-1])
            y, state = self.step(x, state)
            outputs.append(y)
        return torch.stack(outputs, 1)

    def patches(self, frame: Tensor) -> Tensor:
        return F.pixel_unshuffle(frame, self.patch) if self.patch > 1 else frame

    def unpatch(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(x, self.patch) if self.patch > 1 else x


def check_lengths(frames: Tensor, context: int, horizon: int, teacher: bool) -> None:
    need = context + horizon - 1 if teacher else context
    if frames.shape[1] < need or context < 1 or horizon < 1:
        raise ConfigError(
            f"data.context: {frames.shape[1]} frames given, {need} needed "
            f"(context {context}, horizon {horizon}{', teacher-forced' if teacher else ''})"
        )


class CopyLast(FramePredictor):
    """The baseline: every predicted frame is the last frame read. Its one parameter is a 0
    that multiplies nothing useful, so that the runner can "train" it (the loss needs a graph)."""

    def __init__(self, in_channels: int, out_channels: int, patch: int = 1) -> None:
        super().__init__(in_channels, out_channels, patch)
        self.zero = nn.Parameter(torch.zeros(()), requires_grad=True)

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        return convert_channels(frame, self.out_channels) + self.zero * 0, None


class _Stack(FramePredictor):
    """A stack of ``layers`` cells on the patched frame and a 1x1 decoder of the top state."""

    def __init__(
        self, in_channels: int, out_channels: int, patch: int, hidden: int, layers: int, kernel: int
    ) -> None:
        super().__init__(in_channels, out_channels, patch)
        self.hidden, self.layers = hidden, layers
        self.decode = nn.Conv2d(hidden, out_channels * patch * patch, 1)

    def first_input(self) -> int:
        return self.in_channels * self.patch * self.patch


class ConvLSTMPredictor(_Stack):
    """ConvLSTM (Shi et al. 2015): a stack of ConvLSTM cells."""

    def __init__(self, *args: int) -> None:
        super().__init__(*args)
        hid, kernel = self.hidden, args[-1]
        self.cells = nn.ModuleList(
            ConvLSTMCell(self.first_input() if i == 0 else hid, hid, kernel)
            for i in range(self.layers)
        )

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x, state = self.patches(frame), state or [None] * self.layers
        new = []
        for cell, s in zip(self.cells, state, strict=True):
            h, c = cell(x, s)
            new.append((h, c))
            x = h
        return self.unpatch(self.decode(x)), new


class ConvGRUPredictor(_Stack):
    """A stack of ConvGRU cells."""

    def __init__(self, *args: int) -> None:
        super().__init__(*args)
        hid, kernel = self.hidden, args[-1]
        self.cells = nn.ModuleList(
            ConvGRUCell(self.first_input() if i == 0 else hid, hid, kernel)
            for i in range(self.layers)
        )

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x, state = self.patches(frame), state or [None] * self.layers
        new = []
        for cell, h in zip(self.cells, state, strict=True):
            x = cell(x, h)
            new.append(x)
        return self.unpatch(self.decode(x)), new


class STLSTMCell(nn.Module):
    """PredRNN's spatiotemporal LSTM cell: the temporal memory ``c`` (per layer, through time)
    and the spatiotemporal memory ``m`` (up the stack, then to the bottom at the next step)."""

    def __init__(self, inputs: int, hidden: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.hidden = hidden
        self.conv_x = nn.Conv2d(inputs, 7 * hidden, kernel, padding=pad)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, kernel, padding=pad, bias=False)
        self.conv_m = nn.Conv2d(hidden, 3 * hidden, kernel, padding=pad, bias=False)
        self.conv_o = nn.Conv2d(2 * hidden, hidden, kernel, padding=pad, bias=False)
        self.conv_last = nn.Conv2d(2 * hidden, hidden, 1, bias=False)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ix, fx, gx, ix2, fx2, gx2, ox = self.conv_x(x).split(self.hidden, 1)
        ih, fh, gh, oh = self.conv_h(h).split(self.hidden, 1)
        im, fm, gm = self.conv_m(m).split(self.hidden, 1)
        c = torch.sigmoid(fx + fh + 1.0) * c + torch.sigmoid(ix + ih) * torch.tanh(gx + gh)
        m = torch.sigmoid(fx2 + fm + 1.0) * m + torch.sigmoid(ix2 + im) * torch.tanh(gx2 + gm)
        memory = torch.cat([c, m], 1)
        h = torch.sigmoid(ox + oh + self.conv_o(memory)) * torch.tanh(self.conv_last(memory))
        return h, c, m


class PredRNNPredictor(_Stack):
    """PredRNN (Wang et al. 2017): a stack of ST-LSTM cells with the zig-zag memory ``m``."""

    def __init__(self, *args: int) -> None:
        super().__init__(*args)
        hid, kernel = self.hidden, args[-1]
        self.cells = nn.ModuleList(
            STLSTMCell(self.first_input() if i == 0 else hid, hid, kernel)
            for i in range(self.layers)
        )

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x = self.patches(frame)
        if state is None:
            zero = x.new_zeros(x.shape[0], self.hidden, *x.shape[-2:])
            state = ([(zero, zero)] * self.layers, zero)
        layers, m = state
        new = []
        for cell, (h, c) in zip(self.cells, layers, strict=True):
            h, c, m = cell(x, h, c, m)
            new.append((h, c))
            x = h
        return self.unpatch(self.decode(x)), (new, m)


class ConvMinGRULayer(nn.Module):
    """``z_t, h~_t`` from convolutions of the input alone; ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``
    (a linear scan over time); output ``skip(x_t) + conv(gelu(h_t))``."""

    def __init__(self, inputs: int, hidden: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.hidden = hidden
        self.gates = nn.Conv2d(inputs, 2 * hidden, kernel, padding=pad)
        self.out = nn.Conv2d(hidden, hidden, kernel, padding=pad)
        self.skip: nn.Module = nn.Conv2d(inputs, hidden, 1) if inputs != hidden else nn.Identity()

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``a = 1 - z`` and ``b = z * h~`` of frames ``x`` (``N,C,H,W``)."""
        z, candidate = self.gates(x).split(self.hidden, 1)
        z = torch.sigmoid(z)
        return 1 - z, z * candidate

    def output(self, x: Tensor, h: Tensor) -> Tensor:
        return self.skip(x) + self.out(F.gelu(h))

    def step(self, x: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        a, b = self.coefficients(x)
        h = b if h is None else torch.addcmul(b, a, h)
        return self.output(x, h), h

    def sequence(self, x: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """All steps of ``x`` (``B,T,C,H,W``) at once (one scan); returns outputs and the last
        state."""
        bsz, steps = x.shape[:2]
        flat = x.flatten(0, 1)
        a, b = self.coefficients(flat)
        shape = a.shape[1:]
        hs = linear_scan(
            a.reshape(bsz, steps, -1),
            b.reshape(bsz, steps, -1),
            None if h is None else h.reshape(bsz, -1),
        )
        hs = hs.reshape(bsz * steps, *shape)
        out = self.output(flat, hs)
        return out.view(bsz, steps, *out.shape[1:]), hs.view(bsz, steps, *shape)[:, -1]


class MinGRUPredictor(_Stack):
    """A stack of convolutional minGRU layers: given inputs (the context; the whole sequence
    when teacher-forced) run as parallel scans, the rollout step by step with the state carried."""

    def __init__(self, *args: int) -> None:
        super().__init__(*args)
        hid, kernel = self.hidden, args[-1]
        self.cells = nn.ModuleList(
            ConvMinGRULayer(self.first_input() if i == 0 else hid, hid, kernel)
            for i in range(self.layers)
        )

    def layer_list(self) -> list[ConvMinGRULayer]:
        return [cast(ConvMinGRULayer, cell) for cell in self.cells]

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x, state = self.patches(frame), state or [None] * self.layers
        new = []
        for cell, h in zip(self.layer_list(), state, strict=True):
            x, h = cell.step(x, h)
            new.append(h)
        return self.unpatch(self.decode(x)), new

    def scan(self, frames: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Predictions after each of ``frames`` (``B,T,in,H,W``) and the final states."""
        bsz, steps = frames.shape[:2]
        x = self.patches(frames.flatten(0, 1))
        x = x.view(bsz, steps, *x.shape[1:])
        states = []
        for cell in self.layer_list():
            x, h = cell.sequence(x, None)
            states.append(h)
        y = self.unpatch(self.decode(x.flatten(0, 1)))
        return y.view(bsz, steps, *y.shape[1:]), states

    def forward(self, frames: Tensor, context: int, horizon: int, teacher: bool = False) -> Tensor:
        check_lengths(frames, context, horizon, teacher)
        given = context + horizon - 1 if teacher else context
        y, state = self.scan(frames[:, :given])
        outputs = list(y.unbind(1))
        for _ in range(context + horizon - 1 - given):
            out, state = self.step(self.feedback(outputs[-1]), state)
            outputs.append(out)
        return torch.stack(outputs, 1)


MODELS: dict[str, type[_Stack]] = {
    "convlstm": ConvLSTMPredictor,
    "convgru": ConvGRUPredictor,
    "predrnn": PredRNNPredictor,
    "mingru": MinGRUPredictor,
}


def build_predictor(
    name: str,
    in_channels: int,
    out_channels: int,
    patch: int,
    hidden: int,
    layers: int,
    kernel: int,
) -> FramePredictor:
    """The model ``name`` (``copy-last`` or one of :data:`MODELS`)."""
    if name == "copy-last":
        return CopyLast(in_channels, out_channels)
    return MODELS[name](in_channels, out_channels, patch, hidden, layers, kernel)
