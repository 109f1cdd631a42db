"""The core's own hook implementations: the shared sequence heads of ``rnnvision_kit.nn``.

Loaded first, as plugin ``core``, so that every task plugin can build ``gru``, ``lstm``, ``rnn``
and ``mean`` heads without registering them again.
"""

from __future__ import annotations

from typing import Any

from rnnvision_kit.hookspecs import hookimpl


def _head(cell: str) -> Any:
    def factory(input_size: int, num_classes: int, **options: Any) -> Any:
        from rnnvision_kit.nn.heads import MeanHead, RecurrentHead

        if cell == "mean":
            return MeanHead(input_size, num_classes, **options)
        return RecurrentHead(input_size, num_classes, cell=cell, **options)

    factory.__name__ = f"{cell}_head"
    return factory


@hookimpl
def rnnkit_register_heads(register: Any) -> None:
    register("gru", _head("gru"), description="GRU over B,T,F (uni/bidirectional, layers, pooling)")
    register(
        "lstm", _head("lstm"), description="LSTM over B,T,F (uni/bidirectional, layers, pooling)"
    )
    register("rnn", _head("rnn"), description="Elman RNN (tanh) over B,T,F")
    register("mean", _head("mean"), description="order-less baseline: mean of the frame features")
