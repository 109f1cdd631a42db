"""Convolutional recurrent layers: ConvGRU / ConvLSTM cells and multi-layer sequence layers.

Each cell computes every gate's input term with one *input* convolution (``C -> G*hidden``) and
the hidden terms with fused *hidden* convolutions (GRU: ``W_hr|W_hz`` in one, then ``W_hn`` on
``r*h``; LSTM: all four in one). The input convolution does not depend on the recurrence, so
the sequence layers run it ahead of the time loop (one call over all ``B*T`` frames on GPU, per
frame on CPU where that measured faster), and a zero initial state skips the hidden
convolutions of the first step. ``benchmarks/convgru.py`` compares this with the six-convolution
reference cell and with fusing over ``concat(x, h)``, which measured slower on CPU (it also
computes the unneeded gradient of the input frames).

Tensor layout: clips ``B,T,C,H,W``; states ``B,hidden,H,W``. With ``bidirectional=True`` outputs
and per-layer states concatenate the forward and backward directions on channels.

Streaming (per-step API, unidirectional only): ``step(x B,C,H,W, state) -> (output
B,hidden,H,W, state)`` runs one frame through all layers, carrying the per-layer states in the
form ``forward`` returns (GRU: a tensor per layer; LSTM: an ``(h, c)`` tuple per layer); frame by
frame it gives ``forward``'s outputs. ``initial_state(x)`` is the explicit state before the first
frame (zeros, or the learned one), for exporters that need a tensor; ``None`` means the same.
``stream_blocker`` says why a layer cannot stream (bidirectional), or is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rnnvision_kit.errors import ConfigError

__all__ = ["ConvGRU", "ConvGRUCell", "ConvLSTM", "ConvLSTMCell", "LSTMState"]

LSTMState = tuple[Tensor, Tensor]
_IntPair = int | tuple[int, int]


def _pair(value: _IntPair, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v < 1 for v in pair):
        raise ConfigError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


def _same_conv(
    in_ch: int, out_ch: int, kernel_size: _IntPair, dilation: _IntPair, bias: bool
) -> nn.Conv2d:
    """A stride-1 convolution whose output has the input's spatial size."""
    k = _pair(kernel_size, "kernel_size")
    d = _pair(dilation, "dilation")
    if k[0] % 2 == 0 or k[1] % 2 == 0:
        raise ConfigError(f"kernel_size must be odd to keep the spatial size, got {kernel_size!r}")
    padding = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
    return nn.Conv2d(in_ch, out_ch, k, padding=padding, dilation=d, bias=bias)


def _check_channels(value: int, name: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return value


class ConvGRUCell(nn.Module):
    """One ConvGRU step: ``h' = (1 - z) * h + z * tanh(W_xn x + W_hn (r * h))``.

    ``r`` and ``z`` are sigmoids of ``W_x{r,z} x + W_h{r,z} h``. Parameters: ``input_conv``
    (``W_xr|W_xz|W_xn`` stacked, with the bias), ``gate_conv`` (``W_hr|W_hz``) and
    ``candidate_conv`` (``W_hn``).
    """

    num_gates = 3

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        kernel_size: _IntPair = 3,
        dilation: _IntPair = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.input_channels = _check_channels(input_channels, "input_channels")
        self.hidden_channels = hid = _check_channels(hidden_channels, "hidden_channels")
        self.input_conv = _same_conv(input_channels, 3 * hid, kernel_size, dilation, bias)
        self.gate_conv = _same_conv(hid, 2 * hid, kernel_size, dilation, False)
        self.candidate_conv = _same_conv(hid, hid, kernel_size, dilation, False)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """Step on input ``x`` (``B,C,H,W``) from state ``h`` (``B,hidden,H,W``; None = zeros)."""
        return self.step(self.input_conv(x), h)

    def step(self, xg: Tensor, h: Tensor | None = None) -> Tensor:
        """Step from the precomputed input projection ``xg = input_conv(x)``."""
        hid = self.hidden_channels
        if h is None:  # zero state: the hidden convolutions contribute nothing
            _, xz, xn = xg.split(hid, 1)
            return torch.sigmoid(xz) * torch.tanh(xn)
        # split (not slicing) so that autograd concatenates gradients instead of zero-filling
        xrz, xn = xg.split((2 * hid, hid), 1)
        r, z = torch.sigmoid(xrz + self.gate_conv(h)).split(hid, 1)
        n = torch.tanh(xn + self.candidate_conv(r * h))
        return torch.lerp(h.to(n.dtype), n, z)  # .to: a float32 state under autocast


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: gates ``i, f, o, g`` from ``W_x x + W_h h``; ``c' = f c + i g``,
    ``h' = o tanh(c')``.

    Parameters: ``input_conv`` (all four gates' input terms, with the bias; the forget-gate bias
    starts at 1) and ``hidden_conv`` (all four gates' hidden terms).
    """

    num_gates = 4

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        kernel_size: _IntPair = 3,
        dilation: _IntPair = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.input_channels = _check_channels(input_channels, "input_channels")
        self.hidden_channels = hid = _check_channels(hidden_channels, "hidden_channels")
        self.input_conv = _same_conv(input_channels, 4 * hid, kernel_size, dilation, bias)
        self.hidden_conv = _same_conv(hid, 4 * hid, kernel_size, dilation, False)
        if self.input_conv.bias is not None:  # bias
            with torch.no_grad():
                self.input_conv.bias[hid : 2 * hid].fill_(1.0)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        """Step on ``x`` (``B,C,H,W``) from ``state = (h, c)`` (None = zeros); return ``(h, c)``."""
        return self.step(self.input_conv(x), state)

    def step(self, xg: Tensor, state: LSTMState | None = None) -> LSTMState:
        """Step from the precomputed input projection ``xg = input_conv(x)``."""
        hid = self.hidden_channels
        gates = xg if state is None else xg + self.hidden_conv(state[0])
        ifo, g = gates.split((3 * hid, hid), 1)
        i, f, o = torch.sigmoid(ifo).split(hid, 1)
        g = torch.tanh(g)
        c = i * g if state is None else torch.addcmul(i * g, f, state[1])
        return o * torch.tanh(c), c


class _ConvRNN(nn.Module):
    """Shared multi-layer, optionally bidirectional, sequence driver."""

    _cell_type: type[nn.Module]
    _state_parts: int  # tensors per state: 1 (GRU h) or 2 (LSTM h, c)
    #: Input convolution over all frames of a clip in one call (True), per frame (False), or
    #: per frame on CPU only (None).
    batch_input_conv: bool | None = None

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int | Sequence[int],
        num_layers: int = 1,
        kernel_size: _IntPair = 3,
        dilation: _IntPair = 1,
        bias: bool = True,
        bidirectional: bool = False,
        init_state: str = "zero",
    ) -> None:
        super().__init__()
        _check_channels(num_layers, "num_layers")
        if isinstance(hidden_channels, int):
            hidden = [hidden_channels] * num_layers
        else:
            hidden = list(hidden_channels)
            if len(hidden) != num_layers:
                raise ConfigError(
                    f"hidden_channels lists {len(hidden)} layers but num_layers is {num_layers}"
                )
        if init_state not in ("zero", "learned"):
            raise ConfigError(f"init_state must be 'zero' or 'learned', got {init_state!r}")
        self.input_channels = _check_channels(input_channels, "input_channels")
        self.hidden_channels = [_check_channels(h, "hidden_channels") for h in hidden]
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.bidirectional = bidirectional
        self.init_state = init_state
        self.out_channels = self.num_directions * self.hidden_channels[-1]

        self.cells = nn.ModuleList()
        in_ch = input_channels
        for hid in self.hidden_channels:
            for _ in range(self.num_directions):
                self.cells.append(self._cell_type(in_ch, hid, kernel_size, dilation, bias))
            in_ch = self.num_directions * hid
        self.initial_states = nn.ParameterList()
        if init_state == "learned":
            for hid in self.hidden_channels:
                for _ in range(self._state_parts):
                    shape = (self.num_directions * hid, 1, 1)
                    self.initial_states.append(nn.Parameter(torch.zeros(shape)))

    def _initial(
        self, layer: int, given: Sequence | None, like: Tensor
    ) -> tuple[Tensor, ...] | None:
        """The layer's initial state parts, each ``B, D*hidden, H, W``; None means zeros."""
        batch, _, _, height, width = like.shape
        shape = (batch, self.num_directions * self.hidden_channels[layer], height, width)
        if given is not None:
            parts = given[layer]
            parts = (parts,) if isinstance(parts, Tensor) else tuple(parts)
            if len(parts) != self._state_parts:
                raise ValueError(f"state of layer {layer} needs {self._state_parts} tensor(s)")
            return tuple(p.expand(shape) for p in parts)
        if self.init_state == "learned":
            k = self._state_parts
            params = self.initial_states[layer * k : (layer + 1) * k]
            return tuple(p.to(like.dtype).expand(shape) for p in params)
        return None

    def _run_direction(
        self, cell: Any, x: Tensor, state: tuple[Tensor, ...] | None, reverse: bool
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        batch, steps = x.shape[:2]
        batched = self.batch_input_conv
        if batched is None:
            # on CPU one convolution over all B*T frames measured ~2x slower than T small ones
            batched = x.device.type != "cpu"
        if batched:
            xg = cell.input_conv(x.flatten(0, 1)).unflatten(0, (batch, steps)).unbind(1)
        else:
            xg = [cell.input_conv(xt) for xt in x.unbind(1)]
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        # the cell's state: h (ConvGRUCell) or (h, c) (ConvLSTMCell)
        st: Any = None if state is None else (state[0] if self._state_parts == 1 else state)
        outputs: list[Tensor] = [x] * steps  # placeholders, all overwritten
        for t in order:
            st = cell.step(xg[t], st)
            outputs[t] = st if self._state_parts == 1 else st[0]
        last = (st,) if self._state_parts == 1 else tuple(st)
        return torch.stack(outputs, 1), last

    # ------------------------------------------------------------------ per-step API

    @property
    def stream_blocker(self) -> str | None:
        """Why this layer cannot run frame by frame, or None when it can."""
        if self.bidirectional:
            return "it is bidirectional (each frame's output depends on later frames)"
        return None

    def initial_state(self, x: Tensor) -> list:
        """The explicit per-layer state before the first frame ``x`` (``B,C,H,W``): zeros, or
        the learned initial state, in the form :meth:`step` takes and returns."""
        like = x.unsqueeze(1)
        states: list = []
        for layer in range(self.num_layers):
            parts = self._initial(layer, None, like)
            if parts is None:
                b, _, _, h, w = like.shape
                zeros = x.new_zeros(b, self.hidden_channels[layer], h, w)
                parts = (zeros,) * self._state_parts
            states.append(parts[0] if self._state_parts == 1 else tuple(parts))
        return states

    def step(self, x: Tensor, state: Sequence | None = None) -> tuple[Tensor, list]:
        """One frame ``x`` (``B,C,H,W``) through all layers from ``state`` (None: the initial
        state); returns the last layer's output ``B,hidden,H,W`` and the per-layer states."""
        if self.bidirectional:
            raise ValueError(f"{type(self).__name__} cannot step: {self.stream_blocker}")
        if x.dim() != 4:
            raise ValueError(f"expected a frame B,C,H,W, got shape {tuple(x.shape)}")
        if state is not None and len(state) != self.num_layers:
            raise ValueError(f"state has {len(state)} layers, expected {self.num_layers}")
        layer_input, states = x, []
        for layer in range(self.num_layers):
            parts = self._initial(layer, state, x.unsqueeze(1))
            st = None if parts is None else (parts[0] if self._state_parts == 1 else parts)
            cell: Any = self.cells[layer]  # a ConvGRUCell or a ConvLSTMCell
            st = cell.step(cell.input_conv(layer_input), st)
            layer_input = st if self._state_parts == 1 else st[0]
            states.append(st if self._state_parts == 1 else tuple(st))
        return layer_input, states

    def forward(self, x: Tensor, state: Sequence | None = None) -> tuple[Tensor, list]:
        if x.dim() != 5:
            raise ValueError(f"expected a clip B,T,C,H,W, got shape {tuple(x.shape)}")
        if x.shape[2] != self.input_channels:
            raise ValueError(f"expected {self.input_channels} input channels, got {x.shape[2]}")
        if state is not None and len(state) != self.num_layers:
            raise ValueError(f"state has {len(state)} layers, expected {self.num_layers}")
        d = self.num_directions
        layer_input = x
        last_states: list = []
        for layer in range(self.num_layers):
            init = self._initial(layer, state, x)
            outs, lasts = [], []
            for direction in range(d):
                part = None if init is None else tuple(p.chunk(d, 1)[direction] for p in init)
                cell = self.cells[layer * d + direction]
                out, last = self._run_direction(cell, layer_input, part, reverse=direction == 1)
                outs.append(out)
                lasts.append(last)
            layer_input = outs[0] if d == 1 else torch.cat(outs, 2)
            merged = (
                lasts[0] if d == 1 else tuple(torch.cat(p, 1) for p in zip(*lasts, strict=True))
            )
            last_states.append(merged[0] if self._state_parts == 1 else merged)
        return layer_input, last_states


class ConvGRU(_ConvRNN):
    """Multi-layer ConvGRU over clips ``B,T,C,H,W``.

    ``ConvGRU(input_channels, hidden_channels, num_layers=1, kernel_size=3, dilation=1,
    bias=True, bidirectional=False, init_state="zero")``; ``hidden_channels`` is an int or one
    per layer, ``kernel_size``/``dilation`` an int or an ``(h, w)`` pair (odd kernels).

    ``forward(x, state=None)`` returns ``(outputs, states)``: the last layer's outputs
    ``B,T,D*hidden,H,W`` (``D = 2`` when bidirectional, forward then backward channels) and one
    final state ``B,D*hidden,H,W`` per layer. ``state`` (same form, broadcastable) overrides the
    initial state, which is otherwise zeros or, with ``init_state="learned"``, a trained
    parameter per layer broadcast over batch and space.
    """

    _cell_type = ConvGRUCell
    _state_parts = 1

    def forward(self, x: Tensor, state: Sequence[Tensor] | None = None) -> tuple[Tensor, list]:
        """Run the clip; see the class docstring."""
        return super().forward(x, state)


class ConvLSTM(_ConvRNN):
    """Multi-layer ConvLSTM over clips ``B,T,C,H,W``.

    Like :class:`ConvGRU`, but each layer's state is a tuple ``(h, c)`` of ``B,D*hidden,H,W``.
    """

    _cell_type = ConvLSTMCell
    _state_parts = 2

    def forward(
        self, x: Tensor, state: Sequence[LSTMState] | None = None
    ) -> tuple[Tensor, list[LSTMState]]:
        """Run the clip; see the class docstring."""
        return super().forward(x, state)
