"""Reusable recurrent blocks (public API): the sequence-layer contract and its layers, heads, ConvGRU/ConvLSTM, frame encoders
(with the torchvision and timm families and pretrained weights by name), fine-tuning helpers.

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
    read_state_dict,
)
from rnnvision_kit.nn.families import timm_weights_file
from rnnvision_kit.nn.finetune import (
    encoder_stages,
    encoder_trunk,
    freeze_batchnorm,
    freeze_encoder,
    freeze_unused,
    lr_groups,
)
from rnnvision_kit.nn.heads import (
    Bidirectional,
    MeanHead,
    SequenceHead,
    TorchRNN,
    build_head,
    builtin_layer,
    create_layer,
)
from rnnvision_kit.nn.layers_baseline import TCN, Transformer
from rnnvision_kit.nn.layers_min import MinGRU, MinLSTM
from rnnvision_kit.nn.layers_select import MLSTM, Mamba
from rnnvision_kit.nn.layers_ssm import LRU, S5
from rnnvision_kit.nn.pretrained import (
    WeightsInfo,
    cached_hub_file,
    cached_url,
    check_input_size,
    downloads_off,
    first_mismatch,
    hf_cache_dir,
    input_normalisation,
    torch_hub_dir,
)
from rnnvision_kit.nn.scan import (
    chunked_scan,
    export_scan,
    linear_scan,
    masked_scan,
    sequential_scan,
)
from rnnvision_kit.nn.sequence import (
    SequenceLayer,
    State,
    StateSpec,
    check_finite,
    exporting,
    tracing,
)

__all__ = [
    "ENCODERS",
    "ConvGRU",
    "ConvGRUCell",
    "ConvLSTM",
    "ConvLSTMCell",
    "FrameEncoder",
    "MeanHead",
    "SequenceHead",
    "TorchRNN",
    "Bidirectional",
    "builtin_layer",
    "create_layer",
    "SmallCNN",
    "WeightsInfo",
    "build_encoder",
    "build_head",
    "cached_hub_file",
    "cached_url",
    "check_input_size",
    "downloads_off",
    "encoder_stages",
    "encoder_trunk",
    "first_mismatch",
    "freeze_batchnorm",
    "freeze_encoder",
    "freeze_unused",
    "hf_cache_dir",
    "input_normalisation",
    "load_weights",
    "lr_groups",
    "read_state_dict",
    "timm_weights_file",
    "torch_hub_dir",
    "MinGRU",
    "MinLSTM",
    "LRU",
    "S5",
    "Mamba",
    "MLSTM",
    "TCN",
    "Transformer",
    "SequenceLayer",
    "State",
    "StateSpec",
    "chunked_scan",
    "export_scan",
    "linear_scan",
    "masked_scan",
    "tracing",
    "exporting",
    "check_finite",
    "sequential_scan",
]
