"""Hook implementations of the video-action plugin. Registers names and factories only: torch,
torchvision and PyAV are imported inside the factories, when a task runs. The frame encoders
(small-cnn, resnet18, mobilenet_v3_small) and sequence heads it builds on are the core's."""

from __future__ import annotations

from rnnvision_kit import RegisterDataSource, RegisterMetric, RegisterTask, hookimpl, lazy
from rnnvision_kit.data import CLIP_SETTINGS

# The one table of this plugin's data sources: name -> (its listing function in
# rnnkit_video.data, registered as list_samples=; description; the data.* settings it reads
# besides CLIP_SETTINGS, which every source built with build_clip_bundle reads)
SOURCES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "moving-digits": (
        "moving_digits_listing",
        "digits moving over a texture; 10 classes in time-reversed pairs (embedded default)",
        ("videos_per_class",),
    ),
    "videofolder": (
        "videofolder_listing",
        "PATH/<class>/<video> (or PATH/train|val|test/<class>/<video>)",
        ("val_fraction", "test_fraction"),
    ),
    "ucf101": (
        "ucf101_listing",
        "UCF101/HMDB51 layout: classInd.txt, trainlist0N/testlist0N.txt (data.fold)",
        ("fold", "val_fraction"),
    ),
    "framefolder": (
        "framefolder_listing",
        "PATH/<class>/<video>/<frame>.jpg|png (or split folders)",
        ("val_fraction", "test_fraction"),
    ),
}
METRICS = {
    "clip_acc": "top-1 accuracy of single clips (video-level acc averages a video's clips)",
    "clip_top5": "top-5 accuracy of single clips",
    "predictions": "per-video rows [index, label, top-k classes, top-k probabilities]",
}


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register(
        "video-action",
        lazy("rnnkit_video.task:VideoActionTask"),
        config=lazy("rnnkit_video.config:defaults"),  # settings checked before torch is imported
        kind="video",
        description="video action recognition: a frame encoder, then a GRU/LSTM over the clip",
        capabilities=("predict", "check-data", "report", "stream", "export"),
    )


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    for name, (listing, description, reads) in SOURCES.items():
        list_samples = lazy(f"rnnkit_video.data:{listing}")  # config -> Listing
        register(
            name,
            lazy("rnnkit_video.data:open_listing", list_samples),
            kind="video",
            description=description,
            reads=(*CLIP_SETTINGS, *reads),
            list_samples=list_samples,
        )


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    for name, description in METRICS.items():
        register(
            name,
            lazy("rnnkit_video.metrics:create_metric", name),
            kinds=("video",),
            description=description,
        )
