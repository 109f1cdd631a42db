"""Frame predictors: frames are cut into ``patch`` x ``patch`` patches (space to depth), run
through a stack of convolutional recurrent layers, and a 1x1 convolution decodes the next frame.

Every model has ``step(frame, state) -> (next frame, state)``; :meth:`FramePredictor.forward`
reads the context and rolls out on its own predictions for any horizon (``rollout``). Models:
``copy-last`` (repeats the last context frame), ``convlstm`` (Shi et al. 2015), ``convgru``,
``predrnn`` (ST-LSTM with the zig-zag spatiotemporal memory, Wang et al. 2017), ``mingru``
(a convolutional minGRU: gates from the input only, so that over given inputs the recurrence
``h_t = (1 - z_t) h_{t-1} + z_t h~_t`` is one parallel linear scan over time) and
``encoder-rnn`` (video-action's frame encoder and sequence head, and a small decoder: prediction
as pretraining, its state dict names video-action's so that ``model.init_from`` copies them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, cast

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

    reverse_ss_steps = 0  # > 0: PredRNN-V2's reverse scheduled sampling over this many steps
    # the names of a layer's state tensors when it has several (exported as state_layer0_h ...)
    state_fields: ClassVar[tuple[str, ...]] = ("h", "c")
    reverse_ss_step: Tensor  # training steps taken (a buffer, only with reverse-ss)

    def __init__(self, in_channels: int, out_channels: int, patch: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.patch = in_channels, out_channels, patch

    def use_reverse_ss(self, steps: int) -> None:
        """Train with reverse scheduled sampling (PredRNN-V2, Wang et al. 2022) over ``steps``
        training steps; the step count is a buffer, so that a resumed run goes on with it."""
        self.reverse_ss_steps = steps
        self.register_buffer("reverse_ss_step", torch.zeros((), dtype=torch.long))

    def truth_probabilities(self, context: int, horizon: int) -> list[float]:
        """Reverse scheduled sampling: the chance that input ``t`` is the true frame rather than
        the model's prediction, at this training step (progress ``p`` of ``reverse_ss_steps``).
        Context inputs after the first: 0.5 until ``p = 0.5``, then rising as
        ``1 - 0.5 exp(-10 (p - 0.5))`` to 1 at ``p = 1`` (PredRNN-V2's reverse schedule, its
        steps 25k/50k and alpha 5k scaled); horizon inputs: 0.5 until ``p = 0.5``, then falling
        linearly to 0 at ``p = 1`` (scheduled sampling). From ``p = 1`` on, training is as
        evaluation: the context read, the horizon rolled out."""
        p = float(self.reverse_ss_step) / self.reverse_ss_steps
        if p >= 1:
            reverse, forward = 1.0, 0.0
        elif p < 0.5:
            reverse, forward = 0.5, 0.5
        else:
            reverse, forward = 1 - 0.5 * math.exp(-10 * (p - 0.5)), 0.5 - (p - 0.5)
        return [1.0] + [reverse] * (context - 1) + [forward] * horizon

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
        sampling = self.training and self.reverse_ss_steps > 0
        check_lengths(frames, context, horizon, teacher or sampling)
        truth = self.truth_probabilities(context, horizon) if sampling else []
        outputs: list[Tensor] = []
        state: Any = None
        for t in range(context + horizon - 1):
            if sampling and 0.0 < truth[t] < 1.0:
                keep = torch.rand(frames.shape[0], 1, 1, 1, device=frames.device) < truth[t]
                x = torch.where(keep, frames[:, t], self.feedback(outputs[-1]))
            elif sampling:
                x = frames[:, t] if truth[t] == 1.0 else self.feedback(outputs[-1])
            else:
                x = frames[:, t] if t < context or teacher else self.feedback(outputs[-1])
            y, state = self.step(x, state)
            outputs.append(y)
        if sampling:
            self.reverse_ss_step += 1
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
    """A stack of ``layers`` cells (``cell(inputs, hidden, kernel)``, a subclass's) on the
    patched frame and a 1x1 decoder of the top state."""

    cell: ClassVar[Callable[..., nn.Module]]

    def __init__(
        self, in_channels: int, out_channels: int, patch: int, hidden: int, layers: int, kernel: int
    ) -> None:
        super().__init__(in_channels, out_channels, patch)
        self.hidden, self.layers = hidden, layers
        self.decode = nn.Conv2d(hidden, out_channels * patch * patch, 1)
        self.cells = nn.ModuleList(
            self.make_cell(i, self.first_input() if i == 0 else hidden, hidden, kernel)
            for i in range(layers)
        )

    def make_cell(self, index: int, inputs: int, hidden: int, kernel: int) -> nn.Module:
        """Layer ``index`` (0: the bottom one)."""
        return type(self).cell(inputs, hidden, kernel)

    def first_input(self) -> int:
        return self.in_channels * self.patch * self.patch


class ConvLSTMPredictor(_Stack):
    """ConvLSTM (Shi et al. 2015): a stack of ConvLSTM cells."""

    cell = ConvLSTMCell

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

    cell = ConvGRUCell

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

    cell = STLSTMCell

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
    (a linear scan over time); output ``skip(x_t) + conv(gelu(h_t))``, that convolution's kernel
    ``out_kernel`` (default ``kernel``).

    ``shift``: the gates read ``[x_t, x_t - x_{t-1}]`` (a token shift, as RWKV's, or Mamba's
    short causal convolution): the difference of consecutive inputs shows motion, which the
    gates of the input alone cannot see. The input before the first is black (zeros), so the
    state is ``(h, x_{t-1})`` and all-zero before the first frame, as an exported model starts.
    Without ``shift`` the state is ``h``."""

    def __init__(
        self,
        inputs: int,
        hidden: int,
        kernel: int,
        out_kernel: int | None = None,
        shift: bool = False,
    ) -> None:
        super().__init__()
        out_kernel = out_kernel or kernel
        self.hidden, self.shift = hidden, shift
        gate_inputs = 2 * inputs if shift else inputs
        self.gates = nn.Conv2d(gate_inputs, 2 * hidden, kernel, padding=kernel // 2)
        self.out = nn.Conv2d(hidden, hidden, out_kernel, padding=out_kernel // 2)
        self.skip: nn.Module = nn.Conv2d(inputs, hidden, 1) if inputs != hidden else nn.Identity()

    def coefficients(self, x: Tensor, previous: Tensor | None) -> tuple[Tensor, Tensor]:
        """``a = 1 - z`` and ``b = z * h~`` of frames ``x`` (``N,C,H,W``) whose inputs before
        were ``previous`` (None: black; read only with ``shift``)."""
        if self.shift:
            x = torch.cat([x, x if previous is None else x - previous], 1)
        z, candidate = self.gates(x).split(self.hidden, 1)
        z = torch.sigmoid(z)
        return 1 - z, z * candidate

    def output(self, x: Tensor, h: Tensor) -> Tensor:
        return self.skip(x) + self.out(F.gelu(h))

    def unpack(self, state: Any) -> tuple[Tensor | None, Tensor | None]:
        """``(h, previous input)`` of a state (None: the start; no previous without shift)."""
        if state is None:
            return None, None
        return state if self.shift else (state, None)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: the output and the new state (``h``; ``(h, x)`` with ``shift``)."""
        h, previous = self.unpack(state)
        a, b = self.coefficients(x, previous)
        h = b if h is None else torch.addcmul(b, a, h)
        return self.output(x, h), ((h, x) if self.shift else h)

    def sequence(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """All steps of ``x`` (``B,T,C,H,W``) at once (one scan) after ``state`` (None: the
        start); returns outputs and the last state."""
        bsz, steps = x.shape[:2]
        h, previous = self.unpack(state)
        before = None
        if self.shift:  # the input before each step
            first = torch.zeros_like(x[:, :1]) if previous is None else previous.unsqueeze(1)
            before = torch.cat([first, x[:, :-1]], 1).flatten(0, 1)
        flat = x.flatten(0, 1)
        a, b = self.coefficients(flat, before)
        shape = a.shape[1:]
        hs = linear_scan(
            a.reshape(bsz, steps, -1),
            b.reshape(bsz, steps, -1),
            None if h is None else h.reshape(bsz, -1),
        )
        hs = hs.reshape(bsz * steps, *shape)
        out = self.output(flat, hs)
        last = hs.view(bsz, steps, *shape)[:, -1]
        return out.view(bsz, steps, *out.shape[1:]), ((last, x[:, -1]) if self.shift else last)


class MinGRUPredictor(_Stack):
    """A stack of convolutional minGRU layers: given inputs (the context; the whole sequence
    when teacher-forced) run as parallel scans, the rollout step by step with the state carried.
    The bottom ``shift`` layers' gates also read the difference of consecutive inputs
    (:class:`ConvMinGRULayer`); their state is ``(h, previous input)``."""

    state_fields = ("h", "prev")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch: int,
        hidden: int,
        layers: int,
        kernel: int,
        out_kernel: int | None = None,
        shift: int = 0,
    ) -> None:
        # read by make_cell, in super().__init__
        self.out_kernel, self.shift = out_kernel or kernel, shift
        super().__init__(in_channels, out_channels, patch, hidden, layers, kernel)

    def make_cell(self, index: int, inputs: int, hidden: int, kernel: int) -> nn.Module:
        return ConvMinGRULayer(inputs, hidden, kernel, self.out_kernel, shift=index < self.shift)

    def layer_list(self) -> list[ConvMinGRULayer]:
        return [cast(ConvMinGRULayer, cell) for cell in self.cells]

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x, state = self.patches(frame), state or [None] * self.layers
        new = []
        for cell, h in zip(self.layer_list(), state, strict=True):
            x, h = cell.step(x, h)
            new.append(h)
        return self.unpatch(self.decode(x)), new

    def scan(self, frames: Tensor) -> tuple[Tensor, list[Any]]:
        """Predictions after each of ``frames`` (``B,T,in,H,W``) and the final states."""
        bsz, steps = frames.shape[:2]
        x = self.patches(frames.flatten(0, 1))
        x = x.view(bsz, steps, *x.shape[1:])
        states = []
        for cell in self.layer_list():
            x, state = cell.sequence(x, None)
            states.append(state)
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


class EncoderRNNPredictor(FramePredictor):
    """video-action's model with a frame decoder: ``encoder`` (a core frame encoder, frames as
    RGB) -> ``head`` (a core sequence head, per-step API) -> ``decoder`` (linear, then
    transposed convolutions doubling the size three times) -> the next frame.

    ``encoder.*`` and ``head.*`` carry video-action's names (its ``ClipClassifier``), so that a
    video-action run with ``model.init_from=<this run>`` starts from them; the head's last
    linear layer (``head.classifier``: ``decoder_dim`` outputs here, the classes there) and the
    decoder are not copied. No ``mean``/``std`` buffers: the encoder reads frames as they are
    (in [0, 1]), video-action keeps its own normalisation.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        in_channels: int,
        out_channels: int,
        size: tuple[int, int],
        decoder_dim: int,
    ) -> None:
        super().__init__(in_channels, out_channels, 1)
        height, width = size
        if height % 8 or width % 8:
            raise ConfigError(
                f"data.size: encoder-rnn decodes frames of a multiple of 8 pixels "
                f"(got {height}x{width})"
            )
        self.encoder = encoder
        self.head: Any = head  # a core SequenceHead: scan, step
        self.grid = (height // 8, width // 8)
        widths = (32, 16, 8)
        ups: list[nn.Module] = []
        for i, w in enumerate(widths):
            ups += [nn.ConvTranspose2d(w if i == 0 else widths[i - 1], w, 4, 2, 1), nn.ReLU()]
        self.decoder = nn.Sequential(
            nn.Linear(decoder_dim, widths[0] * self.grid[0] * self.grid[1]),
            nn.ReLU(),
            nn.Unflatten(1, (widths[0], *self.grid)),
            *ups,
            nn.Conv2d(widths[-1], out_channels, 3, padding=1),
        )

    def encode(self, frames: Tensor) -> Tensor:
        """Features ``N,F`` of frames ``N,C,H,W`` (turned to RGB first)."""
        return cast(Tensor, self.encoder(convert_channels(frames, 3))).flatten(1)

    def step(self, frame: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        out, state = self.head.step(self.encode(frame), state)
        return self.decoder(out), state

    def forward(self, frames: Tensor, context: int, horizon: int, teacher: bool = False) -> Tensor:
        """The given frames (the context; all of them when teacher-forced) encoded in one batch
        and scanned by the head, then the rollout step by step."""
        check_lengths(frames, context, horizon, teacher)
        given = context + horizon - 1 if teacher else context
        bsz = frames.shape[0]
        features = self.encode(frames[:, :given].flatten(0, 1)).view(bsz, given, -1)
        out, state = self.head.scan(features, None)
        y = self.decoder(out.flatten(0, 1))
        outputs = list(y.view(bsz, given, *y.shape[1:]).unbind(1))
        for _ in range(context + horizon - 1 - given):
            nxt, state = self.step(self.feedback(outputs[-1]), state)
            outputs.append(nxt)
        return torch.stack(outputs, 1)


STEPPED = ("convlstm", "convgru", "predrnn")  # the models that reverse-ss can train
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
    reverse_ss_steps: int = 0,
    out_kernel: int | None = None,
    shift: int = 0,
) -> FramePredictor:
    """The model ``name`` (``copy-last`` or one of :data:`MODELS`); ``reverse_ss_steps > 0``:
    trained with reverse scheduled sampling (the models that step frame by frame only);
    ``out_kernel``: mingru's output convolutions' kernel (default ``kernel``); ``shift``: how
    many of mingru's layers, from the bottom, also read the difference of consecutive inputs."""
    if name == "copy-last":
        return CopyLast(in_channels, out_channels)
    if name == "mingru":
        return MinGRUPredictor(
            in_channels, out_channels, patch, hidden, layers, kernel, out_kernel, shift
        )
    model = MODELS[name](in_channels, out_channels, patch, hidden, layers, kernel)
    if reverse_ss_steps:
        if name not in STEPPED:
            raise ConfigError(
                f"model.feed: reverse-ss needs a model that reads frame by frame "
                f"({', '.join(STEPPED)}), not {name}"
            )
        model.use_reverse_ss(reverse_ss_steps)
    return model
