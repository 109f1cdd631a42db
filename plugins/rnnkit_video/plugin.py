"""Hook implementations of the video-action plugin. Registers names and factories only: torch,
torchvision and PyAV are imported inside the factories, when a task runs."""

from __future__ import annotations

from typing import Any

from rnnvision_kit import hookimpl, lazy

SOURCES = {
    "moving-digits": "digits moving over a texture; 10 classes in time-reversed pairs (embedded default)",
    "videofolder": "PATH/<class>/<video> (or PATH/train|val|test/<class>/<video>)",
    "ucf101": "UCF101/HMDB51 layout: classInd.txt, trainlist0N/testlist0N.txt (data.fold)",
    "framefolder": "PATH/<class>/<video>/<frame>.jpg|png (or split folders)",
}
BACKBONES = {
    "small-cnn": "conv-bn-relu-pool blocks keeping a 4x4 grid (fast on a CPU)",
    "resnet18": "torchvision ResNet-18 (weights=None or model.backbone_weights=PATH)",
    "mobilenet_v3_small": "torchvision MobileNetV3-Small (weights=None or a local file)",
}


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "video-action",
        lazy("rnnkit_video.task:VideoActionTask"),
        description="video action recognition: a frame encoder, then a GRU/LSTM over the clip",
    )


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    for name, description in SOURCES.items():
        register(
            name,
            lazy("rnnkit_video.data:open_source", name),
            kind="video",
            description=description,
            list_samples=lazy("rnnkit_video.data:list_source", name),
        )


@hookimpl
def rnnkit_register_backbones(register: Any) -> None:
    for name, description in BACKBONES.items():
        register(
            name, lazy("rnnvision_kit.nn.encoders:build_encoder", name), description=description
        )
