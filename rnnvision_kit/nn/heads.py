"""Sequence heads: ``B,T,F`` sequences in, ``B,num_classes`` logits out.

A :class:`SequenceHead` is a stack of sequence layers (:class:`~rnnvision_kit.nn.SequenceLayer`),
a pooling over time and a linear classifier. How the layers are stacked is the layer's
``block``:

- ``"plain"`` (``gru``, ``lstm``, ``rnn``): layer on layer, dropout between them, as the fused
  multi-layer ``nn.GRU``/``nn.LSTM``/``nn.RNN`` do; the first layer reads the input features;
- ``"residual"`` (minGRU, minLSTM, Mamba, mLSTM, as their papers stack them): the input is
  projected to ``hidden_size``, then each layer is a pre-norm residual block
  ``x + dropout(layer(norm(x)))``, and a final norm;
- ``"glu"`` (LRU, S5): the same with the S4/S5/LRU papers' position-wise output,
  ``x + dropout(GLU(GELU(layer(norm(x)))))``;
- ``"own"`` (``transformer``, ``tcn``): the layer has its own norms and residuals; projected input,
  layers chained, a final norm.

``bidirectional`` runs a second copy of each layer on the reversed sequence (for any layer) and
concatenates (``plain``) or merges the two with a linear layer (``residual``/``own``). ``MeanHead``
averages the sequence without looking at its order: the baseline a sequence head should beat.

Streaming (per-step API): a head whose layers are all causal, unidirectional, with ``last``
pooling gives the logits after each new frame: ``step(features B,F, state) -> (logits B,K,
state)``, or ``scan`` over a chunk ``B,T,F``, equal to ``forward`` on all frames so far. The state
is a tuple of tensors, the layers' states in order, described by :meth:`SequenceHead.state_spec`
(names ``layer{i}_{name}``). ``stream_blocker`` says why a head cannot stream, or is None.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnvision_kit.nn.sequence import SequenceLayer, State, StateSpec

Pooling = Literal["last", "mean", "attention"]
Block = Literal["plain", "residual", "glu", "own"]
LayerFactory = Callable[[int, int], nn.Module]  # (input_size, hidden_size) -> a sequence layer

__all__ = [
    "Bidirectional",
    "MeanHead",
    "SequenceHead",
    "TorchRNN",
    "build_head",
    "builtin_layer",
    "create_layer",
]


class TorchRNN(SequenceLayer):
    """One layer of the fused ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` (tanh) kernel (cuDNN on a GPU).

    GRU: Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
    Statistical Machine Translation", arXiv:1406.1078. LSTM: Hochreiter & Schmidhuber 1997,
    "Long Short-Term Memory", Neural Computation 9(8). Elman 1990, "Finding Structure in Time".
    State: ``h`` (and ``c`` for the LSTM), each ``B,H``. Export uses ONNX's own GRU/LSTM/RNN
    operators, whose time axis is dynamic.
    """

    CELLS: dict[str, Callable[..., nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(self, input_size: int, hidden_size: int, *, cell: str = "gru") -> None:
        super().__init__()
        if cell not in self.CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(self.CELLS)}")
        self.input_size, self.hidden_size, self.cell = input_size, hidden_size, cell
        self.rnn = self.CELLS[cell](input_size, hidden_size, batch_first=True)

    def state_spec(self) -> tuple[StateSpec, ...]:
        names = ("h", "c") if self.cell == "lstm" else ("h",)
        return tuple(StateSpec(name, (self.hidden_size,)) for name in names)

    def forward(self, x: Tensor) -> Tensor:
        return self.rnn(x)[0]

    def scan(self, chunk: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            state = self.initial_state(chunk.shape[0], chunk.device, chunk.dtype)
        carried: Any = tuple(s.unsqueeze(0).contiguous() for s in state)
        y, after = self.rnn(chunk, carried if self.cell == "lstm" else carried[0])
        after = after if isinstance(after, tuple) else (after,)
        return y, tuple(s.squeeze(0) for s in after)

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}"


class Bidirectional(nn.Module):
    """Two copies of a layer, one reading the sequence forwards and one backwards; their outputs
    concatenated (``B,T,2H``), then merged back to ``H`` by a linear layer if ``merge``."""

    stream_blocker = "its head is bidirectional (it reads each clip backwards too)"

    def __init__(self, forward_layer: Any, backward_layer: Any, merge: bool) -> None:
        super().__init__()
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        width: int = forward_layer.hidden_size
        self.merge = nn.Linear(2 * width, width) if merge else None
        self.hidden_size = width if merge else 2 * width

    def forward(self, x: Tensor) -> Tensor:
        backward = self.backward_layer(x.flip(1)).flip(1)
        y = torch.cat([self.forward_layer(x), backward], -1)
        return self.merge(y) if self.merge is not None else y


class GLU(nn.Module):
    """``GELU`` then a gated linear unit, ``a * sigmoid(b)`` of ``Linear(H, 2H)``: the position-wise
    output of the S4/S5/LRU blocks (Dauphin et al. 2017 for the GLU)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, 2 * width)

    def forward(self, y: Tensor) -> Tensor:
        return F.glu(self.linear(F.gelu(y)), dim=-1)


class _Residual(nn.Module):
    """``x + dropout(out(layer(norm(x))))``: a pre-norm residual block; ``out`` is a
    :class:`GLU` (block ``glu``) or nothing (block ``residual``)."""

    def __init__(self, layer: Any, width: int, dropout: float, glu: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.layer = layer  # a sequence layer, or a Bidirectional pair (no per-step API)
        self.out = GLU(width) if glu else nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(self.out(self.layer(self.norm(x))))

    def scan(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        y, state = self.layer.scan(self.norm(x), state)
        return x + self.dropout(self.out(y)), state


class _Plain(nn.Module):
    """``dropout(layer(x))`` (dropout only between layers, as the fused RNN kernels)."""

    def __init__(self, layer: Any, dropout: float) -> None:
        super().__init__()
        self.layer = layer  # a sequence layer, or a Bidirectional pair (no per-step API)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.layer(x))

    def scan(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        y, state = self.layer.scan(x, state)
        return self.dropout(y), state


class SequenceHead(nn.Module):
    """A stack of ``num_layers`` sequence layers, a pooling over time and a linear classifier.

    ``make_layer(input_size, hidden_size)`` builds one layer; ``block`` says how they stack (see
    the module docstring). ``pooling="last"`` uses the last step's output (bidirectional
    ``plain``: the forward direction's last step and the backward direction's first, i.e. each
    direction's final state), ``"mean"`` averages over time, ``"attention"`` learns a softmax
    weighting over time steps.
    """

    def __init__(
        self,
        make_layer: LayerFactory,
        input_size: int,
        num_classes: int,
        *,
        block: Block = "residual",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: Pooling = "last",
        dropout: float = 0.0,
        name: str = "",
    ) -> None:
        super().__init__()
        if pooling not in ("last", "mean", "attention"):
            raise ValueError(f"unknown pooling {pooling!r}; choose last, mean or attention")
        if block not in ("plain", "residual", "glu", "own"):
            raise ValueError(f"unknown block {block!r}; choose plain, residual, glu or own")
        self.block, self.pooling, self.name = block, pooling, name
        self.bidirectional = bidirectional
        plain = block == "plain"
        self.project = (
            nn.Linear(input_size, hidden_size)
            if not plain and input_size != hidden_size
            else nn.Identity()
        )
        width = input_size if plain else hidden_size
        blocks: list[_Plain | _Residual] = []
        for index in range(num_layers):
            if bidirectional:
                layer: Any = Bidirectional(  # a sequence layer or a pair: .hidden_size
                    make_layer(width, hidden_size), make_layer(width, hidden_size), not plain
                )
            else:
                layer = make_layer(width, hidden_size)
            if plain:
                between = dropout if index < num_layers - 1 else 0.0
                blocks.append(_Plain(layer, between))
                width = layer.hidden_size
            elif block in ("residual", "glu"):
                blocks.append(_Residual(layer, hidden_size, dropout, glu=block == "glu"))
            else:
                blocks.append(_Plain(layer, dropout if index < num_layers - 1 else 0.0))
        self.layers = nn.ModuleList(blocks)
        self.norm = nn.Identity() if plain else nn.LayerNorm(hidden_size)
        self.attention = nn.Linear(width, 1) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)
        self.output_size = width
        self._register_load_state_dict_pre_hook(self._from_fused_rnn)

    # ------------------------------------------------------------------ training mode

    def sequence(self, x: Tensor) -> Tensor:
        """The top layer's outputs ``B,T,H`` (after the final norm), before pooling."""
        x = self.project(x)
        for block in self.layers:
            x = block(x)
        return self.norm(x)

    def forward(self, x: Tensor) -> Tensor:
        y = self.sequence(x)
        if self.pooling == "last":
            if self.bidirectional and self.block == "plain":
                half = y.shape[-1] // 2
                pooled = torch.cat([y[:, -1, :half], y[:, 0, half:]], -1)
            else:
                pooled = y[:, -1]
        elif self.pooling == "mean":
            pooled = y.mean(dim=1)
        else:
            assert self.attention is not None  # pooling == "attention"
            weights = torch.softmax(self.attention(y), dim=1)
            pooled = (weights * y).sum(dim=1)
        return self.classifier(self.dropout(pooled))

    # ------------------------------------------------------------------ per-step API

    def _blocks(self) -> Sequence[_Plain | _Residual]:
        return cast("Sequence[_Plain | _Residual]", self.layers)

    def _layers(self) -> list[Any]:
        return [block.layer for block in self._blocks()]

    @property
    def stream_blocker(self) -> str | None:
        """Why this head cannot run frame by frame with a carried state, or None if it can."""
        if self.bidirectional:
            return (
                "its head is bidirectional (it reads each clip backwards too); "
                "train with --set model.bidirectional=false"
            )
        if self.pooling != "last":
            return (
                f"its head pools over the whole clip (model.pooling={self.pooling}); "
                "train with --set model.pooling=last"
            )
        for layer in self._layers():
            blocker = getattr(layer, "stream_blocker", "it has no per-step API")
            if blocker is not None:
                return f"its layer {self.name or type(layer).__name__} cannot stream: {blocker}"
        return None

    def state_spec(self) -> tuple[StateSpec, ...]:
        """The layers' state tensors in order, named ``layer{i}_{name}``."""
        return tuple(
            StateSpec(f"layer{i}_{spec.name}", spec.shape, spec.dtype)
            for i, layer in enumerate(self._layers())
            for spec in layer.state_spec()
        )

    def initial_state(
        self,
        batch: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """The zero state before the first frame: every layer's :meth:`initial_state`."""
        if device is None or dtype is None:
            weight = self.classifier.weight
            device, dtype = device or weight.device, dtype or weight.dtype
        return tuple(
            tensor
            for layer in self._layers()
            for tensor in layer.initial_state(batch, device=device, dtype=dtype)
        )

    def scan(self, features: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits ``B,T,K`` after each frame of ``features B,T,F``, and the state after the
        last one; ``state`` None starts from zeros."""
        blocker = self.stream_blocker
        if blocker is not None:
            raise ValueError(f"this head cannot stream: {blocker}")
        if state is None:
            state = self.initial_state(features.shape[0], features.device, features.dtype)
        x, rest = self.project(features), tuple(state)
        after: list[Tensor] = []
        for block in self._blocks():
            count = len(block.layer.state_spec())
            x, layer_state = block.scan(x, rest[:count])
            rest = rest[count:]
            after.extend(layer_state)
        return self.classifier(self.dropout(self.norm(x))), tuple(after)

    def step(self, features: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits ``B,K`` after one new frame ``features B,F``, and the next state."""
        logits, state = self.scan(features.unsqueeze(1), state)
        return logits[:, 0], state

    # ------------------------------------------------------------------ old checkpoints

    _FUSED = re.compile(r"rnn\.(weight|bias)_(ih|hh)_l(\d+)(_reverse)?$")

    def _from_fused_rnn(self, state_dict: dict[str, Tensor], prefix: str, *_: Any) -> None:
        """Checkpoints of the former fused multi-layer head (``rnn.weight_ih_l1_reverse``) load
        into the stacked layers (``layers.1.layer.backward_layer.rnn.weight_ih_l0``)."""
        if self.block != "plain":
            return
        for key in [k for k in state_dict if k.startswith(prefix)]:
            match = self._FUSED.match(key[len(prefix) :])
            if match is None:
                continue
            kind, gate, layer, reverse = match.groups()
            where = f"layers.{layer}.layer."
            if self.bidirectional:
                where += "backward_layer." if reverse else "forward_layer."
            state_dict[f"{prefix}{where}rnn.{kind}_{gate}_l0"] = state_dict.pop(key)


class MeanHead(nn.Module):
    """Order-less baseline: average the ``B,T,F`` features over time, then a linear layer."""

    def __init__(self, input_size: int, num_classes: int, *, dropout: float = 0.0, **_: object):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(input_size, num_classes)

    stream_blocker = (
        "its head (model.head=mean) averages the whole clip without order; "
        "train a recurrent head with --set model.head=gru"
    )

    def forward(self, sequence: Tensor) -> Tensor:
        return self.classifier(self.dropout(sequence.mean(dim=1)))


# the layers of rnnvision_kit.nn besides TorchRNN's cells: "module:class" and block
BUILTIN_LAYERS: dict[str, tuple[str, Block]] = {
    "mingru": ("layers_min:MinGRU", "residual"),
    "minlstm": ("layers_min:MinLSTM", "residual"),
    "lru": ("layers_ssm:LRU", "glu"),
    "s5": ("layers_ssm:S5", "glu"),
    "mamba": ("layers_select:Mamba", "residual"),
    "mlstm": ("layers_select:MLSTM", "residual"),
    "transformer": ("layers_baseline:Transformer", "own"),
    "tcn": ("layers_baseline:TCN", "own"),
}


def builtin_layer(name: str) -> tuple[Callable[..., nn.Module], Block]:
    """The class (``cls(input_size, hidden_size, **settings)``) and block of a layer that
    ``rnnvision_kit.nn`` itself provides: ``gru``, ``lstm``, ``rnn``, ``mingru``, ``minlstm``,
    ``lru``, ``s5``, ``mamba``, ``mlstm``, ``transformer``, ``tcn``."""
    if name in TorchRNN.CELLS:
        return (lambda i, h: TorchRNN(i, h, cell=name)), "plain"
    if name not in BUILTIN_LAYERS:
        known = ", ".join([*TorchRNN.CELLS, *BUILTIN_LAYERS])
        raise ValueError(f"unknown layer {name!r}; choose one of {known} or mean")
    target, block = BUILTIN_LAYERS[name]
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(f"rnnvision_kit.nn.{module}"), attribute), block


def create_layer(name: str, input_size: int, hidden_size: int, **settings: Any) -> nn.Module:
    """A built-in layer by name (:func:`builtin_layer`): the factory the core registers."""
    return builtin_layer(name)[0](input_size, hidden_size, **settings)


def build_head(
    name: str,
    input_size: int,
    num_classes: int,
    *,
    hidden_size: int = 128,
    num_layers: int = 1,
    bidirectional: bool = False,
    pooling: Pooling = "last",
    dropout: float = 0.0,
    **settings: Any,
) -> nn.Module:
    """The head of a built-in layer ``name`` (or ``mean``) over ``B,T,input_size``, without the
    plugin registry: ``build_head("mingru", 64, 10, num_layers=2, expansion=1.5)``.
    ``settings`` are the layer's own (its constructor's keywords)."""
    if name == "mean":
        return MeanHead(input_size, num_classes, dropout=dropout)
    cls, block = builtin_layer(name)
    return SequenceHead(
        lambda i, h: cls(i, h, **settings),
        input_size,
        num_classes,
        block=block,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pooling=pooling,
        dropout=dropout,
        name=name,
    )
