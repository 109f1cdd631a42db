"""Hook implementations of the video-action plugin. Registers names and factories only: torch,
torchvision and PyAV are imported inside the factories, when a task runs."""

from __future__ import annotations

from typing import Any

from rnnvision_kit import hookimpl

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


def _task() -> Any:
    from rnnkit_video.task import VideoActionTask

    return VideoActionTask()


def _source(name: str) -> tuple[Any, Any]:
    """The ``DataBundle`` factory of a source and its listing function (for ``check-data``)."""

    def factory(config: Any) -> Any:
        from rnnkit_video import data

        return data.build_bundle(data.list_source(name, config), config)

    def lister(config: Any) -> Any:
        from rnnkit_video import data

        return data.list_source(name, config)

    factory.__name__ = f"{name.replace('-', '_')}_source"
    return factory, lister


def _backbone(name: str) -> Any:
    def factory(**options: Any) -> Any:
        from rnnvision_kit.nn.encoders import build_encoder

        return build_encoder(name, **options)

    factory.__name__ = f"{name.replace('-', '_')}_backbone"
    return factory


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "video-action",
        _task,
        description="video action recognition: a frame encoder, then a GRU/LSTM over the clip",
    )


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    for name, description in SOURCES.items():
        factory, lister = _source(name)
        register(name, factory, kind="video", description=description, list_samples=lister)


@hookimpl
def rnnkit_register_backbones(register: Any) -> None:
    for name, description in BACKBONES.items():
        register(name, _backbone(name), description=description)
