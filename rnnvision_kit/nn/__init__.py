"""Reusable recurrent blocks (public API): sequence heads, ConvGRU/ConvLSTM, frame encoders.

Imports nothing else from the core but ``errors``. Plugins import from this package, not from
its modules.
"""

from rnnvision_kit.nn.convrnn import ConvGRU, ConvGRUCell, ConvLSTM, ConvLSTMCell
from rnnvision_kit.nn.encoders import (
    ENCODERS,
    FrameEncoder,
    SmallCNN,
    build_encoder,
    load_weights,
)
from rnnvision_kit.nn.heads import MeanHead, RecurrentHead, build_head

__all__ = [
    "ENCODERS",
    "ConvGRU",
    "ConvGRUCell",
    "ConvLSTM",
    "ConvLSTMCell",
    "FrameEncoder",
    "MeanHead",
    "RecurrentHead",
    "SmallCNN",
    "build_encoder",
    "build_head",
    "load_weights",
]
