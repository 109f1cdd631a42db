"""Sequence heads: ``B,T,F`` sequences in, ``B,num_classes`` logits out.

Recurrent heads use the fused ``nn.RNN``/``nn.GRU``/``nn.LSTM`` kernels. ``MeanHead`` averages the
sequence without looking at its order: the baseline a recurrent head should beat.

Streaming (per-step API, carried state): a unidirectional :class:`RecurrentHead` with ``last``
pooling gives the logits after each new frame from ``step(features B,F, state) -> (logits B,K,
state)`` (or ``scan`` for a chunk ``B,T,F``), equal to ``forward`` on all frames so far. The state
is one tensor, :meth:`RecurrentHead.initial_state`. ``stream_blocker`` says why a head cannot
stream (bidirectional, ``mean``/``attention`` pooling, :class:`MeanHead`), or is None.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

Pooling = Literal["last", "mean", "attention"]
CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentHead(nn.Module):
    """A (bi)directional multi-layer RNN/GRU/LSTM over ``B,T,F`` with a pooling and a linear layer.

    ``pooling="last"`` uses the final state of each direction (the forward direction's last step
    and the backward direction's first step), ``"mean"`` averages outputs over time, and
    ``"attention"`` learns a softmax weighting over time steps.

    Per-step API (unidirectional, ``pooling="last"``; see :attr:`stream_blocker`):

    - ``initial_state(batch)``: zeros ``L,B,H`` (``rnn``/``gru``) or ``2L,B,H`` (``lstm``: the
      ``L`` hidden states, then the ``L`` cell states), ``L = num_layers``, ``H = hidden_size``;
    - ``step(features B,F, state) -> (logits B,K, state)``: one new frame;
    - ``scan(features B,T,F, state) -> (logits B,T,K, state)``: a chunk of frames, the logits
      after each one.

    The logits after frame ``t`` equal ``forward`` on frames ``0..t`` (eval mode).
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        *,
        cell: Literal["rnn", "gru", "lstm"] = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: Pooling = "last",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
        if pooling not in ("last", "mean", "attention"):
            raise ValueError(f"unknown pooling {pooling!r}; choose last, mean or attention")
        self.pooling = pooling
        self.cell = cell
        self.rnn = CELLS[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        features = hidden_size * (2 if bidirectional else 1)
        self.attention = nn.Linear(features, 1) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        outputs, state = self.rnn(sequence)
        if self.pooling == "last":
            hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
            directions = 2 if self.rnn.bidirectional else 1
            pooled = hidden[-directions:].transpose(0, 1).reshape(sequence.shape[0], -1)
        elif self.pooling == "mean":
            pooled = outputs.mean(dim=1)
        else:
            weights = torch.softmax(self.attention(outputs), dim=1)
            pooled = (weights * outputs).sum(dim=1)
        return self.classifier(self.dropout(pooled))

    # ------------------------------------------------------------------ per-step API

    @property
    def stream_blocker(self) -> str | None:
        """Why this head cannot run frame by frame with a carried state, or None if it can."""
        if self.rnn.bidirectional:
            return (
                "its head is bidirectional (it reads each clip backwards too); "
                "train with --set model.bidirectional=false"
            )
        if self.pooling != "last":
            return (
                f"its head pools over the whole clip (model.pooling={self.pooling}); "
                "train with --set model.pooling=last"
            )
        return None

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        """The zero state before the first frame (see the class docstring for its layout)."""
        weight = self.classifier.weight
        parts = 2 if isinstance(self.rnn, nn.LSTM) else 1
        layers = self.rnn.num_layers
        return weight.new_zeros(parts * layers, batch, self.rnn.hidden_size)

    def scan(
        self, features: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``B,T,K`` after each frame of ``features B,T,F``, and the state after the
        last one; ``state`` None starts from zeros."""
        blocker = self.stream_blocker
        if blocker is not None:
            raise ValueError(f"this head cannot stream: {blocker}")
        if state is None:
            state = self.initial_state(features.shape[0])
        if isinstance(self.rnn, nn.LSTM):
            h, c = state.chunk(2, 0)
            outputs, (h, c) = self.rnn(features, (h.contiguous(), c.contiguous()))
            new_state = torch.cat([h, c], 0)
        else:
            outputs, new_state = self.rnn(features, state)
        return self.classifier(self.dropout(outputs)), new_state

    def step(
        self, features: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``B,K`` after one new frame ``features B,F``, and the next state."""
        logits, state = self.scan(features.unsqueeze(1), state)
        return logits[:, 0], state


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

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(sequence.mean(dim=1)))


def build_head(cell: str, input_size: int, num_classes: int, **options: Any) -> nn.Module:
    """The head ``cell`` (``gru``, ``lstm``, ``rnn`` or ``mean``) over ``B,T,input_size``."""
    if cell == "mean":
        return MeanHead(input_size, num_classes, **options)
    return RecurrentHead(input_size, num_classes, cell=cell, **options)
