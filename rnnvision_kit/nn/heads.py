"""Sequence heads: ``B,T,F`` sequences in, ``B,num_classes`` logits out.

Recurrent heads use the fused ``nn.RNN``/``nn.GRU``/``nn.LSTM`` kernels. ``MeanHead`` averages the
sequence without looking at its order: the baseline a recurrent head should beat.
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


class MeanHead(nn.Module):
    """Order-less baseline: average the ``B,T,F`` features over time, then a linear layer."""

    def __init__(self, input_size: int, num_classes: int, *, dropout: float = 0.0, **_: object):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(input_size, num_classes)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(sequence.mean(dim=1)))


def build_head(cell: str, input_size: int, num_classes: int, **options: Any) -> nn.Module:
    """The head ``cell`` (``gru``, ``lstm``, ``rnn`` or ``mean``) over ``B,T,input_size``."""
    if cell == "mean":
        return MeanHead(input_size, num_classes, **options)
    return RecurrentHead(input_size, num_classes, cell=cell, **options)
